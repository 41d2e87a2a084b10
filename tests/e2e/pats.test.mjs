// The management API for PATs: creation and its validation, listing, isolation between users,
// user authentication, rotation, revocation through the API, and last use.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, userCall, createPat, introspect, devToken, call, eventually,
} from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("pats", 8811); });
after(async () => { await srv?.stop(); });

test("create with expires_in_days and with expires_at; the token is shown once", async () => {
  const r = await userCall(srv.url, "alice", "POST", "/api/pats", {
    name: "ci deploy", scopes: ["demo_api:read", "demo_api:write"], expires_in_days: 30,
  });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get("location"), `/api/pats/${r.json.id}`);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.deepEqual(Object.keys(r.json).sort(), ["created_at", "expires_at", "id", "name", "scopes", "token"]);
  assert.match(r.json.token, /^pgp_[0-9A-Za-z]{49}$/);
  assert.deepEqual(r.json.scopes, ["demo_api:read", "demo_api:write"]);
  const days = (Date.parse(r.json.expires_at) - Date.parse(r.json.created_at)) / 86400e3;
  assert.equal(days, 30);

  const at = new Date(Date.now() + 7 * 86400e3);
  at.setUTCMilliseconds(0);
  const r2 = await userCall(srv.url, "alice", "POST", "/api/pats", {
    name: "dated", scopes: ["other_api:read"], expires_at: at.toISOString(),
  });
  assert.equal(r2.status, 201);
  assert.equal(Date.parse(r2.json.expires_at), at.getTime());

  const got = await userCall(srv.url, "alice", "GET", `/api/pats/${r.json.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.json.token, undefined);
  assert.ok(!got.text.includes(r.json.token.slice(4)));
  assert.equal(got.json.status, "active");
  assert.equal(got.json.last_used_at, null);
  assert.equal(got.json.use_count, 0);
});

test("creation validation: scopes, name, expiry, body", async () => {
  const base = { name: "x", scopes: ["demo_api:read"], expires_in_days: 1 };
  const future = new Date(Date.now() + 86400e3).toISOString();
  const cases = [
    [{ ...base, scopes: ["nope:read"] }, 400, "invalid_scope"],
    [{ ...base, scopes: [] }, 400, "invalid_scope"],
    [{ ...base, scopes: ["demo_api:read", "demo_api:read"] }, 400, "invalid_scope"],
    [{ ...base, name: "" }, 400, "invalid_request"],
    [{ ...base, name: "x".repeat(101) }, 400, "invalid_request"],
    [{ ...base, name: "a\u0007b" }, 400, "invalid_request"],
    [{ name: "x", scopes: ["demo_api:read"] }, 400, "invalid_request"],
    [{ ...base, expires_at: future }, 400, "invalid_request"],
    [{ name: "x", scopes: ["demo_api:read"], expires_at: "2020-01-01T00:00:00Z" }, 400, "invalid_request"],
    [{ name: "x", scopes: ["demo_api:read"], expires_at: "next tuesday" }, 400, "invalid_request"],
    [{ ...base, expires_in_days: 367 }, 400, "invalid_request"],
    [{ ...base, expires_in_days: 0 }, 400, "invalid_request"],
    [{ ...base, expires_in_days: 1.5 }, 400, "invalid_request"],
    [{ ...base, admin: true }, 400, "invalid_request"],
    [[1, 2], 400, "invalid_request"],
    ["{not json", 400, "invalid_request"],
  ];
  for (const [body, status, error] of cases) {
    const r = await userCall(srv.url, "alice", "POST", "/api/pats", body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.json.error, error, JSON.stringify(body));
    assert.equal(typeof r.json.error_description, "string");
  }
  const wrongType = await call(`${srv.url}/api/pats`, {
    method: "POST",
    headers: { authorization: `Bearer ${devToken("alice")}`, "content-type": "text/plain" },
    body: JSON.stringify(base),
  });
  assert.equal(wrongType.status, 415);
  const big = await call(`${srv.url}/api/pats`, {
    method: "POST",
    headers: { authorization: `Bearer ${devToken("alice")}`, "content-type": "application/json" },
    body: JSON.stringify({ ...base, name: "x".repeat(17 * 1024) }),
  });
  assert.equal(big.status, 413);
});

test("listing: newest first, statuses, pagination, never the token", async () => {
  const user = "lister";
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await createPat(srv.url, user)).id);
    await new Promise((r) => setTimeout(r, 1100)); // distinct created_at seconds
  }
  await userCall(srv.url, user, "DELETE", `/api/pats/${ids[0]}`);
  const all = await userCall(srv.url, user, "GET", "/api/pats");
  assert.equal(all.status, 200);
  assert.deepEqual(all.json.pats.map((p) => p.id), [...ids].reverse());
  assert.equal(all.json.next_cursor, null);
  assert.equal(all.json.pats.at(-1).status, "revoked");
  assert.ok(all.json.pats.at(-1).revoked_at);
  for (const p of all.json.pats) {
    assert.deepEqual(Object.keys(p).sort(), [
      "created_at", "expires_at", "id", "last_used_at", "name", "revoked_at", "scopes", "status", "use_count",
    ]);
  }
  const seen = [];
  let cursor = null;
  do {
    const q = cursor ? `?limit=2&cursor=${cursor}` : "?limit=2";
    const page = await userCall(srv.url, user, "GET", `/api/pats${q}`);
    assert.equal(page.status, 200);
    assert.ok(page.json.pats.length <= 2);
    seen.push(...page.json.pats.map((p) => p.id));
    cursor = page.json.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, [...ids].reverse());
  assert.equal((await userCall(srv.url, user, "GET", "/api/pats?limit=0")).status, 400);
  assert.equal((await userCall(srv.url, user, "GET", "/api/pats?limit=101")).status, 400);
  assert.equal((await userCall(srv.url, user, "GET", "/api/pats?cursor=@@@")).status, 400);
});

test("isolation: another user's PAT is a 404 and absent from their list", async () => {
  const pat = await createPat(srv.url, "alice");
  for (const [method, path] of [
    ["GET", `/api/pats/${pat.id}`],
    ["DELETE", `/api/pats/${pat.id}`],
    ["POST", `/api/pats/${pat.id}/rotate`],
  ]) {
    const r = await userCall(srv.url, "bob", method, path);
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(r.json.error, "not_found");
  }
  const bobs = await userCall(srv.url, "bob", "GET", "/api/pats");
  assert.ok(!bobs.json.pats.some((p) => p.id === pat.id));
  assert.equal((await introspect(srv.url, pat.token)).json.active, true, "bob's attempts changed nothing");
  assert.equal((await userCall(srv.url, "alice", "GET", "/api/pats/nonexistent")).status, 404);
});

test("user authentication: RFC 6750 challenges, Cf-Access-Jwt-Assertion", async () => {
  const none = await call(`${srv.url}/api/pats`);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="patgate"');
  assert.equal(none.json.error, "unauthorized");
  const now = Math.floor(Date.now() / 1000);
  const bad = {
    expired: devToken("alice", { now: now - 7200, ttl: 3600 }),
    signature: devToken("alice", { secret: "not-the-secret" }),
    issuer: devToken("alice", { iss: "someone-else" }),
    audience: devToken("alice", { aud: "other" }),
    garbage: "not-a-jwt",
  };
  for (const [why, jwt] of Object.entries(bad)) {
    const r = await call(`${srv.url}/api/pats`, { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(r.status, 401, why);
    assert.equal(r.json.error, "invalid_token", why);
    assert.match(r.headers.get("www-authenticate"), /^Bearer realm="patgate", error="invalid_token"/, why);
  }
  const expired = await call(`${srv.url}/api/pats`, { headers: { authorization: `Bearer ${bad.expired}` } });
  assert.match(expired.headers.get("www-authenticate"), /expired/);
  const cf = await call(`${srv.url}/api/pats`, { headers: { "cf-access-jwt-assertion": devToken("carol") } });
  assert.equal(cf.status, 200);
});

test("rotation: same id, name, scopes and expiry; the old token stops working", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const r = await userCall(srv.url, "alice", "POST", `/api/pats/${pat.id}/rotate`);
  assert.equal(r.status, 201);
  for (const k of ["id", "name", "scopes", "expires_at", "created_at"]) assert.deepEqual(r.json[k], pat[k], k);
  assert.notEqual(r.json.token, pat.token);
  assert.deepEqual((await introspect(srv.url, pat.token)).json, { active: false });
  assert.equal((await introspect(srv.url, r.json.token)).json.active, true);
  assert.equal((await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  const again = await userCall(srv.url, "alice", "POST", `/api/pats/${pat.id}/rotate`);
  assert.equal(again.status, 409);
  assert.equal(again.json.error, "conflict");
});

test("revocation through the API is immediate here and idempotent", async () => {
  const pat = await createPat(srv.url, "alice");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const d = await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`);
  assert.equal(d.status, 204);
  assert.equal(d.text, "");
  assert.deepEqual((await introspect(srv.url, pat.token)).json, { active: false });
  assert.equal((await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  assert.equal((await userCall(srv.url, "alice", "GET", `/api/pats/${pat.id}`)).json.status, "revoked");
});

test("last use appears after introspection (Durable Object -> D1)", async () => {
  const pat = await createPat(srv.url, "dora");
  for (let i = 0; i < 3; i++) assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const seen = await eventually(async () => {
    const r = await userCall(srv.url, "dora", "GET", `/api/pats/${pat.id}`);
    return r.json.last_used_at ? r.json : null;
  });
  assert.ok(seen, "last_used_at appeared");
  assert.ok(seen.use_count >= 1);
  assert.ok(Math.abs(Date.parse(seen.last_used_at) - Date.now()) < 60_000);
  const list = await userCall(srv.url, "dora", "GET", "/api/pats");
  assert.equal(list.json.pats[0].last_used_at, seen.last_used_at);
});
