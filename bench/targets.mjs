// bench/targets.mjs: part of the benchmark runner (bench/run.mjs).
import { createHash, randomBytes } from "node:crypto";
import { cpSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import { writeConfig, NO_RATE_LIMITS } from "../scripts/devserver.mjs";
import { devToken } from "../scripts/dev-token.mjs";
import { ROOT } from "../scripts/tools.mjs";
import { checksum } from "../scripts/token-format.mjs";
import { GROWTH, STATE, PORTS, log, fmt } from "./lib/settings.mjs";
import { startTarget, launch, results, scenario } from "./lib/load.mjs";
import { req, json, basic, FORM, DEMO_API, forgeToken } from "./lib/http.mjs";
import { bulkInsert } from "./lib/growth.mjs";
import { seedFlow, checkLine } from "./lib/flow.mjs";

export async function startUpstream() {
  const body = JSON.stringify({ ok: true, from: "bench upstream" });
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(PORTS.upstream, "127.0.0.1", resolve));
  server.keepAliveTimeout = 60_000;
  return server;
}

/** Floor C: the least a gate can cost here: one KV read, then fetch the upstream. */
export async function floorC() {
  const t = await startTarget("floor-c", { config: "bench/floor-c/wrangler.toml", vars: { UPSTREAM: `http://127.0.0.1:${PORTS.upstream}` } });
  try {
    await json(`${t.url}/_grant`, { method: "PUT", body: JSON.stringify({ sub: "alice", scopes: ["demo_api:read"] }) }, [204]);
    const r = await req(`${t.url}/hello`);
    if (r.status !== 200 || !r.json().ok) throw new Error(`floor C did not forward: ${r.status} ${r.text}`);
    await scenario(t, "floor C: one KV read, then forward to the upstream", "/hello");
  } finally { await t.stop(); }
}

/** patgate's gate in front of the same upstream: an active PAT and a garbage token (401). */
export async function gateTarget() {
  const config = existsSync(join(STATE, "patgate.wrangler.toml")) ? join(STATE, "patgate.wrangler.toml") : snapshotConfig();
  const vars = { DEV_COUNTERS: "true", ISSUER: `http://127.0.0.1:${PORTS.gate}` };
  const t = await startTarget("gate", { prepare: true, vars, config });
  const out = {};
  try {
    const host = `localhost:${PORTS.gate}`; // not the issuer's host: gate routes match there
    await json(`${t.url}/admin/routes/bench`, {
      method: "PUT",
      headers: { authorization: "Bearer dev-admin-token", "content-type": "application/json" },
      body: JSON.stringify({ path_prefix: "/gw/bench/", upstream: `http://127.0.0.1:${PORTS.upstream}`, resource: "demo_api", rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }] }),
    }, [201]);
    const pat = await json(`${t.url}/api/pats`, {
      method: "POST",
      headers: { authorization: `Bearer ${devToken("bench-gate", { ttl: 4 * 3600 })}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench", scopes: ["demo_api:read"], expires_in_days: 30 }),
    }, [201]);
    const through = await req(`http://${host}/gw/bench/hello`, { headers: { authorization: `Bearer ${pat.token}` } });
    if (through.status !== 200 || !through.json().ok) throw new Error(`the gate did not forward: ${through.status} ${through.text}`);
    const refused = await req(`http://${host}/gw/bench/hello`, { headers: { authorization: "Bearer garbage" } });
    if (refused.status !== 401) throw new Error(`the gate let garbage through: ${refused.status}`);
    const counters = async () => json(`${t.url}/_dev/counters`);
    out.active = await scenario(t, "patgate gate: active PAT, forwarded to the upstream", "/gw/bench/hello", { auth: `Bearer ${pat.token}`, host }, { counters, section: "gate" });
    out.garbage = await scenario(t, "patgate gate: garbage token (401)", "/gw/bench/hello", { auth: "Bearer garbage", host }, { counters, section: "gate" });
  } finally { await t.stop(); }
  return out;
}

export async function peerToken(url) {
  const { client_id } = await json(`${url}/setup`);
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const redirect = "http://127.0.0.1/callback";
  const q = new URLSearchParams({ response_type: "code", client_id, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: "S256", scope: "read", state: "bench" });
  const auth = await req(`${url}/authorize?${q}`);
  const loc = auth.headers.get("location");
  if (auth.status !== 302 || !loc) throw new Error(`peer /authorize: ${auth.status} ${auth.text}`);
  const code = new URL(loc).searchParams.get("code");
  const tok = await json(`${url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": FORM },
    body: new URLSearchParams({ grant_type: "authorization_code", code, client_id, redirect_uri: redirect, code_verifier: verifier }).toString(),
  });
  if (!tok.access_token) throw new Error(`peer token endpoint: ${JSON.stringify(tok)}`);
  return tok.access_token;
}

/**
 * Copies build/worker/ to bench/.state/patgate-build/ and writes a wrangler config that points at
 * the copy (same bindings, absolute migrations dir): the run measures the build it started with,
 * even if build/ is rebuilt meanwhile (wrangler dev would reload on that).
 */
export function snapshotConfig() {
  const snap = join(STATE, "patgate-build");
  rmSync(snap, { recursive: true, force: true });
  cpSync(join(ROOT, "build", "worker"), snap, { recursive: true });
  // The load comes from one IP and one user: the rate limits would measure themselves.
  return writeConfig(join(STATE, "patgate.wrangler.toml"), { limits: NO_RATE_LIMITS, workerDir: snap });
}

export async function patgate(info, config) {
  const vars = { DEV_COUNTERS: "true", ISSUER: `http://127.0.0.1:${PORTS.patgate}` };
  let t = await startTarget("patgate", { prepare: true, vars, config });
  info.patgateReadyMs = t.readyMs;
  const out = {};
  try {
    const url = t.url;
    let t0 = performance.now();
    await req(`${url}/oauth/introspect`, { method: "POST", headers: { authorization: DEMO_API, "content-type": FORM }, body: "token=garbage" });
    info.firstRequestMs = performance.now() - t0;
    const counters = async () => json(`${t.url}/_dev/counters`);
    const c = await req(`${url}/_dev/counters`);
    if (c.status !== 200) throw new Error(`GET /_dev/counters answered ${c.status}: is DEV_COUNTERS honoured?`);

    // Setup: ~100 PATs; the listing user owns 60 of them (a full page of 50).
    const LIST_USER = "bench-lister";
    const jwt = (sub) => devToken(sub, { ttl: 4 * 3600 });
    const create = (sub) =>
      json(`${url}/api/pats`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt(sub)}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "bench", scopes: ["demo_api:read"], expires_in_days: 30 }),
      }, [201]);
    const pats = [];
    for (let i = 0; i < 100; i++) pats.push(await create(i < 60 ? LIST_USER : `bench-user-${i % 8}`));
    const active = pats[60];
    const revoked = pats[61];
    await json(`${url}/api/pats/${revoked.id}`, { method: "DELETE", headers: { authorization: `Bearer ${jwt("bench-user-5")}` } }, [204]);
    // The forged token must pass the format check that real tokens pass.
    if (active.token.length !== 53 || checksum(active.token.slice(0, 47)) !== active.token.slice(47)) {
      throw new Error(`issued token ${active.token} does not match the documented format (checksum ${checksum(active.token.slice(0, 47))})`);
    }
    const unknown = forgeToken();

    const intro = (token) => ({ method: "POST", body: `token=${encodeURIComponent(token)}`, contentType: FORM, auth: DEMO_API });
    const check = async (token, want) => {
      const r = await json(`${url}/oauth/introspect`, { method: "POST", headers: { authorization: DEMO_API, "content-type": FORM }, body: intro(token).body });
      if (r.active !== want) throw new Error(`introspection of ${token.slice(0, 12)}...: expected active=${want}, got ${JSON.stringify(r)}`);
    };
    await check(active.token, true);
    await check("garbage", false);
    await check(unknown, false);
    await check(revoked.token, false);

    // Floor W: patgate's own runtime path (shim body read, wasm entry and executor, KV binding,
    // Response) with none of its logic: the same POST, one KV read of a grant-sized value.
    const grantJson = JSON.stringify({ id: active.id, kind: "pat", sub: "bench-user", client_id: "pat_client", scopes: ["demo_api:read"], iat: 1795478400, exp: 1798761600, name: "bench" });
    await req(`${url}/_dev/floor`, { method: "PUT", body: grantJson });
    const w = await req(`${url}/_dev/floor`, { method: "POST", headers: { authorization: DEMO_API, "content-type": FORM }, body: intro(active.token).body });
    if (w.status !== 200 || w.json().kind !== "pat") throw new Error(`floor W did not answer its KV value: ${w.status} ${w.text}`);
    out.floorW = await scenario(t, "floor W: patgate's wasm path, same POST body, one KV read, no logic", "/_dev/floor", intro(active.token), { counters });
    out.active = await scenario(t, "patgate: introspect active PAT", "/oauth/introspect", intro(active.token), { counters });
    out.garbage = await scenario(t, "patgate: introspect garbage token", "/oauth/introspect", intro("garbage"), { counters });
    out.unknown = await scenario(t, "patgate: introspect unknown well-formed token", "/oauth/introspect", intro(unknown), { counters });
    out.revoked = await scenario(t, "patgate: introspect revoked PAT", "/oauth/introspect", intro(revoked.token), { counters });
    const listOpts = { auth: `Bearer ${jwt(LIST_USER)}` };
    const page = await json(`${url}/api/pats?limit=50`, { headers: { authorization: listOpts.auth } });
    if (page.pats?.length !== 50 || !page.next_cursor) throw new Error(`listing: expected a full page with a cursor, got ${page.pats?.length}`);
    out.list = await scenario(t, "patgate: list 50 of a user's PATs", "/api/pats?limit=50", listOpts, { counters });

    // Writes (one measured run each: every request adds a row).
    out.create = await scenario(t, "patgate: create PAT (POST /api/pats)", "/api/pats", {
      method: "POST", contentType: "application/json", auth: `Bearer ${jwt("bench-creator")}`,
      body: JSON.stringify({ name: "bench", scopes: ["demo_api:read"], expires_in_days: 30 }),
    }, { counters, rounds: 1, section: "writes" });
    const ccOpts = { method: "POST", contentType: FORM, auth: basic("demo_client", "demo-client-secret"), body: "grant_type=client_credentials&scope=demo_api%3Aread" };
    const cc = await req(`${url}/oauth/token`, { method: "POST", headers: { authorization: ccOpts.auth, "content-type": FORM }, body: ccOpts.body });
    if (cc.status === 200) {
      out.cc = await scenario(t, "patgate: client_credentials (POST /oauth/token)", "/oauth/token", ccOpts, { counters, rounds: 1, section: "writes" });
    } else {
      out.cc = { na: `n/a (not implemented: ${cc.status})` };
      results.push({ section: "writes", name: "patgate: client_credentials (POST /oauth/token)", na: out.cc.na });
      log(`client_credentials: ${out.cc.na}`);
    }

    // The authorization server: code exchange and refresh rotation, each request single use
    // (seeded rows, one wrk line each: bench/lib/flow.mjs). One refresh token per grant: every
    // request rotates a first refresh token.
    await t.stop();
    const flow = seedFlow(t.dir, config);
    t = await launch("patgate", t.dir, { vars, config });
    await checkLine(t.url, flow.codes, "authorization code exchange");
    const refreshed = await checkLine(t.url, flow.refresh, "refresh");
    if (!refreshed.refresh_token?.startsWith("pgr_")) throw new Error(`refresh: no rotated refresh token in ${JSON.stringify(Object.keys(refreshed))}`);
    out.code = await scenario(t, "patgate: authorization code exchange (POST /oauth/token, public client, PKCE)", "/oauth/token", { lines: flow.codes }, { counters, section: "flow" });
    out.refresh = await scenario(t, "patgate: refresh token rotation (POST /oauth/token)", "/oauth/token", { lines: flow.refresh }, { counters, section: "flow" });

    // Growth: GROWTH more PATs of other users, then the same introspection and listing.
    await t.stop();
    t0 = performance.now();
    out.insert = bulkInsert(t.dir, GROWTH, config);
    out.insertS = (performance.now() - t0) / 1000;
    log(`growth: inserted ${fmt(GROWTH)} PATs (D1 rows + KV grants) in ${fmt(out.insertS, 1)} s`);
    t = await launch("patgate", t.dir, { vars, config });
    await check(active.token, true);
    out.activeLarge = await scenario(t, `patgate: introspect active PAT, +${fmt(GROWTH)} PATs stored`, "/oauth/introspect", intro(active.token), { counters, section: "growth" });
    out.listLarge = await scenario(t, `patgate: list 50 of a user's PATs, +${fmt(GROWTH)} PATs stored`, "/api/pats?limit=50", listOpts, { counters, section: "growth" });
  } finally {
    await t.stop();
  }
  return out;
}

