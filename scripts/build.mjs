// Builds the release worker into build/worker/ (shim.mjs + index.wasm) with the tools directly:
//   cargo build --release --target wasm32-unknown-unknown   (the crate, as a cdylib)
//   wasm-bindgen --target bundler                            (the JS glue, pinned to Cargo.lock)
//   scripts/worker-shim.js, its placeholders filled          (the Worker's entry module)
//   esbuild --bundle --minify                                (one ES module beside the wasm)
// This is what worker-build 0.8.7 does for a custom shim (its CUSTOM_SHIM path, `main_legacy.rs`),
// without compiling worker-build itself. The output is written to a staging directory and swapped
// into place whole, so a dev server never sees half a build.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ensureTools, run, cargoBin, nodeBin, ROOT, WASM_BUILD } from "./tools.mjs";
import { addProducer } from "./wasm-producers.mjs";

export const BUILD_DIR = join(ROOT, "build");
export const WORKER_DIR = join(BUILD_DIR, "worker");
const CRATE = "patgate";

/** Every file under `dir`, as paths relative to `base` with `/` separators. */
function files(dir, base = dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p, base) : [relative(base, p).split("\\").join("/")];
  });
}

/**
 * Fills the shim template's placeholders exactly like worker-build: each wasm-bindgen snippet
 * (`#[wasm_bindgen(module = ...)]` inline JS) becomes an import of the module and an entry in the
 * wasm instance's import object; `$WAIT_UNTIL_RESPONSE` is empty (no run-to-completion mode).
 */
/** The version of a crate in Cargo.lock (the `worker` crate: worker-build shares its version). */
export function lockedVersion(crate) {
  const m = readFileSync(join(ROOT, "Cargo.lock"), "utf8").match(new RegExp(`name = "${crate}"\\nversion = "([^"]+)"`));
  if (!m) throw new Error(`${crate} not found in Cargo.lock`);
  return m[1];
}

export function fillShim(template, snippets) {
  const named = snippets.map((path, i) => [`snippets_${i}`, `./snippets/${path}`]);
  const jsImports = named.map(([name, path]) => `import * as ${name} from "${path}";\n`).join("");
  const wasmImports = named.map(([name, path]) => `"${path}": ${name},\n`).join("");
  return template
    .replaceAll("$WAIT_UNTIL_RESPONSE", "")
    .replaceAll("$SNIPPET_JS_IMPORTS", jsImports)
    .replaceAll("$SNIPPET_WASM_IMPORTS", wasmImports);
}

export function build({ quiet = false } = {}) {
  ensureTools({ quiet: true });
  const started = Date.now();
  run("cargo", WASM_BUILD.args, { env: { ...process.env, ...WASM_BUILD.env } });
  const stage = join(BUILD_DIR, `.stage-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  try {
    const bindgen = join(stage, "bindgen");
    const wasm = join(ROOT, "target", "wasm32-unknown-unknown", "release", `${CRATE}.wasm`);
    run(cargoBin("wasm-bindgen"), [wasm, "--out-dir", bindgen, "--no-typescript", "--target", "bundler", "--out-name", "index"]);
    const worker = join(stage, "worker");
    mkdirSync(worker);
    renameSync(join(bindgen, "index_bg.js"), join(worker, "index_bg.js"));
    // worker-build records the SDK in the wasm's producers section: so do we (byte-identical output).
    const wasmOut = addProducer(readFileSync(join(bindgen, "index_bg.wasm")), { version: lockedVersion("worker") });
    writeFileSync(join(worker, "index.wasm"), wasmOut);
    const snippets = files(join(bindgen, "snippets"));
    if (snippets.length) renameSync(join(bindgen, "snippets"), join(worker, "snippets"));
    const template = readFileSync(join(ROOT, "scripts", "worker-shim.js"), "utf8");
    writeFileSync(join(worker, "shim.js"), fillShim(template, snippets));
    run(
      nodeBin("esbuild"),
      [
        "--external:./index.wasm",
        "--external:cloudflare:email",
        "--external:cloudflare:sockets",
        "--external:cloudflare:workers",
        "--format=esm",
        "--bundle",
        "./shim.js",
        "--outfile=shim.mjs",
        "--minify",
        "--log-level=warning",
      ],
      { cwd: worker },
    );
    for (const leftover of ["shim.js", "index_bg.js", "snippets"]) rmSync(join(worker, leftover), { recursive: true, force: true });
    // Swap the finished worker into place.
    rmSync(WORKER_DIR, { recursive: true, force: true });
    renameSync(worker, WORKER_DIR);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  const size = (f) => statSync(join(WORKER_DIR, f)).size;
  quiet ||
    console.log(
      `[build] build/worker: shim.mjs ${(size("shim.mjs") / 1024).toFixed(0)} KiB, index.wasm ${(size("index.wasm") / 1024).toFixed(0)} KiB (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
}

if (import.meta.url === `file://${process.argv[1]}`) build();
