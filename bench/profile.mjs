// bench/profile.mjs: where workerd's CPU goes for one benchmark scenario (V8 CPU profile).
//
// `node bench/profile.mjs [active|garbage|floor-b|floor-a2] [seconds]` starts the target under
// `wrangler dev` (the release build in build/worker; run `npm run build` first), loads it with wrk
// while V8's sampling profiler runs in the Worker's isolate (through wrangler's inspector), and
// prints the functions with the most self time, with the share of JS, wasm and runtime
// ("(program)", garbage collection). A tool for finding the next optimisation, not a benchmark:
// the profiler itself slows the isolate; compare shares, not absolute times.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareState, startDevServer, writeConfig, NO_RATE_LIMITS } from "../scripts/devserver.mjs";
import { ROOT } from "../scripts/tools.mjs";
import { devToken } from "../scripts/dev-token.mjs";
import WebSocket from "ws"; // wrangler's own dependency
import { groupTicks, TICK_MS } from "./lib/load.mjs";

const scenario = process.argv[2] ?? "active";
const secs = Number(process.argv[3] ?? 5);
const offset = Number(process.env.BENCH_PORT_OFFSET ?? 0);
const port = 8871 + offset;
const inspectorPort = 9271 + offset;
const state = join(ROOT, "bench", ".state", "profile");
rmSync(state, { recursive: true, force: true });
mkdirSync(state, { recursive: true });

const DEMO_API = `Basic ${Buffer.from("demo_api:demo-api-secret").toString("base64")}`;
const FORM = "application/x-www-form-urlencoded";

let config;
if (scenario === "floor-b" || scenario === "floor-a2") {
  config = join(ROOT, "bench", scenario === "floor-b" ? "floor-b" : "floor-a", "wrangler.toml");
} else {
  config = join(state, "wrangler.toml");
  writeConfig(config, { limits: NO_RATE_LIMITS });
  prepareState(join(state, "d"), { config });
}
const server = await startDevServer({
  port,
  persistDir: join(state, "d"),
  config,
  inspectorPort,
  vars: { ISSUER: `http://127.0.0.1:${port}` },
});
try {
  let wrkArgs;
  const lua = join(state, "req.lua");
  if (scenario === "floor-b") {
    await fetch(`${server.url}/`, { method: "PUT", body: JSON.stringify({ id: "x".repeat(16), kind: "pat", sub: "u", client_id: "c", scopes: ["demo_api:read"], iat: 1, exp: 2 }) });
    writeFileSync(lua, 'wrk.method = "GET"\n');
  } else if (scenario === "floor-a2") {
    writeFileSync(lua, `wrk.method = "POST"\nwrk.body = "token=${"x".repeat(53)}"\nwrk.headers["Content-Type"] = "${FORM}"\nwrk.headers["Authorization"] = "${DEMO_API}"\n`);
  } else {
    let token = "garbage";
    if (scenario === "active") {
      const r = await fetch(`${server.url}/api/pats`, {
        method: "POST",
        headers: { authorization: `Bearer ${devToken("profile", { ttl: 3600 })}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "profile", scopes: ["demo_api:read"], expires_in_days: 30 }),
      });
      token = (await r.json()).token;
    }
    writeFileSync(lua, `wrk.method = "POST"\nwrk.body = "token=${token}"\nwrk.headers["Content-Type"] = "${FORM}"\nwrk.headers["Authorization"] = "${DEMO_API}"\n`);
  }
  const path = scenario === "floor-b" || scenario === "floor-a2" ? "/" : "/oauth/introspect";
  const wrk = (d) =>
    new Promise((res, rej) =>
      execFile("wrk", ["-t1", "-c16", `-d${d}s`, "-s", lua, `${server.url}${path}`], (e, out) => (e ? rej(e) : res(out))),
    );
  const probe = await fetch(`${server.url}${path}`, scenario === "floor-b" ? {} : { method: "POST", headers: { authorization: DEMO_API, "content-type": FORM }, body: readFileSync(lua, "utf8").match(/wrk.body = "(.*)"/)[1] });
  console.log(`probe: ${probe.status} ${(await probe.text()).slice(0, 200)}`);
  await wrk(2); // warm-up: JIT, caches
  if (process.env.CPU_ONLY) {
    // No profiler: CPU time of workerd per request (from /proc), for A/B comparisons.
    const before = groupTicks(server.proc.pid);
    const out = await wrk(secs);
    const after = groupTicks(server.proc.pid);
    const reqs = Number(out.match(/(\d+) requests in/)?.[1] ?? 0);
    const ms = ((after.workerd - before.workerd) * TICK_MS) / reqs;
    console.log(`${scenario}: ${reqs} requests, ${(reqs / secs).toFixed(0)} req/s, workerd CPU ${ms.toFixed(3)} ms/request`);
    process.exitCode = 0;
  } else {

  const list = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const target = list.find((t) => t.webSocketDebuggerUrl) ?? list[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r, j) => { ws.on("open", r); ws.on("error", j); });
  let id = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
  });
  const call = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 });
  await call("Profiler.start");
  const out = await wrk(secs);
  const { result } = await call("Profiler.stop");
  ws.close();
  const reqs = Number(out.match(/(\d+) requests in/)?.[1] ?? 0);

  const profile = result.profile;
  const self = new Map();
  const dt = profile.timeDeltas;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const hits = new Map();
  profile.samples.forEach((s, i) => hits.set(s, (hits.get(s) ?? 0) + (dt[i + 1] ?? 0)));
  let total = 0;
  const kinds = { wasm: 0, js: 0, runtime: 0 };
  for (const [nid, us] of hits) {
    const n = byId.get(nid);
    const f = n.callFrame;
    const name = f.functionName || "(anonymous)";
    const where = f.url ? f.url.split("/").pop() : "";
    // Minified or anonymous JS: add the position, to look it up in build/worker/shim.mjs.
    const pos = where && !where.includes("wasm") && f.functionName.length <= 2 ? `:${f.lineNumber + 1}:${f.columnNumber + 1}` : "";
    const key = `${name} ${where}${pos}`.trim();
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
    if (name === "(idle)") continue;
    if (f.url?.startsWith("wasm://") || /^\$?(func|wasm)|::/.test(name)) kinds.wasm += us;
    else if (name.startsWith("(")) kinds.runtime += us;
    else kinds.js += us;
  }
  const idle = self.get("(idle)") ?? 0;
  const busy = total - idle;
  console.log(`${scenario}: ${reqs} requests in ${secs}s under the profiler; busy ${(busy / 1000).toFixed(0)} ms = ${(busy / Math.max(reqs, 1)).toFixed(1)} us/request (sampled)`);
  console.log(`shares of busy time: wasm ${(100 * kinds.wasm / busy).toFixed(1)}%, JS ${(100 * kinds.js / busy).toFixed(1)}%, runtime ${(100 * kinds.runtime / busy).toFixed(1)}%`);
  const top = [...self].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30));
  for (const [k, us] of top) console.log(`${(100 * us / busy).toFixed(1).padStart(5)}%  ${(us / Math.max(reqs, 1)).toFixed(2).padStart(6)} us/req  ${k}`);
  }
} finally {
  await server.stop();
}
