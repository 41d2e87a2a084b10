// bench/lib/load.mjs: part of the benchmark runner (bench/run.mjs).
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { prepareState, startDevServer } from "../../scripts/devserver.mjs";
import { DURATION, WARMUP, ROUNDS, THREADS, CONNECTIONS, TIMEOUT_MIN, WRK_TIMEOUT, STATE, LUA, LINES_LUA, PORTS, seconds, log, fmt, sleep } from "./settings.mjs";

// ---------------------------------------------------------------------------------------------
// Time bound: the whole run is killed after BENCH_TIMEOUT_MIN minutes.

export let current = null; // the running dev server
export let currentWrk = null; // the running wrk child
export async function cleanup() {
  try { currentWrk?.kill("SIGKILL"); } catch {}
  if (current) await current.stop().catch(() => {});
  current = null;
}
export const watchdog = setTimeout(async () => {
  console.error(`[bench] time limit of ${TIMEOUT_MIN} min reached: stopping`);
  await cleanup();
  process.exit(3);
}, TIMEOUT_MIN * 60_000);
watchdog.unref();
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc: the server's process group, wrk, and everything else.

export function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    const comm = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
    return { comm, pgrp: Number(f[2]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}
/** utime+stime ticks of every live process in process group `pgid`: { all, workerd }. */
export function groupTicks(pgid) {
  const t = { all: 0, workerd: 0 };
  if (!pgid) return t;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStat(d);
    if (s && s.pgrp === pgid) {
      t.all += s.ticks;
      if (s.comm === "workerd") t.workerd += s.ticks;
    }
  }
  return t;
}
/** Busy ticks summed over all CPUs (everything but idle and iowait). */
export function systemBusy() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return total - f[3] - f[4];
}
export const TICK_MS = 10; // USER_HZ = 100 on Linux

// ---------------------------------------------------------------------------------------------
// wrk

export function ensureWrk() {
  if (spawnSync("wrk", ["-v"]).error) {
    log("wrk not found: running `apt-get install -y wrk` (Debian's package)");
    execFileSync("apt-get", ["install", "-y", "wrk"], { stdio: "inherit", timeout: 300_000 });
  }
  const v = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  return ((v.stdout ?? "") + (v.stderr ?? "")).split("\n")[0].trim();
}

export function toMs(v, unit) {
  return Number(v) * { us: 1e-3, ms: 1, s: 1e3, m: 60e3 }[unit];
}

/** Parses wrk's text output: Requests/sec, the latency distribution, request and error counts. */
export function parseWrk(out) {
  const rps = out.match(/Requests\/sec:\s+([\d.]+)/);
  const total = out.match(/(\d+) requests in ([\d.]+)(us|ms|s|m)/);
  const pct = (p) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"));
    return m ? toMs(m[1], m[2]) : null;
  };
  if (!rps || !total) throw new Error(`cannot parse wrk output:\n${out}`);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const se = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const sockErrors = se ? se.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    p50: pct(50),
    p99: pct(99),
    errors: non2xx + sockErrors,
  };
}

/** One wrk run against `url`; `pgid` is the server's process group for CPU accounting. */
/**
 * One wrk run against `url`; `pgid` is the server's process group for CPU accounting. `lines`
 * (`{ path, next }`): POST each line of the file once as a form body (single-use codes and refresh
 * tokens), from line `next`, which is then moved past this run's requests and those still in
 * flight when it stopped.
 */
export function wrk(url, { method = "GET", body = "", contentType = "", auth = "", host = "", duration = DURATION, pgid, lines } = {}) {
  const script = lines ? LINES_LUA : LUA;
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${duration}`, "--timeout", WRK_TIMEOUT, "--latency", "-s", script, url];
  const env = { ...process.env, WRK_METHOD: method, WRK_BODY: body, WRK_CONTENT_TYPE: contentType, WRK_AUTH: auth, WRK_HOST: host };
  if (lines) Object.assign(env, { WRK_LINES: lines.path, WRK_LINES_START: String(lines.next) });
  return new Promise((resolve, reject) => {
    const busy0 = systemBusy();
    const srv0 = groupTicks(pgid);
    let wrkTicks = 0;
    const child = execFile("wrk", args, { env, timeout: (seconds(duration) + 30) * 1000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      clearInterval(poll);
      currentWrk = null;
      const busy = systemBusy() - busy0;
      const g = groupTicks(pgid);
      const srv = g.all - srv0.all;
      const wd = g.workerd - srv0.workerd;
      if (err) return reject(new Error(`wrk failed (${err.message}):\n${stdout}${stderr}`));
      try {
        const r = parseWrk(stdout);
        if (lines) lines.next += r.requests + r.errors + CONNECTIONS;
        r.serverCpuMsPerReq = pgid && r.requests ? (srv * TICK_MS) / r.requests : null;
        r.workerdCpuMsPerReq = pgid && r.requests ? (wd * TICK_MS) / r.requests : null;
        // CPU used by neither the server nor wrk (other processes), in % of one core.
        r.otherCpuPct = (Math.max(0, busy - srv - wrkTicks) * TICK_MS) / (seconds(duration) * 10);
        r.raw = stdout;
        resolve(r);
      } catch (e) {
        reject(e);
      }
    });
    currentWrk = child;
    const poll = setInterval(() => {
      const s = procStat(child.pid);
      if (s) wrkTicks = s.ticks;
    }, 200);
  });
}

export const median = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

// ---------------------------------------------------------------------------------------------
// Targets

export async function startTarget(name, opts) {
  const dir = join(STATE, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (opts.prepare) prepareState(dir, { config: opts.config ?? "wrangler.toml" });
  return launch(name, dir, opts);
}

export async function launch(name, dir, opts) {
  const t0 = performance.now();
  const server = await startDevServer({ port: PORTS[name], persistDir: dir, config: opts.config ?? "wrangler.toml", vars: opts.vars ?? {} });
  const readyMs = performance.now() - t0;
  current = server;
  log(`${name}: wrangler dev up on ${server.url} in ${fmt(readyMs)} ms`);
  return {
    name,
    url: server.url,
    dir,
    readyMs,
    pgid: server.proc.pid,
    async stop() {
      await server.stop();
      if (current === server) current = null;
      await sleep(500); // let the sockets and the processes go
    },
  };
}

export const results = []; // { section, name, rps, p50, p99, requests, errors, serverCpuMsPerReq, otherCpuPct, ops }

/** Warm-up, then ROUNDS measured runs (or `rounds`); medians. `counters` wraps the measured runs. */
export async function scenario(target, name, path, opts = {}, { counters, rounds = ROUNDS, section = "main" } = {}) {
  const url = `${target.url}${path}`;
  await wrk(url, { ...opts, duration: WARMUP });
  const before = counters ? await counters() : null;
  const t0 = Date.now();
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await wrk(url, { ...opts, pgid: target.pgid }));
  const wallS = (Date.now() - t0) / 1000;
  const after = counters ? await counters() : null;
  const requests = runs.reduce((a, r) => a + r.requests, 0);
  const row = {
    section,
    name,
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    rpsRuns: runs.map((r) => r.rps),
    requests,
    errors: runs.reduce((a, r) => a + r.errors, 0),
    serverCpuMsPerReq: median(runs.map((r) => r.serverCpuMsPerReq)),
    workerdCpuMsPerReq: median(runs.map((r) => r.workerdCpuMsPerReq)),
    otherCpuPct: Math.max(...runs.map((r) => r.otherCpuPct)),
    wallS,
  };
  if (before && after) {
    row.opsTotal = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
    row.ops = Object.fromEntries(Object.entries(row.opsTotal).map(([k, v]) => [k, v / requests]));
  }
  results.push(row);
  log(
    `${name}: ${fmt(row.rps)} req/s, p50 ${fmt(row.p50, 2)} ms, p99 ${fmt(row.p99, 2)} ms` +
      ` (runs: ${row.rpsRuns.map((x) => fmt(x)).join(", ")} req/s; server CPU ${fmt(row.serverCpuMsPerReq, 3)} ms/req, workerd ${fmt(row.workerdCpuMsPerReq, 3)})` +
      (row.errors ? `; ${row.errors} non-2xx/socket errors` : "") +
      (row.ops ? `; ops/req ${JSON.stringify(Object.fromEntries(Object.entries(row.ops).map(([k, v]) => [k, +v.toFixed(4)])))}` : ""),
  );
  return row;
}

