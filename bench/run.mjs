// `npm run bench`: patgate against two floors and a peer, each driven through the same local
// runtime path (`wrangler dev`: workerd with local KV, D1 and Durable Objects) by the same load
// tool with the same settings. Prints a table and writes bench/RESULTS.md.
//
//   node bench/run.mjs [--smoke] [--no-build] [--strict] [--only=floor-a,floor-b,peer,patgate,clients,floor-c,gate]
//
//   --smoke      2 s runs, 1 round, a 2,000-row growth set (results go to bench/.state/RESULTS-smoke.md)
//   --no-build   skip scripts/build.mjs (use build/ as it is)
//   --strict     exit 1 if a target FAILs
//   --only=...   run only some targets (no RESULTS.md is written)
//
// Environment: BENCH_DURATION (wrk -d, default 10s), BENCH_WARMUP (3s), BENCH_ROUNDS (3),
// BENCH_THREADS (1), BENCH_CONNECTIONS (16), BENCH_GROWTH (100000), BENCH_TIMEOUT_MIN (40).
//
// Every target runs alone (its own port and fresh state dir under bench/.state/), and is stopped
// before the next starts, so that targets do not compete for the machine's cores.
import { mkdirSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { ROOT } from "../scripts/tools.mjs";
import { buildTools, measureInstructions, TOOLS_BIN } from "./instructions.mjs";
import { NO_BUILD, wanted, STATE, log, fmt } from "./lib/settings.mjs";
import { cleanup, watchdog, ensureWrk, startTarget, scenario } from "./lib/load.mjs";
import { req, json, FORM, DEMO_API } from "./lib/http.mjs";
import { bundleInfo, wasmStartup, checkStartup } from "./lib/startup.mjs";
import { startUpstream, floorC, gateTarget, peerToken, snapshotConfig, patgate } from "./targets.mjs";
import { report, setInstructions } from "./report.mjs";
import { clientsTarget } from "./lib/clients.mjs";

// ---------------------------------------------------------------------------------------------
// The run


async function main() {
  const wrkVersion = ensureWrk();
  if (!NO_BUILD && (wanted("patgate") || wanted("gate") || wanted("clients"))) {
    log("building the release worker (scripts/build.mjs)");
    const t = performance.now();
    const { build } = await import("../scripts/build.mjs");
    build();
    buildTools();
    log(`build done in ${fmt((performance.now() - t) / 1000, 1)} s`);
  }
  if (wanted("patgate")) {
    if (!existsSync(TOOLS_BIN)) buildTools();
    log("counting instructions per introspection decision (callgrind)");
    setInstructions(measureInstructions());
  }
  rmSync(STATE, { recursive: true, force: true });
  mkdirSync(STATE, { recursive: true });
  const info = { load0: loadavg()[0], started: new Date() };

  // 1. floor A: constant JSON, no I/O.
  if (wanted("floor-a")) {
    const t = await startTarget("floor-a", { config: "bench/floor-a/wrangler.toml" });
    info.floorAReadyMs = t.readyMs;
    try {
      const r = await req(`${t.url}/`);
      if (r.status !== 200) throw new Error(`floor A answered ${r.status}`);
      await scenario(t, "floor A: constant JSON, no I/O", "/");
      // The same answer after reading a POST body like the garbage-token introspection's.
      await scenario(t, "floor A': constant JSON after reading the same POST body", "/", {
        method: "POST", body: "token=garbage", contentType: FORM, auth: DEMO_API,
      });
    } finally { await t.stop(); }
  }

  // 2. floor B: one KV read.
  if (wanted("floor-b")) {
    const t = await startTarget("floor-b", { config: "bench/floor-b/wrangler.toml" });
    try {
      const grant = { id: "01JBENCH0000000000000000", kind: "pat", sub: "alice", client_id: "pat_client", scopes: ["demo_api:read"], iat: 1795478400, exp: 1798761600, name: "ci deploy" };
      await json(`${t.url}/`, { method: "PUT", body: JSON.stringify(grant) }, [204]);
      const r = await req(`${t.url}/`);
      if (r.status !== 200 || r.json().sub !== "alice") throw new Error(`floor B's KV key is missing: ${r.status} ${r.text}`);
      await scenario(t, "floor B: one KV read", "/");
      // The same after reading a POST body like the introspection's (client auth header included).
      await scenario(t, "floor B': one KV read after reading the same POST body", "/", {
        method: "POST", body: "token=pgt_" + "x".repeat(43), contentType: FORM, auth: DEMO_API,
      });
    } finally { await t.stop(); }
  }

  // 3. peer: @cloudflare/workers-oauth-provider validating a bearer token it issued.
  if (wanted("peer")) {
    const t = await startTarget("peer", { config: "bench/peer/wrangler.toml" });
    try {
      const token = await peerToken(t.url);
      const check = await req(`${t.url}/api/hello`, { headers: { authorization: `Bearer ${token}` } });
      if (check.status !== 200) throw new Error(`peer rejected its own token: ${check.status} ${check.text}`);
      const bad = await req(`${t.url}/api/hello`, { headers: { authorization: `Bearer x${token.slice(1)}` } });
      if (bad.status !== 401) throw new Error(`peer accepted a wrong token: ${bad.status}`);
      await scenario(t, "peer: workers-oauth-provider API, valid bearer", "/api/hello", { auth: `Bearer ${token}` });
    } finally { await t.stop(); }
  }

  // 4.-5. patgate
  let pg = null;
  if (wanted("patgate")) {
    if (!existsSync(join(ROOT, "build", "worker", "shim.mjs"))) throw new Error("build/worker/shim.mjs is missing: build patgate first");
    const config = snapshotConfig();
    const snap = join(STATE, "patgate-build");
    info.bundle = bundleInfo(snap);
    pg = await patgate(info, config);
    info.wasm = wasmStartup(snap);
    info.wasmEager = wasmStartup(snap, 5, ["--no-wasm-lazy-compilation"]);
    info.checkStartup = { patgate: checkStartup(config), floorA: checkStartup("bench/floor-a/wrangler.toml") };
  }
  // Client authentication among many self-registered clients (its own growth set).
  if (wanted("clients")) {
    const config = existsSync(join(STATE, "patgate.wrangler.toml")) ? join(STATE, "patgate.wrangler.toml") : snapshotConfig();
    info.clients = await clientsTarget(config);
  }
  // 6.-7. the gate: floor C and patgate in front of the same constant upstream.
  let gt = null;
  if (wanted("floor-c") || wanted("gate")) {
    const upstream = await startUpstream();
    try {
      if (wanted("floor-c")) await floorC();
      if (wanted("gate")) gt = await gateTarget();
    } finally {
      upstream.close();
    }
  }
  info.load1 = loadavg()[0];
  info.finished = new Date();
  report(info, pg, { wrkVersion, gt });
}

/** The constant upstream behind floor C and the gate: a small JSON answer (Node, in this process). */

try {
  await main();
} catch (e) {
  console.error(`[bench] ${e.stack ?? e}`);
  process.exitCode = 2;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
