// Revoked everywhere within 5 s, on the real runtime. Two `wrangler dev` processes on one state
// directory play two Cloudflare locations: the same local D1 and KV, each its own isolate, caches
// and Cache API view. Location B reads KV through the dev stale-read layer
// (DEV_STALE_KV_SECONDS): like a location's KV read cache, it keeps answering a grant it has read
// (and a JWT denylist entry it found absent) for two minutes, whatever another location deleted
// or wrote meanwhile. Every revocation below is made at A; B must refuse the token within 5 s of
// the revocation's answer although its KV still serves the grant (the dev counter
// `stale_kv_served` shows it did), through the revocation feed (D1 -> B's Cache API snapshot ->
// B's view). The same for an app's authorization grant obtained through the real flow (sign-in,
// /authorize, consent, code exchange, refreshes at both locations), ended at A by the user's Revoke
// and by refresh-token reuse; and the natural end of a rotation's short grace (no write at all).
// An app configured for JWT access tokens (`token_format: "jwt"`) gets RFC 9068 JWTs naming its
// grant, refused at both locations at once when the grant ends.
// Then the fallback: with B's feed unreadable (a dev fault), its view ages and every
// token the one-read path would let through is read from D1 instead.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, startSecondServer, createPat, introspect, form, call, basic, userCall, ADMIN, sleep, assertError,
} from "./helpers.mjs";
import { pkce, signIn, authorizeQuery, approve, exchange, refresh, insertClient, hidden } from "./authflow.mjs";

const BOUND_MS = 5000;
const JWT_CLIENT = basic("demo_jwt_client", "demo-jwt-client-secret");
const INACTIVE = '{"active":false}';
const APP = "rev_app";
const JWT_APP = "rev_jwt_app";

let a;
let b;
before(async () => {
  a = await startServer("revocation-a", 8891);
  // an app and a gate route for the grant test, made before B starts (B's registry reads them
  // at its first request, not after its cache life)
  await insertClient(a, APP, { redirectUris: ["http://127.0.0.1/callback"], name: "Rev App" });
  await insertClient(a, JWT_APP, { redirectUris: ["http://127.0.0.1/callback"], name: "Rev JWT App", format: "jwt" });
  const route = await admin("PUT", "/routes/rev", {
    path_prefix: "/gw/rev/", upstream: "http://127.0.0.1:9", resource: "demo_api",
    rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }],
  });
  assert.equal(route.status, 201, route.text);
  b = await startSecondServer(a, 8892, { DEV_STALE_KV_SECONDS: "120" });
});
after(async () => {
  await b?.stop();
  await a?.stop();
});

const counters = async (srv) => (await call(`${srv.url}/_dev/counters`)).json;
const admin = (method, path, body) => call(`${a.url}/admin${path}`, {
  method,
  headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }) },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/**
 * Runs `revoke` (at A) and then asks B about the token every 100 ms until B says inactive: the
 * milliseconds from the moment the revocation was answered (its commit came before) to B's first
 * inactive answer, which must be within the bound. B's KV read cache must have served the token's
 * grant (or its denylist miss) meanwhile: the refusal is the feed's, not KV's.
 */
async function refusedAtB(what, token, revoke, auth) {
  const served = (await counters(b)).stale_kv_served;
  await revoke();
  const revokedAt = Date.now();
  let answers = 0;
  for (;;) {
    const r = await introspect(b.url, token, auth);
    answers++;
    assert.equal(r.status, 200, `${what}: ${r.text}`);
    if (r.text === INACTIVE) break;
    assert.equal(r.json.active, true, r.text);
    assert.ok(Date.now() - revokedAt <= BOUND_MS, `${what}: still active at B ${Date.now() - revokedAt} ms after the revocation`);
    await sleep(100);
  }
  const took = Date.now() - revokedAt;
  assert.ok(took <= BOUND_MS, `${what}: refused at B after ${took} ms`);
  const after = await counters(b);
  assert.ok(after.stale_kv_served > served, `${what}: B's KV read cache served the token meanwhile (${served} -> ${after.stale_kv_served})`);
  return { took, answers };
}

test("a PAT revoked at one location is refused at another within 5 s while that location's KV still serves its grant", async () => {
  const pat = await createPat(a.url, "alice");
  const first = await introspect(b.url, pat.token);
  assert.equal(first.json.active, true, first.text);
  // how long an API may cache the answer: within the bound, never past the token's life
  const maxAge = Number(/max-age=(\d+)/.exec(first.headers.get("cache-control") ?? "")?.[1]);
  assert.ok(maxAge >= 0 && maxAge <= 5, first.headers.get("cache-control"));
  const { took } = await refusedAtB("revoked PAT", pat.token, async () => {
    assert.equal((await userCall(a.url, "alice", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  });
  console.log(`# revoked PAT refused at the other location after ${took} ms`);
  // refusals may be cached for the bound too
  const again = await introspect(b.url, pat.token);
  assert.equal(again.text, INACTIVE);
  assert.equal(again.headers.get("cache-control"), "private, max-age=5");
});

test("rotation without grace and the end of a grace: the old token refused elsewhere within 5 s, the new one active", async () => {
  const pat = await createPat(a.url, "rotor");
  assert.equal((await introspect(b.url, pat.token)).json.active, true);
  let next;
  await refusedAtB("rotated without grace", pat.token, async () => {
    const r = await userCall(a.url, "rotor", "POST", `/api/pats/${pat.id}/rotate`);
    assert.equal(r.status, 201, r.text);
    next = r.json.token;
  });
  assert.equal((await introspect(b.url, next)).json.active, true);

  // with grace: the old token keeps working at B; ended by its holder at A (RFC 7009)
  const r = await userCall(a.url, "rotor", "POST", `/api/pats/${pat.id}/rotate`, { grace_seconds: 3600 });
  assert.equal(r.status, 201, r.text);
  assert.equal((await introspect(b.url, next)).json.active, true, "in its grace at B");
  await refusedAtB("grace ended", next, async () => {
    const rv = await form(`${a.url}/oauth/revoke`, new URLSearchParams({ client_id: "pat_client", token: next }).toString());
    assert.equal(rv.status, 200);
  });
  assert.equal((await introspect(b.url, r.json.token)).json.active, true, "the current token works");
});

test("the natural end of a short grace, with no write: the old token refused at B within 5 s of it while B's KV serves the grant from before the rotation", async () => {
  const pat = await createPat(a.url, "graceful");
  assert.equal((await introspect(b.url, pat.token)).json.active, true, "B has read its grant");
  const served = (await counters(b)).stale_kv_served;
  const r = await userCall(a.url, "graceful", "POST", `/api/pats/${pat.id}/rotate`, { grace_seconds: 3 });
  assert.equal(r.status, 201, r.text);
  // grace_until = the server's second + 3: at most 3 s from now
  const endBy = Date.now() + 3000;
  assert.equal((await introspect(b.url, pat.token)).json.active, true, "in its grace at B");
  let refusedAt;
  for (;;) {
    const q = await introspect(b.url, pat.token);
    assert.equal(q.status, 200, q.text);
    if (q.text === INACTIVE) { refusedAt = Date.now(); break; }
    assert.ok(Date.now() - endBy <= BOUND_MS, `still active at B ${Date.now() - endBy} ms after the grace ended`);
    await sleep(100);
  }
  console.log(`# a grace's natural end: refused at the other location ${Math.max(0, refusedAt - endBy)} ms after it (at the latest)`);
  assert.ok(refusedAt >= endBy - 2000, "not before the grace's end (to the second)");
  assert.ok((await counters(b)).stale_kv_served > served, "B's KV read cache served the old grant meanwhile");
  assert.equal((await introspect(b.url, r.json.token)).json.active, true, "the new token works");
});

test("a client JWT revoked through RFC 7009 and a disabled client's tokens: refused elsewhere within 5 s", async () => {
  const t = await form(`${a.url}/oauth/token`, "grant_type=client_credentials&scope=demo_api:read", { authorization: JWT_CLIENT });
  assert.equal(t.status, 200, t.text);
  const jwt = t.json.access_token;
  assert.equal((await introspect(b.url, jwt)).json.active, true);
  await refusedAtB("revoked client JWT", jwt, async () => {
    assert.equal((await form(`${a.url}/oauth/revoke`, `token=${jwt}`, { authorization: JWT_CLIENT })).status, 200);
  });

  // a client with a reference token, disabled at A: B's registry cache (30 s) must not keep it
  const c = await admin("POST", "/clients", { id: "rev_job", allowed_scopes: ["demo_api:read"] });
  assert.equal(c.status, 201, c.text);
  const auth = basic("rev_job", c.json.client_secret);
  const ref = await form(`${a.url}/oauth/token`, "grant_type=client_credentials", { authorization: auth });
  assert.equal(ref.status, 200, ref.text);
  // B learns of the new client within its registry cache life
  let seen;
  for (let i = 0; i < 80 && !seen; i++) {
    seen = (await introspect(b.url, ref.json.access_token)).json.active;
    if (!seen) await sleep(500);
  }
  assert.ok(seen, "the new client's token active at B");
  await refusedAtB("disabled client's token", ref.json.access_token, async () => {
    assert.equal((await admin("PATCH", "/clients/rev_job", { enabled: false })).status, 200);
  });
});

/** A grant of `clientId` for the user signed in at A with `cookie`: the code flow at A. */
async function appGrant(cookie, resource, clientId = APP) {
  const p = { clientId, redirectUri: "http://127.0.0.1:4501/callback", resource, scope: "demo_api:read", ...pkce() };
  const { params } = await approve(a.url, cookie, authorizeQuery(p));
  assert.ok(params.code, JSON.stringify(params));
  const t = await exchange(a.url, p, params.code);
  assert.equal(t.status, 200, t.text);
  return { at: t.json.access_token, rt: t.json.refresh_token };
}

/** Refreshes at `srv`: the new access and refresh tokens. */
async function refreshed(srv, rt, clientId = APP) {
  const r = await refresh(srv.url, clientId, rt);
  assert.equal(r.status, 200, r.text);
  return { at: r.json.access_token, rt: r.json.refresh_token };
}

test("an app's grant ended at A (the user's Revoke, refresh-token reuse): its access and refresh tokens refused at B within 5 s", async () => {
  const resource = `${a.url.replace("127.0.0.1", "localhost")}/gw/rev/`;
  const gina = await signIn(a.url, "gina");

  // the user's Revoke on the token page at A
  const first = await appGrant(gina, resource);
  const firstAtB = await introspect(b.url, first.at);
  assert.equal(firstAtB.json.active, true, `the access token active at B: ${firstAtB.text}; at A: ${(await introspect(a.url, first.at)).text}`);
  const atB = await refreshed(b, first.rt); // the refresh token works at B (and rotates there)
  const atB2 = await introspect(b.url, atB.at);
  assert.equal(atB2.json.active, true, atB2.text);
  assert.equal(atB2.json.aud, resource, atB2.text);
  const apps = await call(`${a.url}/tokens/apps`, { headers: { cookie: gina } });
  const id = /\/tokens\/apps\/([0-9A-Za-z]+)\/revoke/.exec(apps.text)?.[1];
  assert.ok(id, "a Revoke link");
  const confirm = await call(`${a.url}/tokens/apps/${id}/revoke`, { headers: { cookie: gina } });
  assert.equal(confirm.status, 200);
  const { took } = await refusedAtB("grant revoked by its user", atB.at, async () => {
    const done = await form(`${a.url}/tokens/apps/${id}/revoke`, new URLSearchParams({ csrf: hidden(confirm.text, "csrf") }).toString(), { cookie: gina, "sec-fetch-site": "same-origin" });
    assert.equal(done.status, 303, done.text);
  });
  console.log(`# an app's grant revoked by its user: refused at the other location after ${took} ms`);
  assert.equal((await introspect(b.url, first.at)).text, INACTIVE, "the grant's first access token too");
  assertError(await refresh(b.url, APP, atB.rt), 400, "invalid_grant", "its refresh token at B");

  // refresh-token reuse detected at A: a refresh token rotated away twice presented again
  const second = await appGrant(gina, resource);
  const r2 = await refreshed(b, second.rt);
  const r3 = await refreshed(a, r2.rt);
  for (const t of [second.at, r2.at, r3.at]) assert.equal((await introspect(b.url, t)).json.active, true, "active at B");
  await refusedAtB("grant ended by refresh-token reuse", r3.at, async () => {
    assertError(await refresh(a.url, APP, second.rt), 400, "invalid_grant", "the reuse");
  });
  for (const t of [second.at, r2.at]) assert.equal((await introspect(b.url, t)).text, INACTIVE, "every access token of the grant");
  assertError(await refresh(b.url, APP, r3.rt), 400, "invalid_grant", "the current refresh token at B");
});

test("an app's RFC 9068 JWT access tokens (client token_format jwt): audience its grant's resource, refused at both locations at once when the grant ends", async () => {
  const resource = `${a.url.replace("127.0.0.1", "localhost")}/gw/rev/`;
  const jill = await signIn(a.url, "jill");
  const first = await appGrant(jill, resource, JWT_APP);
  const parts = first.at.split(".");
  assert.equal(parts.length, 3, "a JWT");
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString());
  const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
  assert.equal(header.typ, "at+jwt");
  assert.deepEqual(claims.aud, [resource]);
  assert.equal(claims.sub, "jill");
  assert.equal(claims.client_id, JWT_APP);
  assert.equal(claims.scope, "demo_api:read");
  assert.equal(claims.iss, a.url);
  assert.ok(claims.jti && claims.grant_id, JSON.stringify(claims));
  const atB = await introspect(b.url, first.at);
  assert.equal(atB.json.active, true, atB.text);
  assert.equal(atB.json.aud, resource);
  // a refresh at B: another JWT of the same grant
  const second = await refreshed(b, first.rt, JWT_APP);
  const claims2 = JSON.parse(Buffer.from(second.at.split(".")[1], "base64url").toString());
  assert.equal(claims2.grant_id, claims.grant_id);
  assert.notEqual(claims2.jti, claims.jti);
  for (const t of [first.at, second.at]) {
    assert.equal((await introspect(a.url, t)).json.active, true);
    assert.equal((await introspect(b.url, t)).json.active, true);
  }
  // an operator ends the grant at A: both JWTs refused at once, at A and at B
  assert.equal((await admin("DELETE", `/grants/${claims.grant_id}`)).status, 204);
  for (const t of [first.at, second.at]) {
    assert.equal((await introspect(a.url, t)).text, INACTIVE, "at A");
    assert.equal((await introspect(b.url, t)).text, INACTIVE, "at B, at once");
  }
  assertError(await refresh(b.url, JWT_APP, second.rt), 400, "invalid_grant", "its refresh token");
  // the other app still gets reference tokens
  const ref = await appGrant(jill, resource);
  assert.ok(ref.at.startsWith("pga_"), "a reference token");
});

test("the feed unreadable at a location: its view ages, active answers come from D1, and a revocation is refused at once", async () => {
  const live = await createPat(a.url, "fallback");
  const doomed = await createPat(a.url, "fallback");
  for (const p of [live, doomed]) assert.equal((await introspect(b.url, p.token)).json.active, true);
  const broke = await call(`${b.url}/_dev/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"feed":"unreadable"}' });
  assert.equal(broke.status, 200, broke.text);
  try {
    await sleep(5000); // past the 4.5 s a view may be trusted
    const before = await counters(b);
    const r = await introspect(b.url, live.token);
    assert.equal(r.json.active, true, r.text);
    const mid = await counters(b);
    assert.ok(mid.d1_query > before.d1_query, `the active answer was read from D1 (${before.d1_query} -> ${mid.d1_query})`);
    assert.equal(r.headers.get("cache-control"), "private, max-age=5", "D1 is the truth as of now");
    // revoked at A: B refuses it on the next request, though its KV and its view know nothing
    assert.equal((await userCall(a.url, "fallback", "DELETE", `/api/pats/${doomed.id}`)).status, 204);
    assert.equal((await introspect(b.url, doomed.token)).text, INACTIVE);
  } finally {
    assert.equal((await call(`${b.url}/_dev/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"feed":"ok"}' })).status, 200);
  }
  // readable again: once the failed fetch counts as lost (2 s), the next request starts a refresh
  // of the view in the background (how long it takes depends on the machine's load); once it has
  // landed, active answers need no D1 read.
  await sleep(2100);
  let fresh = false;
  for (let i = 0; i < 40 && !fresh; i++) {
    const probe = await counters(b);
    assert.equal((await introspect(b.url, live.token)).json.active, true);
    fresh = (await counters(b)).d1_query === probe.d1_query;
    if (!fresh) await sleep(250);
  }
  assert.ok(fresh, "the view was refreshed within 10 s of the feed being readable again");
  const before = await counters(b);
  for (let i = 0; i < 5; i++) assert.equal((await introspect(b.url, live.token)).json.active, true);
  const after = await counters(b);
  assert.equal(after.d1_query - before.d1_query, 0, "no D1 read per request once the feed is readable");
  assert.equal(after.kv_get - before.kv_get, 5, "one KV read per request");
});

test("dev faults are refused without a loopback issuer", async () => {
  // the faults endpoint exists only with DEV_COUNTERS; the stale layer's var is checked at startup
  const r = await call(`${b.url}/_dev/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"feed":"maybe"}' });
  assert.equal(r.status, 400);
});
