// bench/lib/settings.mjs: part of the benchmark runner (bench/run.mjs).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../scripts/tools.mjs";

// ---------------------------------------------------------------------------------------------
// Settings

export const argv = process.argv.slice(2);
export const SMOKE = argv.includes("--smoke");
export const NO_BUILD = argv.includes("--no-build");
export const STRICT = argv.includes("--strict");
export const ONLY = argv.find((a) => a.startsWith("--only="))?.slice(7).split(",");
export const wanted = (t) => !ONLY || ONLY.includes(t);

export const DURATION = process.env.BENCH_DURATION ?? (SMOKE ? "2s" : "10s");
export const WARMUP = process.env.BENCH_WARMUP ?? (SMOKE ? "1s" : "3s");
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
export const THREADS = Number(process.env.BENCH_THREADS ?? 1);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
export const GROWTH = Number(process.env.BENCH_GROWTH ?? (SMOKE ? 2000 : 100000));
export const TIMEOUT_MIN = Number(process.env.BENCH_TIMEOUT_MIN ?? (SMOKE ? 15 : 40));
export const WRK_TIMEOUT = "5s";

export const STATE = join(ROOT, "bench", ".state");
export const LUA = join(ROOT, "bench", "wrk.lua");
export const LINES_LUA = join(ROOT, "bench", "wrk-lines.lua");
// BENCH_PORT_OFFSET shifts every port (several checkouts on one machine).
export const PORT_OFFSET = Number(process.env.BENCH_PORT_OFFSET ?? 0);
export const PORTS = Object.fromEntries(
  Object.entries({ "floor-a": 8851, "floor-b": 8852, peer: 8853, patgate: 8854, clients: 8859, "floor-c": 9055, gate: 9056, upstream: 9058 })
    .map(([k, v]) => [k, v + PORT_OFFSET]),
);
export const WRK_DESC =
  `wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --timeout ${WRK_TIMEOUT} --latency -s bench/wrk.lua` +
  ` (${WARMUP} warm-up run first; ${ROUNDS} measured run${ROUNDS > 1 ? "s" : ""} per scenario, median of each metric)`;

/** "10s", "1m", "500ms", "2" (seconds) -> seconds. */
export function seconds(d) {
  const m = String(d).match(/^([\d.]+)\s*(ms|us|s|m|h)?$/);
  if (!m) throw new Error(`bad duration ${d}`);
  const mult = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }[m[2] ?? "s"];
  return Number(m[1]) * mult;
}

export const log = (...a) => console.log("[bench]", ...a);
export const fmt = (n, d = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? "n/a"
    : n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
export const kib = (n) => `${fmt(n / 1024, 1)} KiB`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));



export function gitDesc() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "scripts"], { cwd: ROOT, encoding: "utf8" }).trim();
    return `${head}${dirty ? " + uncommitted changes in src/ or scripts/" : ""}`;
  } catch {
    return "unknown";
  }
}

export function readJson(p) {
  try { return JSON.parse(readFileSync(p, "utf8")); } catch { return {}; }
}
