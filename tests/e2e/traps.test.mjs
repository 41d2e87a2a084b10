// A wasm trap ends its instance cleanly: the trapping request is answered 500 `server_error`,
// requests in flight on other paths finish untouched on the old instance, later requests run on
// a fresh one (the dev counters restart: new wasm memory), and the Durable Object keeps working.
// The traps are injected by the dev-only `GET /_dev/trap` (only with DEV_COUNTERS, only on the
// issuer's host), which traps after an async step: through a Rust panic (the panic hook sees it)
// or a bare `unreachable` (nothing in Rust does). Also: the dev routes answer only on the issuer's
// host, `/_dev/counters` only to GET and HEAD, and none of them exists without DEV_COUNTERS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import { startServer, createPat, introspect, call, userCall, eventually, ADMIN } from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 9081 + OFFSET;
const SLOW_MS = 1500;

let srv, off, upstream, gateBase;
/** Resolved when the upstream receives a request (the gate's fetch is then in flight). */
let arrived = () => {};

before(async () => {
  upstream = http.createServer((req, res) => {
    arrived();
    req.resume();
    setTimeout(() => res.end("slow upstream"), SLOW_MS);
  });
  upstream.listen(UPSTREAM_PORT, "127.0.0.1");
  await once(upstream, "listening");
  srv = await startServer("traps", 8881);
  off = await startServer("traps-off", 8882, { DEV_COUNTERS: "false" });
  gateBase = srv.url.replace("127.0.0.1", "localhost");
  const route = await call(`${srv.url}/admin/routes/slow`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      path_prefix: "/gw/slow/",
      resource: "demo_api",
      upstream: `http://127.0.0.1:${UPSTREAM_PORT}/`,
      rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }],
    }),
  });
  assert.equal(route.status, 201, route.text);
});
after(async () => {
  await srv?.stop();
  await off?.stop();
  upstream?.close();
});

const counters = async () => (await call(`${srv.url}/_dev/counters`)).json;

function assertTrapAnswer(r, what) {
  assert.equal(r.status, 500, `${what}: ${r.status} ${r.text}`);
  assert.deepEqual(r.json, { error: "server_error" }, what);
  assert.equal(r.headers.get("cache-control"), "no-store", what);
}

/** Requests that must work as before: introspection, PAT creation, discovery, the page. */
async function assertHealthy(pat, what) {
  const i = await introspect(srv.url, pat.token);
  assert.equal(i.status, 200, `${what}: ${i.text}`);
  assert.equal(i.json.active, true, what);
  assert.equal(i.json.scope, "demo_api:read", what);
  const made = await createPat(srv.url, "carol");
  assert.equal((await introspect(srv.url, made.token)).json.active, true, what);
  const d = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(d.status, 200, what);
  assert.equal(d.json.issuer, srv.url, what);
  const page = await call(`${srv.url}/tokens/sign-in`);
  assert.equal(page.status, 200, what);
}

for (const how of ["panic", "unreachable"]) {
  test(`a trap (${how}) during an async GET is answered 500; later requests run on a fresh instance`, async () => {
    const pat = await createPat(srv.url, "alice");
    await assertHealthy(pat, "before");
    const before = await counters();
    assert.ok(before.kv_get > 0, JSON.stringify(before));
    assertTrapAnswer(await call(`${srv.url}/_dev/trap?how=${how}&ms=20`), `/_dev/trap?how=${how}`);
    // A fresh instance: its counters start again from zero.
    const after = await counters();
    assert.ok(after.kv_get < before.kv_get, `counters did not restart: ${before.kv_get} -> ${after.kv_get}`);
    for (let i = 0; i < 3; i++) await assertHealthy(pat, `after the trap, #${i + 1}`);
  });
}

test("a trap before any await is answered 500; later requests run on a fresh instance", async () => {
  const pat = await createPat(srv.url, "alice");
  for (const how of ["panic", "unreachable"]) {
    assertTrapAnswer(await call(`${srv.url}/_dev/trap?how=${how}&when=sync`), `sync ${how}`);
    await assertHealthy(pat, `after a sync ${how}`);
  }
});

for (const how of ["panic", "unreachable"]) {
  test(`requests in flight on other paths finish untouched when another traps (${how}); new ones wait for them`, async () => {
    const pat = await createPat(srv.url, "alice");
    const upstreamHasIt = new Promise((r) => (arrived = r));
    let slowDone = 0;
    const slow = call(`${gateBase}/gw/slow/x`, { headers: { authorization: `Bearer ${pat.token}` } })
      .then((r) => ((slowDone = Date.now()), r));
    await upstreamHasIt; // the gate request is parked on the instance, awaiting its upstream
    const trap = await call(`${srv.url}/_dev/trap?how=${how}&ms=20`);
    assertTrapAnswer(trap, `trap (${how})`);
    // New requests arrive while the gate request is still in flight on the trapped instance.
    const later = await Promise.all([1, 2, 3].map(() => introspect(srv.url, pat.token).then((r) => ({ r, at: Date.now() }))));
    const s = await slow;
    assert.equal(s.status, 200, s.text);
    assert.equal(s.text, "slow upstream");
    for (const { r, at } of later) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.active, true);
      assert.ok(at >= slowDone, "a new request ran on the trapped instance before the one in flight finished");
    }
    await assertHealthy(pat, "after");
  });
}

test("last use is still recorded after a reset (the Durable Object rebuilds its wasm object)", async () => {
  const pat = await createPat(srv.url, "dora");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const used = (n) => eventually(async () => {
    const v = await userCall(srv.url, "dora", "GET", `/api/pats/${pat.id}`);
    return v.json.use_count >= n && v.json;
  });
  assert.ok(await used(1), "first use recorded");
  assertTrapAnswer(await call(`${srv.url}/_dev/trap?how=panic&ms=20`), "trap");
  // The fresh instance forgot its coalescing memory: this use is reported to the same object.
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const v = await used(2);
  assert.ok(v, "the use after the reset was recorded");
  assert.ok(v.last_used_at, JSON.stringify(v));
});

test("dev routes: issuer host only; /_dev/counters to GET and HEAD only; none without DEV_COUNTERS", async () => {
  const get = await call(`${srv.url}/_dev/counters`);
  assert.equal(get.status, 200);
  assert.equal(typeof get.json.kv_get, "number");
  const head = await call(`${srv.url}/_dev/counters`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.text, "");
  for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
    const r = await call(`${srv.url}/_dev/counters`, { method, body: method === "DELETE" ? undefined : "x" });
    assert.equal(r.status, 405, `${method}: ${r.text}`);
    assert.equal(r.headers.get("allow"), "GET, HEAD", method);
  }
  const trapPost = await call(`${srv.url}/_dev/trap`, { method: "POST", body: "x" });
  assert.equal(trapPost.status, 405, trapPost.text);
  // On another host (the gate's), the dev routes do not exist: patgate's own 404.
  for (const path of ["/_dev/counters", "/_dev/trap?how=panic", "/_dev/floor"]) {
    const r = await call(`${gateBase}${path}`);
    assert.equal(r.status, 404, `gate host ${path}: ${r.text}`);
    assert.equal(r.json?.error, "not_found", path);
  }
  // Without DEV_COUNTERS (production): not there at all, and nothing traps.
  for (const path of ["/_dev/counters", "/_dev/trap?how=panic", "/_dev/trap?how=unreachable&when=sync", "/_dev/floor"]) {
    const r = await call(`${off.url}${path}`);
    assert.equal(r.status, 404, `${path} without DEV_COUNTERS: ${r.text}`);
  }
  const disco = await call(`${off.url}/.well-known/oauth-authorization-server`);
  assert.equal(disco.status, 200);
});
