// Shared helpers for the project scripts: the pinned tool versions, running commands, and
// locating binaries. Everything a fresh machine (rustup + node/npm + registries) needs is
// installed from here, and nothing already present is installed again.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly. */
export function wasmBindgenVersion() {
  const lock = readFileSync(join(ROOT, "Cargo.lock"), "utf8");
  const m = lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/);
  if (!m) throw new Error("wasm-bindgen not found in Cargo.lock");
  return m[1];
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: ROOT, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status}`);
  }
  return r;
}

export function output(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function cargoBin(name) {
  const home = process.env.CARGO_HOME || join(homedir(), ".cargo");
  return join(home, "bin", name);
}

export const nodeBin = (name) => join(ROOT, "node_modules", ".bin", name);

/** The release build of the crate for the Worker (scripts/build.mjs; also started early by setup). */
export const WASM_BUILD = {
  args: ["build", "--locked", "--lib", "--release", "--target", "wasm32-unknown-unknown"],
  // worker-build sets this for its cargo build (wasm-bindgen's macro then drives async exports
  // with js_sys's futures); set here too so the wasm stays the same.
  env: { WASM_BINDGEN_USE_JS_SYS: "1" },
};

function rustupReady(say) {
  const targets = output("rustup", ["target", "list", "--installed"]) || "";
  if (!targets.split("\n").includes("wasm32-unknown-unknown")) {
    say("adding rust target wasm32-unknown-unknown");
    run("rustup", ["target", "add", "wasm32-unknown-unknown"]);
  }
  const components = output("rustup", ["component", "list", "--installed"]) || "";
  for (const c of ["clippy", "rustfmt"]) {
    if (!components.split("\n").some((l) => l.startsWith(c))) {
      say(`adding rust component ${c}`);
      run("rustup", ["component", "add", c]);
    }
  }
}

const wasmBindgenReady = () => (output(cargoBin("wasm-bindgen"), ["--version"]) ?? "").includes(wasmBindgenVersion());

/** Install what is missing, one after the other; print what is already there. Idempotent. */
export function ensureTools({ quiet = false } = {}) {
  // Installs are always announced; `quiet` only drops the final "tools ready".
  const say = (m) => console.log(`[setup] ${m}`);
  rustupReady(say);
  if (!wasmBindgenReady()) {
    say(`installing wasm-bindgen-cli ${wasmBindgenVersion()} (once)`);
    run("cargo", wasmBindgenInstallArgs(wasmBindgenVersion()));
  }
  if (!npmInstalled()) {
    say("installing npm dependencies");
    run("npm", ["ci", "--no-audit", "--no-fund"]);
  }
  quiet || say("tools ready");
}

function runAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: "inherit", cwd: ROOT, ...opts });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`))));
  });
}

/**
 * `scripts/setup.mjs`: the same installs as `ensureTools`, at the same time: `npm ci` (mostly
 * download), the wasm-bindgen-cli compile and, with `prebuild`, the release build of the crate
 * (the build step then finds it done). On a fresh 2-core machine this overlaps the download with
 * the compiles, and the two compiles' single-threaded phases (linking, LTO) with each other.
 */
export async function setup({ quiet = false, prebuild = false } = {}) {
  const say = (m) => console.log(`[setup] ${m}`);
  rustupReady(say);
  const jobs = [];
  if (!npmInstalled()) {
    say("installing npm dependencies");
    jobs.push(runAsync("npm", ["ci", "--no-audit", "--no-fund"]));
  }
  if (!wasmBindgenReady()) {
    say(`installing wasm-bindgen-cli ${wasmBindgenVersion()} (once)`);
    jobs.push(runAsync("cargo", wasmBindgenInstallArgs(wasmBindgenVersion())));
  }
  if (prebuild && jobs.length) {
    say("building the release wasm meanwhile");
    jobs.push(runAsync("cargo", WASM_BUILD.args, { env: { ...process.env, ...WASM_BUILD.env } }));
  }
  const failed = (await Promise.allSettled(jobs)).filter((r) => r.status === "rejected");
  if (failed.length) throw failed[0].reason;
  quiet || say("tools ready");
}

/** Debian's Chromium, driven by the browser tests (tests/e2e/page.test.mjs) through puppeteer-core. */
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * Installs Debian's `chromium` with apt-get when it is missing and we are root; otherwise prints
 * one line naming the package. Returns whether the browser is there. Nothing is downloaded by npm.
 */
export function ensureChromium({ quiet = false } = {}) {
  if (existsSync(CHROMIUM)) return true;
  if (process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    quiet || console.log("[setup] installing Debian's chromium for the browser tests (apt-get, once)");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    run("apt-get", ["update", "-qq"], { env });
    run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "chromium"], { env });
    return existsSync(CHROMIUM);
  }
  console.log(`[setup] the browser tests need Debian's "chromium" package (apt-get install chromium); they are skipped without it`);
  return false;
}

/**
 * The one `cargo install` of wasm-bindgen-cli: the exact version, only the `wasm-bindgen` binary,
 * without default features, unoptimized. The features only serve the test runner's downloads
 * (ureq over rustls), and `--locked` cannot work: the published lockfile pins webpki-roots 1.0.11,
 * which the registry does not serve; without `--locked` cargo resolves the (semver-compatible)
 * dependencies afresh, and without the TLS stack there is no C code (ring) to compile. `--debug`
 * halves the compile (measured: 3.0 instead of 5.7 CPU-minutes; opt-level 1: 5.4) for 2 s more
 * per build (2.3 s instead of 0.3 s of CPU for patgate's wasm), with the same output, byte for byte.
 */
export function wasmBindgenInstallArgs(version) {
  return ["install", "wasm-bindgen-cli", "--version", version, "--no-default-features", "--bin", "wasm-bindgen", "--debug"];
}

/** Whether node_modules holds every dev dependency at the exact version package.json pins (a
 * checkout pulled past a dependency change gets `npm ci` again, not ERR_MODULE_NOT_FOUND). */
export function npmInstalled() {
  const bins = [nodeBin("node"), nodeBin("wrangler"), nodeBin("esbuild")];
  if (!bins.every((p) => existsSync(p))) return false;
  let pinned;
  try {
    pinned = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies ?? {};
  } catch {
    return false;
  }
  return Object.entries(pinned).every(([name, version]) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version === version;
    } catch {
      return false;
    }
  });
}

/**
 * Environment for the tools (wrangler, esbuild) the scripts start: node_modules/.bin first on
 * PATH, so wrangler runs on the Node of the `node` dev dependency (wrangler needs Node >= 22; the
 * machine may have Node 20) even when a script itself was started with the system's Node.
 */
export function buildEnv() {
  return {
    ...process.env,
    PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
    WRANGLER_SEND_METRICS: "false",
  };
}
