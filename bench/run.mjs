// `npm run bench`: patgate's introspection against floors and a peer, through the same local
// runtime path (`wrangler dev`, workerd) with the same load tool and settings. Prints a table and
// writes bench/RESULTS.md. Options: --smoke (2 s runs, small growth set), --no-build,
// BENCH_DURATION=10s, BENCH_GROWTH=100000.
import { spawnSync, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { cpus, totalmem } from "node:os";
import { build } from "../scripts/build.mjs";
import { prepareState, startDevServer } from "../scripts/devserver.mjs";
import { devToken } from "../scripts/dev-token.mjs";
import { ROOT, nodeBin, buildEnv } from "../scripts/tools.mjs";

const args = new Set(process.argv.slice(2));
const SMOKE = args.has("--smoke");
/** Only floors and the two hot introspection paths (for quick A/B experiments); writes no file. */
const QUICK = args.has("--quick");
const DURATION = process.env.BENCH_DURATION ?? (SMOKE ? "2s" : "5s");
const WARMUP = SMOKE ? "1s" : "3s";
const THREADS = 1;
const CONNECTIONS = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 3));
const GROWTH = Number(process.env.BENCH_GROWTH ?? (SMOKE ? 2000 : 100000));
const STATE = join(ROOT, "bench", ".state");
const LUA = join(ROOT, "bench", "wrk.lua");
const WRK_SETTINGS = `wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION} --latency, ${ROUNDS} interleaved rounds, median per metric (warm-up ${WARMUP} first); POST bodies via bench/wrk.lua`;

function ensureWrk() {
  if (spawnSync("wrk", ["-v"]).error) {
    console.log("[bench] wrk not found: installing Debian's wrk (apt-get install -y wrk)");
    execFileSync("apt-get", ["install", "-y", "wrk"], { stdio: "inherit" });
  }
}

function wrk(url, { method = "GET", body = "", contentType = "", auth = "", duration = DURATION } = {}) {
  const r = spawnSync(
    "wrk",
    [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${duration}`, "--latency", "-s", LUA, url],
    {
      encoding: "utf8",
      env: { ...process.env, WRK_METHOD: method, WRK_BODY: body, WRK_CONTENT_TYPE: contentType, WRK_AUTH: auth },
      timeout: 120_000,
    },
  );
  const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith("WRKJSON "));
  if (!line) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  const s = JSON.parse(line.slice(8));
  return {
    rps: s.requests / (s.duration_us / 1e6),
    p50: s.p50_us / 1000,
    p99: s.p99_us / 1000,
    requests: s.requests,
    errors: Object.values(s.errors).reduce((a, b) => a + b, 0),
  };
}

/** Warm up, then measure. */
function measure(url, opts) {
  wrk(url, { ...opts, duration: WARMUP });
  return wrk(url, opts);
}

/** Starts a target on fresh state; returns { url, dir, readyMs, restart(), stop() }. */
async function startTarget(name, opts) {
  const dir = join(STATE, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (opts.prepare) prepareState(dir);
  const t0 = performance.now();
  let server = await startDevServer({ persistDir: dir, ...opts });
  const readyMs = performance.now() - t0;
  return {
    url: server.url,
    dir,
    readyMs,
    async restart() {
      await server.stop();
      server = await startDevServer({ persistDir: dir, ...opts });
    },
    stop: () => server.stop(),
  };
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};

/** Median of each metric over runs. */
const summarize = (runs) => ({
  rps: median(runs.map((r) => r.rps)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99)),
  requests: runs.reduce((a, r) => a + r.requests, 0),
  errors: runs.reduce((a, r) => a + r.errors, 0),
  runs: runs.length,
});

const basic = (id, secret) => "Basic " + Buffer.from(`${id}:${secret}`).toString("base64");
const FORM = "application/x-www-form-urlencoded";
const DEMO_API = basic("demo_api", "demo-api-secret");
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function unknownToken() {
  let s = "pgp_";
  const bytes = randomBytes(43);
  for (const b of bytes) s += ALPHABET[b % 62];
  let crc = crc32(Buffer.from(s));
  let sum = "";
  for (let i = 0; i < 6; i++) {
    sum = ALPHABET[crc % 62] + sum;
    crc = Math.floor(crc / 62);
  }
  return s + sum;
}

function crc32(buf) {
  // CRC32 (IEEE), as zlib.crc32 in newer Node versions.
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (~c) >>> 0;
}

async function json(url, init) {
  let r;
  try {
    r = await fetch(url, init);
  } catch {
    // a pooled connection closed by the server after a load run: retry once on a new one
    r = await fetch(url, { ...init, headers: { ...(init?.headers ?? {}), connection: "close" } });
  }
  const t = await r.text();
  if (!r.ok) throw new Error(`${init?.method ?? "GET"} ${url}: ${r.status} ${t}`);
  return t ? JSON.parse(t) : null;
}

async function createPat(url, user, scopes = ["demo_api:read"]) {
  return json(`${url}/api/pats`, {
    method: "POST",
    headers: { authorization: `Bearer ${devToken(user, { ttl: 86400 })}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench", scopes, expires_in_days: 30 }),
  });
}

const counters = (url) => json(`${url}/_dev/counters`);

/** Inserts `n` PATs of other users straight into the local D1 and KV (growth test). */
function bulkInsert(dir, n) {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + 30 * 86400;
  const batch = 500;
  let sql = "";
  const kv = [];
  for (let i = 0; i < n; i += batch) {
    const rows = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const hash = createHash("sha256").update(`bulk-${j}-${now}`).digest("hex");
      const id = `bulk${j}`;
      rows.push(`('${id}','pat','${hash}','user${j % 5000}','pat_client','bulk','demo_api:read',${now - j},${exp})`);
      kv.push({
        key: `g:${hash}`,
        value: JSON.stringify({ id, kind: "pat", sub: `user${j % 5000}`, client_id: "pat_client", scopes: ["demo_api:read"], iat: now, exp, name: "bulk" }),
        expiration: exp,
      });
    }
    sql += `INSERT INTO tokens (id, kind, token_hash, subject, client_id, name, scopes, created_at, expires_at) VALUES ${rows.join(",")};\n`;
  }
  const sqlFile = join(dir, "bulk.sql");
  const kvFile = join(dir, "bulk-kv.json");
  writeFileSync(sqlFile, sql);
  writeFileSync(kvFile, JSON.stringify(kv));
  const common = ["--local", "--persist-to", dir, "--config", join(ROOT, "wrangler.toml")];
  const run = (a) => {
    const r = spawnSync(nodeBin("wrangler"), a, { cwd: ROOT, env: buildEnv(), encoding: "utf8", timeout: 600_000 });
    if (r.status !== 0) throw new Error(`wrangler ${a.join(" ")}: ${r.stdout}${r.stderr}`);
  };
  run(["d1", "execute", "DB", ...common, "--file", sqlFile]);
  run(["kv", "bulk", "put", kvFile, "--binding", "GRANTS", ...common]);
}

/** Startup CPU time of a worker as `wrangler check startup` profiles it (locally, in workerd). */
function startupProfileMs(config) {
  const out = join(STATE, `startup-${config.replace(/\W+/g, "_")}.cpuprofile`);
  const r = spawnSync(nodeBin("wrangler"), ["check", "startup", "--config", config, "--outfile", out],
    { cwd: ROOT, env: buildEnv(), encoding: "utf8", timeout: 180_000 });
  if (r.status !== 0) return null;
  const p = JSON.parse(readFileSync(out, "utf8"));
  return (p.endTime - p.startTime) / 1000;
}

function bundle() {
  const wasm = readFileSync(join(ROOT, "build", "worker", "index.wasm"));
  const js = readFileSync(join(ROOT, "build", "worker", "shim.mjs"));
  return {
    wasmRaw: wasm.length,
    wasmGzip: gzipSync(wasm, { level: 9 }).length,
    jsRaw: js.length,
    jsGzip: gzipSync(js, { level: 9 }).length,
    startupMs: startupProfileMs("wrangler.toml"),
    floorStartupMs: startupProfileMs("bench/floor-a/wrangler.toml"),
  };
}

const fmt = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const kib = (n) => `${fmt(n / 1024, 1)} KiB`;

async function main() {
  ensureWrk();
  if (!args.has("--no-build")) build();
  rmSync(STATE, { recursive: true, force: true });
  const rows = [];
  const add = (name, r, notes = "") => {
    rows.push({ name, ...r, notes });
    console.log(`[bench] ${name}: ${fmt(r.rps)} req/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms${r.errors ? `, ${r.errors} non-2xx/errors` : ""}`);
  };

  // All targets run at once (an idle workerd costs no CPU) so that measurements can interleave.
  const floorA = await startTarget("floor-a", { port: 8851, config: "bench/floor-a/wrangler.toml" });
  const floorB = await startTarget("floor-b", { port: 8852, config: "bench/floor-b/wrangler.toml" });
  const peer = QUICK ? null : await startTarget("peer", { port: 8853, config: "bench/peer/wrangler.toml" });
  const pg = await startTarget("patgate", { port: 8854, prepare: true, vars: { DEV_COUNTERS: "true", ISSUER: "http://127.0.0.1:8854" } });
  const all = [floorA, floorB, peer, pg].filter(Boolean);
  let ops, growth, listing, startup;
  try {
    await fetch(`${floorB.url}/`, { method: "PUT", body: JSON.stringify({ id: "x", kind: "pat", sub: "alice", scopes: ["demo_api:read"] }) });
    const scenarios = [
      { name: "floor A: constant JSON", url: `${floorA.url}/` },
      { name: "floor B: one KV read", url: `${floorB.url}/` },
    ];
    if (peer) {
      const { client_id } = await json(`${peer.url}/setup`);
      const verifier = randomBytes(32).toString("base64url");
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      const q = new URLSearchParams({ response_type: "code", client_id, redirect_uri: "http://127.0.0.1/callback",
        code_challenge: challenge, code_challenge_method: "S256", scope: "read", state: "s" });
      const auth = await fetch(`${peer.url}/authorize?${q}`, { redirect: "manual" });
      const code = new URL(auth.headers.get("location")).searchParams.get("code");
      const tok = await json(`${peer.url}/oauth/token`, {
        method: "POST",
        headers: { "content-type": FORM },
        body: new URLSearchParams({ grant_type: "authorization_code", code, client_id,
          redirect_uri: "http://127.0.0.1/callback", code_verifier: verifier }).toString(),
      });
      const check = await fetch(`${peer.url}/api/hello`, { headers: { authorization: `Bearer ${tok.access_token}` } });
      if (check.status !== 200) throw new Error(`peer rejected its own token: ${check.status}`);
      scenarios.push({ name: "peer: workers-oauth-provider, valid bearer", url: `${peer.url}/api/hello`, opts: { auth: `Bearer ${tok.access_token}` } });
    }

    const url = pg.url;
    startup = { readyMs: pg.readyMs };
    const t0 = performance.now();
    await fetch(`${url}/oauth/introspect`, { method: "POST", headers: { authorization: DEMO_API, "content-type": FORM }, body: "token=garbage" });
    startup.firstRequestMs = performance.now() - t0;
    const pats = [];
    for (let i = 0; i < 100; i++) pats.push(await createPat(url, `user-${i % 10}`));
    const active = pats[0].token;
    const revoked = pats[1];
    await json(`${url}/api/pats/${revoked.id}`, { method: "DELETE", headers: { authorization: `Bearer ${devToken("user-1", { ttl: 86400 })}` } });
    const intro = (token) => ({ method: "POST", body: `token=${token}`, contentType: FORM, auth: DEMO_API });
    const activeSc = { name: "patgate: introspect active PAT", url: `${url}/oauth/introspect`, opts: intro(active), counted: true };
    const garbageSc = { name: "patgate: introspect garbage token", url: `${url}/oauth/introspect`, opts: intro("garbage"), counted: true };
    scenarios.push(activeSc, garbageSc);
    if (!QUICK) {
      scenarios.push(
        { name: "patgate: introspect unknown well-formed token", url: `${url}/oauth/introspect`, opts: intro(unknownToken()) },
        { name: "patgate: introspect revoked PAT", url: `${url}/oauth/introspect`, opts: intro(revoked.token) },
      );
    }

    for (const sc of scenarios) {
      wrk(sc.url, { ...sc.opts, duration: WARMUP });
      sc.runs = [];
      sc.delta = {};
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const sc of scenarios) {
        const before = sc.counted ? await counters(url) : null;
        const r = wrk(sc.url, sc.opts);
        sc.runs.push(r);
        if (before) {
          const after = await counters(url);
          for (const k of Object.keys(after)) sc.delta[k] = (sc.delta[k] ?? 0) + after[k] - before[k];
        }
      }
    }
    for (const sc of scenarios) add(sc.name, summarize(sc.runs));
    const activeRequests = activeSc.runs.reduce((a, r) => a + r.requests, 0);
    ops = Object.fromEntries(Object.entries(activeSc.delta).map(([k, v]) => [k, v / activeRequests]));
    ops.do_calls_total = activeSc.delta.do_call;
    ops.seconds = parseFloat(DURATION) * ROUNDS;
    ops.garbage_storage_ops = Object.values(garbageSc.delta).reduce((a, b) => a + b, 0);
    if (QUICK) return;

    // Writes: rare operations, measured once each.
    add("patgate: create PAT", measure(`${url}/api/pats`, {
      method: "POST", contentType: "application/json", auth: `Bearer ${devToken("bench-creator", { ttl: 86400 })}`,
      body: JSON.stringify({ name: "bench", scopes: ["demo_api:read"], expires_in_days: 30 }),
    }));
    add("patgate: client_credentials (reference token)", measure(`${url}/oauth/token`, {
      method: "POST", contentType: FORM, auth: basic("demo_client", "demo-client-secret"),
      body: "grant_type=client_credentials&scope=demo_api:read",
    }));

    // Growth: the same introspection and listing with ~100 PATs and with GROWTH more PATs of
    // other users, each on a freshly restarted server, alternating the two measurements.
    for (const t of [floorA, floorB, peer]) await t?.stop();
    const listOpts = { auth: `Bearer ${devToken("user-0", { ttl: 86400 })}` };
    const growthRuns = async () => {
      await pg.restart();
      const introRuns = [];
      const listRuns = [];
      wrk(`${url}/oauth/introspect`, { ...intro(active), duration: WARMUP });
      wrk(`${url}/api/pats?limit=50`, { ...listOpts, duration: WARMUP });
      for (let i = 0; i < ROUNDS; i++) {
        introRuns.push(wrk(`${url}/oauth/introspect`, intro(active)));
        listRuns.push(wrk(`${url}/api/pats?limit=50`, listOpts));
      }
      return [summarize(introRuns), summarize(listRuns)];
    };
    const [small, listSmall] = await growthRuns();
    await pg.stop();
    const t = performance.now();
    bulkInsert(pg.dir, GROWTH);
    console.log(`[bench] inserted ${fmt(GROWTH)} PATs into local D1 and KV in ${fmt((performance.now() - t) / 1000, 1)} s`);
    const [large, listLarge] = await growthRuns();
    growth = { small, large, ratio: large.rps / small.rps };
    listing = { small: listSmall, large: listLarge, ratio: listLarge.rps / listSmall.rps };
    add("patgate: introspect active PAT, ~100 stored PATs (restarted)", small);
    add(`patgate: introspect active PAT, ${fmt(GROWTH)} stored PATs`, large);
    add("patgate: list 50 PATs (~100 stored)", listSmall);
    add(`patgate: list 50 PATs (${fmt(GROWTH)} stored)`, listLarge);
  } finally {
    for (const t of all) await t.stop().catch(() => {});
  }

  const b = bundle();
  report(rows, ops, growth, listing, b, startup);
}

function report(rows, ops, growth, listing, b, startup) {
  const by = (prefix) => rows.find((r) => r.name.startsWith(prefix));
  const A = by("floor A"), B = by("floor B"), peer = by("peer"), act = by("patgate: introspect active PAT"), garbage = by("patgate: introspect garbage");
  const ratio = (r) => `${fmt(r.rps / B.rps, 2)}`;
  const table = [
    "| scenario | req/s | p50 ms | p99 ms | req/s vs floor B | non-2xx |",
    "|---|---:|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.name} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${ratio(r)}${r === garbage ? ` (${fmt(r.rps / A.rps, 2)} x floor A)` : ""} | ${r.errors} |`),
  ];
  const pass = (ok) => (ok ? "PASS" : "FAIL");
  const targets = [
    ["active PAT >= 0.8 x floor B req/s", act.rps / B.rps, act.rps >= 0.8 * B.rps],
    ["active PAT p99 <= 1.5 x floor B p99", act.p99 / B.p99, act.p99 <= 1.5 * B.p99],
    ["garbage token >= 0.9 x floor A req/s", garbage.rps / A.rps, garbage.rps >= 0.9 * A.rps],
    ["active PAT >= peer req/s", act.rps / peer.rps, act.rps >= peer.rps],
    ["KV reads per active introspection = 1", ops.kv_get, Math.abs(ops.kv_get - 1) < 1e-9],
    ["D1 queries per active introspection = 0", ops.d1_query, ops.d1_query === 0],
    [`DO calls per token per isolate per 30 s <= 1 (calls in ${ops.seconds} s run)`, ops.do_calls_total, ops.do_calls_total <= Math.ceil(ops.seconds / 30)],
    ["storage operations for garbage tokens = 0", ops.garbage_storage_ops, ops.garbage_storage_ops === 0],
    [`introspection with ${fmt(GROWTH)} PATs within 10% of ~100`, growth.ratio, growth.ratio >= 0.9],
    [`listing with ${fmt(GROWTH)} PATs within 10% of ~100`, listing.ratio, listing.ratio >= 0.9],
    ["bundle <= 1 MiB gzip", (b.wasmGzip + b.jsGzip) / 1048576, b.wasmGzip + b.jsGzip <= 1048576],
  ];
  const lines = [
    "# Benchmark results",
    "",
    `Generated by \`npm run bench${SMOKE ? " -- --smoke" : ""}\` on ${new Date().toISOString()}: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${fmt(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
    `Every target runs alone under \`wrangler dev\` (workerd, local KV/D1/DO) on 127.0.0.1; load: \`${WRK_SETTINGS}\`.`,
    "The load tool shares the 2 cores with workerd, so absolute numbers are low; compare ratios from the same run.",
    "",
    ...table,
    "",
    "## Targets",
    "",
    "| target | measured | result |",
    "|---|---:|---|",
    ...targets.map(([t, v, ok]) => `| ${t} | ${fmt(v, 3)} | ${pass(ok)} |`),
    "",
    "## Operation counts (dev counters, per active-PAT introspection in steady state)",
    "",
    `KV reads ${fmt(ops.kv_get, 3)}, KV writes ${fmt(ops.kv_put, 3)}, KV deletes ${fmt(ops.kv_delete, 3)}, D1 queries ${fmt(ops.d1_query, 3)}, Durable Object calls ${fmt(ops.do_call, 5)} (${ops.do_calls_total} in the ${ops.seconds} s run, for one token).`,
    "",
    "## Bundle and startup",
    "",
    `- wasm: ${kib(b.wasmRaw)} raw, ${kib(b.wasmGzip)} gzip; JS glue: ${kib(b.jsRaw)} raw, ${kib(b.jsGzip)} gzip; total gzip ${kib(b.wasmGzip + b.jsGzip)}.`,
    `- startup CPU time (\`wrangler check startup\`, local workerd profile): patgate ${b.startupMs === null ? "n/a" : `${fmt(b.startupMs, 1)} ms`}, floor A ${b.floorStartupMs === null ? "n/a" : `${fmt(b.floorStartupMs, 1)} ms`} (Cloudflare's limit is 1 s).`,
    `- \`wrangler dev\` spawn to first answer: ${fmt(startup.readyMs)} ms (mostly wrangler itself); first request after that: ${fmt(startup.firstRequestMs, 1)} ms.`,
    "",
  ];
  const md = lines.join("\n");
  writeFileSync(join(ROOT, "bench", SMOKE ? "RESULTS-smoke.md" : "RESULTS.md"), md);
  console.log(`\n${md}`);
}

await main();
