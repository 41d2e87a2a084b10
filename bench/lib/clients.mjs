// bench/lib/clients.mjs: part of the benchmark runner (bench/run.mjs). Client authentication
// among many self-registered clients: the clients of the growth set, and the scenarios measured
// before and after inserting them.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TOOLS_BIN } from "../instructions.mjs";
import { wranglerRun } from "./growth.mjs";
import { GROWTH, PORTS, log, fmt, sleep } from "./settings.mjs";
import { scenario, startTarget, launch } from "./load.mjs";
import { req, json, basic, FORM } from "./http.mjs";

/** The benchmark's `CLIENT_ID_KEYS` key (base64 of 32 bytes): tags the growth set's `pgd_` ids. */
export const BENCH_CLIENT_ID_KEY = Buffer.alloc(32, 7).toString("base64");
export const CLIENT_VARS = { CLIENT_ID_KEYS: JSON.stringify([BENCH_CLIENT_ID_KEY]) };

/**
 * Inserts `n` self-registered (RFC 7591) clients, written by `patgate-tools seed-clients`
 * (src/bin/tools.rs: the Worker's client columns and `pgd_` id format), with `wrangler d1
 * execute`. Returns the time it took and one of the ids.
 */
export function bulkInsertClients(dir, n, config) {
  const now = Math.floor(Date.now() / 1000);
  const seedDir = join(dir, "growth-clients");
  mkdirSync(seedDir, { recursive: true });
  const r = spawnSync(TOOLS_BIN, ["seed-clients", String(n), seedDir, String(now), BENCH_CLIENT_ID_KEY], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`patgate-tools seed-clients failed: ${r.stderr}`);
  const files = readdirSync(seedDir).filter((f) => f.endsWith(".sql")).sort((x, y) => parseInt(x.slice(8)) - parseInt(y.slice(8)));
  const sample = readFileSync(join(seedDir, files[0]), "utf8").match(/'(pgd_[0-9A-Za-z]{44})'/)?.[1];
  if (!sample) throw new Error("no pgd_ id in the seeded clients");
  const t = performance.now();
  for (const [i, f] of files.entries()) {
    wranglerRun(["d1", "execute", "DB", "--local", "--persist-to", dir, "--config", config, "--yes", "--file", join(seedDir, f)]);
    log(`growth: clients file ${i + 1} / ${files.length} inserted`);
  }
  rmSync(seedDir, { recursive: true, force: true });
  return { ms: performance.now() - t, sample };
}

/** The same id with its tag's last character changed: the shape of a dynamic id, never issued. */
export function forgeDynamicId(id) {
  return id.slice(0, -1) + (id.at(-1) === "0" ? "1" : "0");
}

const revokeGarbage = (client) =>
  client.secret
    ? { method: "POST", contentType: FORM, auth: basic(client.id, client.secret), body: "token=garbage" }
    : { method: "POST", contentType: FORM, body: `client_id=${encodeURIComponent(client.id)}&token=garbage` };

/** One RFC 7009 revocation of a garbage token: nothing but the client's authentication. */
export async function authenticateOnce(url, client) {
  const o = revokeGarbage(client);
  const t0 = performance.now();
  const r = await req(`${url}/oauth/revoke`, { method: "POST", headers: { "content-type": FORM, ...(o.auth ? { authorization: o.auth } : {}) }, body: o.body });
  return { status: r.status, ms: performance.now() - t0, text: r.text };
}

export const DEMO_CLIENT = { id: "demo_client", secret: "demo-client-secret" };

/**
 * Client authentication, measured as RFC 7009 revocations of a garbage token (the answer is 200
 * whatever the token; the request does nothing but authenticate the client). `clients`: the
 * confidential demo client, and after the growth set a self-registered public client and a
 * forged `pgd_` id (401).
 */
export async function clientAuthScenarios(t, { counters, section, suffix = "", dynamic }) {
  const out = {};
  const check = async (client, want) => {
    const r = await authenticateOnce(t.url, client);
    if (r.status !== want) throw new Error(`client ${client.id}: RFC 7009 answered ${r.status}, expected ${want}: ${r.text}`);
  };
  await check(DEMO_CLIENT, 200);
  out.confidential = await scenario(t, `patgate: client authentication, confidential (Basic)${suffix}`, "/oauth/revoke", revokeGarbage(DEMO_CLIENT), { counters, section });
  if (dynamic) {
    const pub = { id: dynamic };
    await check(pub, 200);
    out.dynamic = await scenario(t, `patgate: client authentication, a self-registered public client${suffix}`, "/oauth/revoke", revokeGarbage(pub), { counters, section });
    const forged = { id: forgeDynamicId(dynamic) };
    await check(forged, 401);
    out.forged = await scenario(t, `patgate: client authentication, a forged pgd_ id (401)${suffix}`, "/oauth/revoke", revokeGarbage(forged), { counters, section });
  }
  log(`client authentication${suffix}: ${Object.entries(out).map(([k, v]) => `${k} ${fmt(v.rps)} req/s`).join(", ")}`);
  return out;
}

/**
 * The clients target: patgate on its own fresh state, client authentication measured with the
 * seeded clients only, then again after inserting GROWTH self-registered clients and a restart
 * (the first authentication of the new isolate timed on its own).
 */
export async function clientsTarget(config) {
  const vars = { DEV_COUNTERS: "true", ISSUER: `http://127.0.0.1:${PORTS.clients}`, ...CLIENT_VARS };
  let t = await startTarget("clients", { prepare: true, vars, config });
  const out = {};
  try {
    const counters = async () => json(`${t.url}/_dev/counters`);
    out.base = await clientAuthScenarios(t, { counters, section: "clients" });
    out.memBase = (await counters()).wasm_memory_bytes;
    await t.stop();
    const clients = bulkInsertClients(t.dir, GROWTH, config);
    out.insertMs = clients.ms;
    log(`clients: inserted ${fmt(GROWTH)} self-registered clients in ${fmt(clients.ms / 1000, 1)} s`);
    t = await launch("clients", t.dir, { vars, config });
    // A new isolate's first client authentication (the client records it must read first).
    out.first = await authenticateOnce(t.url, DEMO_CLIENT);
    log(`clients: first client authentication after the restart: ${out.first.status} in ${fmt(out.first.ms, 1)} ms`);
    // The request that finds the isolate's client table stale (REGISTRY_CACHE_SECONDS, 30 s)
    // reads it again before answering: timed alone.
    await sleep(31_000);
    out.refresh = await authenticateOnce(t.url, DEMO_CLIENT);
    log(`clients: the authentication that refreshed the client table: ${out.refresh.status} in ${fmt(out.refresh.ms, 1)} ms`);
    out.large = await clientAuthScenarios(t, { counters, section: "clients", suffix: `, +${fmt(GROWTH)} clients stored`, dynamic: clients.sample });
    out.memLarge = (await counters()).wasm_memory_bytes;
    log(`clients: wasm memory ${fmt(out.memBase / 2 ** 20, 1)} MiB with the seeded clients, ${fmt(out.memLarge / 2 ** 20, 1)} MiB with +${fmt(GROWTH)}`);
  } finally {
    await t.stop();
  }
  return out;
}
