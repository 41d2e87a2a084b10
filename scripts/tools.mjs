// Shared helpers for the project scripts: the pinned tool versions, running commands, and
// locating binaries. Everything a fresh machine (rustup + node/npm + registries) needs is
// installed from here, and nothing already present is installed again.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const WORKER_BUILD_VERSION = "0.8.7";

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

/** Install what is missing; print what is already there. Idempotent. */
export function ensureTools({ quiet = false } = {}) {
  const say = (m) => quiet || console.log(`[setup] ${m}`);
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
  const wb = output(cargoBin("worker-build"), ["--version"]);
  if (!wb || !wb.includes(WORKER_BUILD_VERSION)) {
    say(`installing worker-build ${WORKER_BUILD_VERSION} (a few minutes, once)`);
    run("cargo", ["install", "worker-build", "--version", WORKER_BUILD_VERSION, "--locked"]);
  }
  const want = wasmBindgenVersion();
  const bg = output(cargoBin("wasm-bindgen"), ["--version"]);
  if (!bg || !bg.includes(want)) {
    say(`installing wasm-bindgen-cli ${want} (a few minutes, once)`);
    // Its published lockfile can pin a dependency release the registry no longer serves;
    // then install with fresh resolution of its (semver-compatible) dependencies.
    try {
      run("cargo", ["install", "wasm-bindgen-cli", "--version", want, "--locked"]);
    } catch {
      say("locked install failed; retrying without --locked");
      run("cargo", ["install", "wasm-bindgen-cli", "--version", want]);
    }
  }
  const npmDeps = [nodeBin("wrangler"), nodeBin("esbuild"), join(ROOT, "node_modules", "puppeteer-core", "package.json"), join(ROOT, "node_modules", "axe-core", "axe.min.js")];
  if (!npmDeps.every((p) => existsSync(p))) {
    say("installing npm dependencies");
    run("npm", ["ci", "--no-audit", "--no-fund"]);
  }
  say("tools ready");
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

/** Environment that makes worker-build use local binaries instead of downloading them. */
export function buildEnv() {
  return {
    ...process.env,
    WASM_BINDGEN_BIN: cargoBin("wasm-bindgen"),
    ESBUILD_BIN: nodeBin("esbuild"),
    // Our own entry template: a plain module export (see scripts/worker-shim.js).
    CUSTOM_SHIM: join(ROOT, "scripts", "worker-shim.js"),
    WRANGLER_SEND_METRICS: "false",
  };
}
