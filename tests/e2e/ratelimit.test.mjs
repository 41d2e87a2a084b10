// Rate limits on the real runtime (wrangler dev simulates Cloudflare's Rate Limiting binding),
// with the limits of this file's server lowered so that a few requests reach them. The
// simulated counters, like Cloudflare's, work in fixed windows: a run that crosses a window
// boundary starts counting again, so each check allows up to 2 x limit + 1 requests to see the
// first 429 (never a timing assertion).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, createPat, introspect, userCall, form, basic, assertError, call, ADMIN } from "./helpers.mjs";

const LIMITS = { RL_FAILED_AUTH_CLIENT: 3, RL_FAILED_AUTH_IP: 6, RL_PAT_CREATE: 3, RL_TOKEN_IP: 5 };
let srv;
before(async () => { srv = await startServer("ratelimit", 8817, {}, { limits: LIMITS }); });
after(async () => { await srv?.stop(); });

function assertLimited(r, what) {
  assertError(r, 429, "rate_limited", what);
  assert.equal(r.headers.get("retry-after"), "60", what);
  assert.equal(r.headers.get("cache-control"), "no-store", what);
}

/** Sends until the first 429 (at most 2 x limit + 1 requests); returns the statuses. */
async function untilLimited(limit, send) {
  const statuses = [];
  for (let i = 0; i < 2 * limit + 1; i++) {
    const r = await send(i);
    statuses.push(r.status);
    if (r.status === 429) {
      assertLimited(r, `request ${i}`);
      return statuses;
    }
  }
  assert.fail(`no 429 within ${2 * limit + 1} requests: ${statuses}`);
}

test("token endpoint: 429 past the per-IP limit", async () => {
  const statuses = await untilLimited(LIMITS.RL_TOKEN_IP, () =>
    form(`${srv.url}/oauth/token`, "grant_type=client_credentials", { authorization: basic("demo_client", "demo-client-secret") }));
  assert.ok(statuses.slice(0, -1).every((s) => s === 200), `${statuses}`);
  assert.ok(statuses.length > LIMITS.RL_TOKEN_IP, `not before the limit: ${statuses}`);
});

test("PAT creations: 429 past the per-user limit, nothing stored; other users unaffected", async () => {
  const body = { name: "x", scopes: ["demo_api:read"], expires_in_days: 1 };
  const statuses = await untilLimited(LIMITS.RL_PAT_CREATE, () => userCall(srv.url, "rl-bob", "POST", "/api/pats", body));
  assert.ok(statuses.length > LIMITS.RL_PAT_CREATE, `not before the limit: ${statuses}`);
  const list = await userCall(srv.url, "rl-bob", "GET", "/api/pats");
  assert.equal(list.json.pats.length, statuses.length - 1, "the refused creation stored nothing");
  assert.equal((await userCall(srv.url, "rl-carol", "POST", "/api/pats", body)).status, 201, "another user");
});

test("failed client authentications: 429 past the per-id limit, then even the right secret", async () => {
  const pat = await createPat(srv.url, "rl-alice");
  const statuses = await untilLimited(LIMITS.RL_FAILED_AUTH_CLIENT, () => introspect(srv.url, pat.token, basic("demo_api", "wrong")));
  assert.ok(statuses.slice(0, -1).every((s) => s === 401), `${statuses}`);
  assertLimited(await introspect(srv.url, pat.token, basic("demo_api", "demo-api-secret")), "right secret while blocked");
  assert.equal((await introspect(srv.url, pat.token, basic("other_api", "other-api-secret"))).status, 200, "another id");
});

test("failed client authentications: 429 past the per-IP limit across client ids", async () => {
  const statuses = await untilLimited(LIMITS.RL_FAILED_AUTH_IP, (i) =>
    form(`${srv.url}/oauth/revoke`, `client_id=ghost${i}&client_secret=x&token=t`));
  assert.ok(statuses.slice(0, -1).every((s) => s === 401), `${statuses}`);
});

test("the gate: refused tokens count per IP (like failed client authentications), then 429 even for a valid token", async () => {
  const route = { path_prefix: "/gw/rl/", upstream: "http://127.0.0.1:9/unused", resource: "demo_api",
    rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }] };
  const put = await call(`${srv.url}/admin/routes/rl`, { method: "PUT", headers: { authorization: ADMIN, "content-type": "application/json" }, body: JSON.stringify(route) });
  assert.equal(put.status, 201, put.text);
  const gateUrl = `${srv.url.replace("127.0.0.1", "localhost")}/gw/rl/x`;
  // its own client IP, so that the other tests' per-IP budget is not this one's
  const ip = { "cf-connecting-ip": "198.51.100.77" };
  const statuses = await untilLimited(LIMITS.RL_FAILED_AUTH_IP, (i) =>
    call(gateUrl, { headers: { ...ip, ...(i % 2 ? { authorization: "Bearer pgp_garbage" } : {}) } }));
  assert.ok(statuses.slice(0, -1).every((s) => s === 401), `${statuses}`);
  assert.ok(statuses.length > LIMITS.RL_FAILED_AUTH_IP, `not before the limit: ${statuses}`);
  const pat = await createPat(srv.url, "rl-gate");
  assertLimited(await call(gateUrl, { headers: { ...ip, authorization: `Bearer ${pat.token}` } }), "a valid token from the blocked IP");
  // another IP is not blocked: its valid token passes the gate (the upstream is down: 502)
  const other = await call(gateUrl, { headers: { "cf-connecting-ip": "198.51.100.78", authorization: `Bearer ${pat.token}` } });
  assert.equal(other.status, 502, other.text);
});
