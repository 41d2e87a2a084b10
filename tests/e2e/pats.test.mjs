// The management API for PATs (docs/API.md "Users"): creation and its validation, listing and
// pagination, isolation between users, user authentication, rotation, revocation through the API,
// and last use.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  startServer, userCall, createPat, introspect, devToken, call, eventually, assertError, checksum, isoIn,
  sleep, ADMIN, TOKEN_RE, PAT_VIEW_KEYS, RFC3339_RE,
} from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("pats", 8811); });
after(async () => { await srv?.stop(); });

const DAY = 86400e3;

function assertCreated(r, what) {
  assert.equal(r.status, 201, `${what}: ${r.text}`);
  assert.equal(r.headers.get("location"), `/api/pats/${r.json.id}`, what);
  assert.equal(r.headers.get("cache-control"), "no-store", what);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/, what);
  assert.deepEqual(Object.keys(r.json).sort(), ["allow_self_rotation", "created_at", "expires_at", "id", "name", "revoke_on_reuse", "scopes", "token"], what);
  assert.match(r.json.token, TOKEN_RE, what);
  assert.equal(r.json.token.length, 53, what);
  assert.equal(r.json.token.slice(47), checksum(r.json.token.slice(0, 47)), `${what}: CRC32 checksum`);
  assert.equal(typeof r.json.id, "string", what);
  assert.ok(r.json.id.length > 0, what);
  assert.match(r.json.created_at, RFC3339_RE, what);
  assert.match(r.json.expires_at, RFC3339_RE, what);
  assert.ok(Math.abs(Date.parse(r.json.created_at) - Date.now()) < 60_000, `${what}: created_at is now`);
  return r.json;
}

test("create with expires_in_days: 201, Location, fields, token format", async () => {
  const r = await userCall(srv.url, "alice", "POST", "/api/pats", {
    name: "ci deploy", scopes: ["demo_api:read", "demo_api:write"], expires_in_days: 30,
  });
  const pat = assertCreated(r, "expires_in_days");
  assert.equal(pat.name, "ci deploy");
  assert.deepEqual(pat.scopes, ["demo_api:read", "demo_api:write"]);
  assert.equal(Date.parse(pat.expires_at) - Date.parse(pat.created_at), 30 * DAY);
});

test("create with expires_at: the given instant is kept (Z and numeric offset)", async () => {
  const at = isoIn(7 * DAY);
  const pat = assertCreated(await userCall(srv.url, "alice", "POST", "/api/pats", {
    name: "dated", scopes: ["other_api:read"], expires_at: at,
  }), "expires_at Z");
  assert.equal(Date.parse(pat.expires_at), Date.parse(at));
  assert.deepEqual(pat.scopes, ["other_api:read"]);

  // the same instant written with a +02:00 offset (RFC 3339 section 5.6)
  const d = new Date(Date.parse(at) + 2 * 3600e3);
  const offset = d.toISOString().replace(/\.000Z$/, "+02:00");
  const pat2 = assertCreated(await userCall(srv.url, "alice", "POST", "/api/pats", {
    name: "offset", scopes: ["demo_api:read"], expires_at: offset,
  }), "expires_at +02:00");
  assert.equal(Date.parse(pat2.expires_at), Date.parse(at));
});

test("the token is shown once: never in GET or the list, nor its hash", async () => {
  const pat = await createPat(srv.url, "once", ["demo_api:read"], { name: "secret-holder" });
  const hex = createHash("sha256").update(pat.token).digest("hex");
  const b64 = createHash("sha256").update(pat.token).digest("base64url");
  const got = await userCall(srv.url, "once", "GET", `/api/pats/${pat.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get("cache-control"), "no-store");
  assert.deepEqual(Object.keys(got.json).sort(), PAT_VIEW_KEYS);
  assert.deepEqual(got.json, {
    id: pat.id, name: "secret-holder", scopes: ["demo_api:read"], created_at: pat.created_at,
    expires_at: pat.expires_at, last_used_at: null, use_count: 0, status: "active", revoked_at: null,
    revoked_reason: null, revoked_source_url: null, leak_urls: [], days_left: 30, expiring_soon: false, allow_self_rotation: false,
    revoke_on_reuse: false, reuse_count: 0, first_reuse_at: null, last_reuse: null,
    revoked_message: null, usage: { today: 0, last_7_days: 0, last_30_days: 0, last_90_days: 0 }, last_used_from: [],
  });
  const list = await userCall(srv.url, "once", "GET", "/api/pats");
  assert.equal(list.status, 200);
  for (const text of [got.text, list.text]) {
    assert.ok(!text.includes(pat.token.slice(4, 47)), "token absent");
    assert.ok(!text.toLowerCase().includes(hex), "hex hash absent");
    assert.ok(!text.includes(b64), "base64url hash absent");
    assert.ok(!/"(token|token_hash|hash)"/.test(text), "no token/hash field");
  }
});

test("creation boundaries that are accepted", async () => {
  const ok = [
    { name: "x".repeat(100), scopes: ["demo_api:read"], expires_in_days: 1 },
    { name: "é".repeat(100), scopes: ["demo_api:read"], expires_in_days: 1 },
    { name: "max days", scopes: ["demo_api:read", "demo_api:write", "other_api:read"], expires_in_days: 366 },
    { name: "max date", scopes: ["demo_api:read"], expires_at: isoIn(365 * DAY) },
  ];
  for (const body of ok) {
    const r = await userCall(srv.url, "bounds", "POST", "/api/pats", body);
    const pat = assertCreated(r, JSON.stringify(body).slice(0, 80));
    assert.equal(pat.name, body.name);
    assert.deepEqual(pat.scopes, body.scopes);
  }
});

test("creation validation: invalid_scope, invalid_request, 415, 413; nothing is created", async () => {
  const user = "validator";
  // A scope that exists (owned by a new API resource) but that pat_client is not allowed.
  const res = await call(`${srv.url}/admin/resources`, {
    method: "POST",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ id: "extra_api", scopes: ["extra_api:read"] }),
  });
  assert.equal(res.status, 201, `admin: create resource: ${res.text}`);

  const base = { name: "x", scopes: ["demo_api:read"], expires_in_days: 1 };
  const noExp = { name: "x", scopes: ["demo_api:read"] };
  const future = isoIn(DAY);
  const scopeCases = [
    ["not allowed for pat_client", { ...base, scopes: ["extra_api:read"] }],
    ["not allowed among allowed", { ...base, scopes: ["demo_api:read", "extra_api:read"] }],
    ["unknown", { ...base, scopes: ["nope:read"] }],
    ["empty list", { ...base, scopes: [] }],
    ["duplicates", { ...base, scopes: ["demo_api:read", "demo_api:read"] }],
  ];
  for (const [why, body] of scopeCases) {
    assertError(await userCall(srv.url, user, "POST", "/api/pats", body), 400, "invalid_scope", why);
  }
  const requestCases = [
    ["missing name", { scopes: ["demo_api:read"], expires_in_days: 1 }],
    ["empty name", { ...base, name: "" }],
    ["101-char name", { ...base, name: "x".repeat(101) }],
    ["BEL in name", { ...base, name: "a\u0007b" }],
    ["newline in name", { ...base, name: "a\nb" }],
    ["NUL in name", { ...base, name: "a\u0000b" }],
    ["DEL in name", { ...base, name: "a\u007fb" }],
    ["C1 control in name", { ...base, name: "a\u0085b" }],
    ["name not a string", { ...base, name: 42 }],
    ["both expiry fields", { ...base, expires_at: future }],
    ["neither expiry field", noExp],
    ["past expires_at", { ...noExp, expires_at: "2020-01-01T00:00:00Z" }],
    ["expires_at now-ish in the past", { ...noExp, expires_at: isoIn(-60_000) }],
    ["free-text expires_at", { ...noExp, expires_at: "next tuesday" }],
    ["date-only expires_at", { ...noExp, expires_at: "2099-01-01" }],
    ["month 13", { ...noExp, expires_at: "2027-13-01T00:00:00Z" }],
    ["no time zone", { ...noExp, expires_at: isoIn(DAY).replace("Z", "") }],
    ["expires_at a number", { ...noExp, expires_at: Math.floor(Date.now() / 1000) + 86400 }],
    ["expires_in_days 367", { ...base, expires_in_days: 367 }],
    ["expires_at 367 days ahead", { ...noExp, expires_at: isoIn(367 * DAY) }],
    ["expires_in_days 0", { ...base, expires_in_days: 0 }],
    ["expires_in_days -1", { ...base, expires_in_days: -1 }],
    ["expires_in_days 1.5", { ...base, expires_in_days: 1.5 }],
    ["expires_in_days string", { ...base, expires_in_days: "30" }],
    ["unknown field", { ...base, admin: true }],
    ["unknown field sub", { ...base, sub: "mallory" }],
    ["malformed JSON", '{"name": "x", "scopes": ['],
    ["trailing garbage", JSON.stringify(base) + "x"],
    ["non-object JSON: array", JSON.stringify([base])],
    ["non-object JSON: string", '"hello"'],
    ["non-object JSON: number", "42"],
    ["non-object JSON: null", "null"],
    ["empty body", ""],
  ];
  for (const [why, body] of requestCases) {
    const r = await userCall(srv.url, user, "POST", "/api/pats", body);
    assertError(r, 400, "invalid_request", why);
    assert.equal(r.headers.get("cache-control"), "no-store", why);
  }
  const auth = { authorization: `Bearer ${devToken(user)}` };
  for (const ct of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
    const headers = ct ? { ...auth, "content-type": ct } : auth;
    const r = await call(`${srv.url}/api/pats`, { method: "POST", headers, body: JSON.stringify(base) });
    assertError(r, 415, "invalid_request", `content-type ${ct}`);
  }
  // application/json with a charset parameter is still JSON
  const cs = await userCall(srv.url, user, "POST", "/api/pats", { ...base, name: "charset" },
    { "content-type": "application/json; charset=utf-8" });
  assert.equal(cs.status, 201, `json; charset=utf-8: ${cs.text}`);

  const big = await userCall(srv.url, user, "POST", "/api/pats", { ...base, name: "x".repeat(17 * 1024) });
  assertError(big, 413, "invalid_request", "17 KiB body");
  // just under 16 KiB is read and judged on its content (name too long), not rejected for size
  const under = await userCall(srv.url, user, "POST", "/api/pats", { ...base, name: "x".repeat(15 * 1024) });
  assertError(under, 400, "invalid_request", "15 KiB body");

  const list = await userCall(srv.url, user, "GET", "/api/pats");
  assert.deepEqual(list.json.pats.map((p) => p.name), ["charset"], "failed requests created nothing");
});

test("listing: newest first, exact PatView, statuses, no token; limit validation", async () => {
  const user = "lister";
  const ids = [];
  for (let i = 0; i < 4; i++) {
    ids.push((await createPat(srv.url, user, ["demo_api:read"], { name: `p${i}` })).id);
    if (i < 3) await sleep(1050); // distinct created_at seconds
  }
  assert.equal((await userCall(srv.url, user, "DELETE", `/api/pats/${ids[1]}`)).status, 204);
  const all = await userCall(srv.url, user, "GET", "/api/pats");
  assert.equal(all.status, 200);
  assert.equal(all.headers.get("cache-control"), "no-store");
  assert.deepEqual(Object.keys(all.json).sort(), ["next_cursor", "pats"]);
  assert.deepEqual(all.json.pats.map((p) => p.id), [...ids].reverse());
  assert.equal(all.json.next_cursor, null);
  for (const p of all.json.pats) {
    assert.deepEqual(Object.keys(p).sort(), PAT_VIEW_KEYS);
    assert.equal(p.last_used_at, null, "never used");
    assert.equal(p.use_count, 0);
    assert.equal(p.status, p.id === ids[1] ? "revoked" : "active");
    if (p.id === ids[1]) assert.match(p.revoked_at, RFC3339_RE);
    else assert.equal(p.revoked_at, null);
  }
  for (let i = 1; i < all.json.pats.length; i++) {
    assert.ok(Date.parse(all.json.pats[i - 1].created_at) > Date.parse(all.json.pats[i].created_at), "newest first");
  }
  assert.ok(!/pgp_/.test(all.text), "no token in the list");

  assert.equal((await userCall(srv.url, user, "GET", "/api/pats?limit=1")).json.pats.length, 1);
  assert.equal((await userCall(srv.url, user, "GET", "/api/pats?limit=100")).status, 200);
  for (const q of ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "cursor=%40%40%40"]) {
    assertError(await userCall(srv.url, user, "GET", `/api/pats?${q}`), 400, "invalid_request", q);
  }
  const empty = await userCall(srv.url, "nobody-yet", "GET", "/api/pats");
  assert.deepEqual(empty.json, { pats: [], next_cursor: null });
});

test("pagination: limit + next_cursor walk every PAT once, default limit 50", async () => {
  const user = "pager";
  const ids = new Set();
  for (let i = 0; i < 53; i++) ids.add((await createPat(srv.url, user, ["demo_api:read"], { name: `n${i}` })).id);
  const first = await userCall(srv.url, user, "GET", "/api/pats");
  assert.equal(first.json.pats.length, 50, "default limit");
  assert.equal(typeof first.json.next_cursor, "string");
  const rest = await userCall(srv.url, user, "GET", `/api/pats?cursor=${encodeURIComponent(first.json.next_cursor)}`);
  assert.equal(rest.status, 200);
  assert.equal(rest.json.pats.length, 3);
  assert.equal(rest.json.next_cursor, null);

  for (const limit of [7, 1]) {
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const q = `limit=${limit}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
      const page = await userCall(srv.url, user, "GET", `/api/pats?${q}`);
      assert.equal(page.status, 200, q);
      assert.ok(page.json.pats.length <= limit, q);
      seen.push(...page.json.pats);
      cursor = page.json.next_cursor;
      assert.ok(++pages <= 60, "pagination terminates");
    } while (cursor);
    assert.equal(seen.length, ids.size, `limit=${limit}: every PAT once`);
    assert.deepEqual(new Set(seen.map((p) => p.id)), ids, `limit=${limit}`);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(Date.parse(seen[i - 1].created_at) >= Date.parse(seen[i].created_at), "newest first");
    }
  }
});

test("isolation: bob cannot see, revoke or rotate alice's PAT", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"], { name: "alice-only" });
  await createPat(srv.url, "bob", ["demo_api:read"], { name: "bobs" });
  for (const [method, path] of [
    ["GET", `/api/pats/${pat.id}`],
    ["DELETE", `/api/pats/${pat.id}`],
    ["POST", `/api/pats/${pat.id}/rotate`],
  ]) {
    const r = await userCall(srv.url, "bob", method, path);
    assertError(r, 404, "not_found", `bob ${method} ${path}`);
    assert.equal(r.headers.get("cache-control"), "no-store");
  }
  const bobs = await userCall(srv.url, "bob", "GET", "/api/pats");
  assert.equal(bobs.status, 200);
  assert.ok(!bobs.json.pats.some((p) => p.id === pat.id), "not in bob's list");
  assert.deepEqual(bobs.json.pats.map((p) => p.name), ["bobs"]);
  const mine = await userCall(srv.url, "alice", "GET", `/api/pats/${pat.id}`);
  assert.equal(mine.json.status, "active", "bob's DELETE changed nothing");
  const i = await introspect(srv.url, pat.token);
  assert.equal(i.json.active, true, "bob's rotate changed nothing");
  assert.equal(i.json.sub, "alice");
  for (const [method, path] of [["GET", "/api/pats/nonexistent"], ["DELETE", "/api/pats/nonexistent"], ["POST", "/api/pats/nonexistent/rotate"]]) {
    assertError(await userCall(srv.url, "alice", method, path), 404, "not_found", `${method} ${path}`);
  }
});

test("user authentication: RFC 6750 challenges, 60 s leeway, Cf-Access-Jwt-Assertion", async () => {
  const pat = await createPat(srv.url, "alice");
  const endpoints = [["GET", "/api/pats"], ["POST", "/api/pats"], ["GET", `/api/pats/${pat.id}`],
    ["DELETE", `/api/pats/${pat.id}`], ["POST", `/api/pats/${pat.id}/rotate`]];
  for (const [method, path] of endpoints) {
    const none = await call(`${srv.url}${path}`, { method });
    assert.equal(none.status, 401, `${method} ${path}`);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="patgate"', `${method} ${path}`);
    assert.deepEqual(none.json, { error: "unauthorized", error_description: "a bearer token is required" });
    assert.equal(none.headers.get("cache-control"), "no-store");
  }
  const now = Math.floor(Date.now() / 1000);
  const [h, p] = devToken("alice").split(".");
  const noneAlg = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url") + `.${p}.`;
  const bad = {
    "expired beyond the leeway": devToken("alice", { now: now - 3600, ttl: 3600 - 120 }),
    "wrong signature": devToken("alice", { secret: "not-the-secret" }),
    "wrong issuer": devToken("alice", { iss: "someone-else" }),
    "wrong audience": devToken("alice", { aud: "other" }),
    "garbage": "not-a-jwt",
    "alg none": noneAlg,
    "truncated signature": `${h}.${p}.`,
    "no sub": devToken("alice", { extra: { sub: undefined } }),
  };
  for (const [why, jwt] of Object.entries(bad)) {
    for (const headers of [{ authorization: `Bearer ${jwt}` }, { "cf-access-jwt-assertion": jwt }]) {
      const r = await call(`${srv.url}/api/pats`, { headers });
      const what = `${why} via ${Object.keys(headers)[0]}`;
      assertError(r, 401, "invalid_token", what);
      assert.match(r.headers.get("www-authenticate") ?? "",
        /^Bearer realm="patgate", error="invalid_token"(, error_description="[^"]*")?$/, what);
      assert.equal(r.headers.get("cache-control"), "no-store", what);
    }
  }
  const inLeeway = devToken("alice", { now: now - 3600, ttl: 3600 - 30 });
  assert.equal((await call(`${srv.url}/api/pats`, { headers: { authorization: `Bearer ${inLeeway}` } })).status, 200,
    "expired 30 s ago is within the 60 s leeway");

  const cf = { "cf-access-jwt-assertion": devToken("carol") };
  assert.equal((await call(`${srv.url}/api/pats`, { headers: cf })).status, 200);
  const made = await call(`${srv.url}/api/pats`, {
    method: "POST", headers: { ...cf, "content-type": "application/json" },
    body: JSON.stringify({ name: "via access", scopes: ["demo_api:read"], expires_in_days: 1 }),
  });
  assert.equal(made.status, 201, made.text);
  const i = await introspect(srv.url, made.json.token);
  assert.equal(i.json.sub, "carol", "the user is the Access JWT's sub");
  const listed = await call(`${srv.url}/api/pats`, { headers: cf });
  assert.deepEqual(listed.json.pats.map((x) => x.id), [made.json.id]);
});

test("rotation: 201, same id/name/scopes/expiry/created_at, new token; old inactive; revoked -> 409", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read", "other_api:read"], { name: "to-rotate" });
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const r = await userCall(srv.url, "alice", "POST", `/api/pats/${pat.id}/rotate`);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.deepEqual(Object.keys(r.json).sort(), ["allow_self_rotation", "created_at", "expires_at", "id", "name", "revoke_on_reuse", "scopes", "token"]);
  for (const k of ["id", "name", "scopes", "expires_at", "created_at"]) assert.deepEqual(r.json[k], pat[k], k);
  assert.match(r.json.token, TOKEN_RE);
  assert.equal(r.json.token.slice(47), checksum(r.json.token.slice(0, 47)));
  assert.notEqual(r.json.token, pat.token);
  assert.equal((await introspect(srv.url, pat.token)).text, '{"active":false}', "old token");
  const now = await introspect(srv.url, r.json.token);
  assert.equal(now.json.active, true, "new token");
  assert.equal(now.json.jti, pat.id);
  assert.equal(now.json.name, "to-rotate");
  const view = await userCall(srv.url, "alice", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.json.status, "active");
  // rotate again: the second token replaces the first
  const r2 = await userCall(srv.url, "alice", "POST", `/api/pats/${pat.id}/rotate`);
  assert.equal(r2.status, 201);
  assert.equal((await introspect(srv.url, r.json.token)).text, '{"active":false}');
  assert.equal((await introspect(srv.url, r2.json.token)).json.active, true);

  assert.equal((await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  const again = await userCall(srv.url, "alice", "POST", `/api/pats/${pat.id}/rotate`);
  assertError(again, 409, "conflict", "rotate revoked");
  assert.equal((await introspect(srv.url, r2.json.token)).text, '{"active":false}', "still revoked");
});

test("revocation through the API: 204, inactive at once, idempotent, status revoked", async () => {
  const pat = await createPat(srv.url, "alice");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const d = await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`);
  assert.equal(d.status, 204);
  assert.equal(d.text, "");
  assert.equal((await introspect(srv.url, pat.token)).text, '{"active":false}');
  const d2 = await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`);
  assert.equal(d2.status, 204, "idempotent for the owner");
  const view = await userCall(srv.url, "alice", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.json.status, "revoked");
  assert.match(view.json.revoked_at, RFC3339_RE);
  assert.ok(Math.abs(Date.parse(view.json.revoked_at) - Date.now()) < 60_000);
});

test("last use: after introspection, last_used_at and use_count appear in GET and the list", async () => {
  const pat = await createPat(srv.url, "dora");
  const before = await userCall(srv.url, "dora", "GET", `/api/pats/${pat.id}`);
  assert.equal(before.json.last_used_at, null);
  assert.equal(before.json.use_count, 0);
  for (let i = 0; i < 3; i++) assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const seen = await eventually(async () => {
    const r = await userCall(srv.url, "dora", "GET", `/api/pats/${pat.id}`);
    return r.json.last_used_at ? r.json : null;
  }, { timeoutMs: 15_000 });
  assert.ok(seen, "last_used_at appeared within 15 s");
  assert.match(seen.last_used_at, RFC3339_RE);
  assert.ok(seen.use_count >= 1, `use_count ${seen.use_count}`);
  assert.ok(Math.abs(Date.parse(seen.last_used_at) - Date.now()) < 60_000);
  const list = await userCall(srv.url, "dora", "GET", "/api/pats");
  const inList = list.json.pats.find((p) => p.id === pat.id);
  assert.equal(inList.last_used_at, seen.last_used_at);
  assert.ok(inList.use_count >= 1);
});

test("more creation edges: characters not UTF-16 units, max expiry as a date, duplicate JSON keys, non-UTF-8", async () => {
  const user = "edges";
  const ok = async (body, why) => assertCreated(await userCall(srv.url, user, "POST", "/api/pats", body), why);
  const bad = async (body, why, headers) =>
    assertError(await userCall(srv.url, user, "POST", "/api/pats", body, headers), 400, "invalid_request", why);
  const base = { scopes: ["demo_api:read"], expires_in_days: 1 };
  await ok({ ...base, name: "🔑".repeat(100) }, "100 astral characters");
  await bad({ ...base, name: "🔑".repeat(101) }, "101 astral characters");
  await ok({ name: "366 days", scopes: ["demo_api:read"], expires_at: isoIn(366 * DAY - 120_000) }, "expires_at just under 366 days");
  await bad({ name: "366 days + 1h", scopes: ["demo_api:read"], expires_at: isoIn(366 * DAY + 3600e3) }, "expires_at 366 days + 1 h");
  await bad('{"name":"a","name":"b","scopes":["demo_api:read"],"expires_in_days":1}', "duplicate JSON key");
  const raw = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","scopes":["demo_api:read"],"expires_in_days":1}')]);
  const r = await call(`${srv.url}/api/pats`, {
    method: "POST", headers: { authorization: `Bearer ${devToken(user)}`, "content-type": "application/json" }, body: raw,
  });
  assertError(r, 400, "invalid_request", "non-UTF-8 JSON");
});

test("the 16 KiB limit holds for a chunked body without Content-Length", async () => {
  const body = JSON.stringify({ name: "x".repeat(17 * 1024), scopes: ["demo_api:read"], expires_in_days: 1 });
  const chunks = [body.slice(0, 4000), body.slice(4000)];
  const stream = new ReadableStream({
    pull(c) { if (chunks.length) c.enqueue(new TextEncoder().encode(chunks.shift())); else c.close(); },
  });
  const r = await call(`${srv.url}/api/pats`, {
    method: "POST", duplex: "half", body: stream,
    headers: { authorization: `Bearer ${devToken("chunky")}`, "content-type": "application/json" },
  });
  assertError(r, 413, "invalid_request", "chunked 17 KiB JSON");
  const list = await userCall(srv.url, "chunky", "GET", "/api/pats");
  assert.deepEqual(list.json.pats, []);
});

test("user JWT details: scheme is case-insensitive, aud may be an array, other algorithms are refused", async () => {
  const jwt = devToken("dave");
  const lower = await call(`${srv.url}/api/pats`, { headers: { authorization: `bearer ${jwt}` } });
  assert.equal(lower.status, 200, `'bearer' scheme (RFC 7235: case-insensitive): ${lower.text}`);
  const arr = await call(`${srv.url}/api/pats`, { headers: { authorization: `Bearer ${devToken("dave", { aud: ["x", "patgate"] })}` } });
  assert.equal(arr.status, 200, `aud array containing patgate (RFC 7519 4.1.3): ${arr.text}`);
  // the same shared secret with HS512 is not the configured HS256 key
  const { createHmac } = await import("node:crypto");
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: "HS512", typ: "JWT" });
  const body = b64({ iss: "patgate-dev", aud: "patgate", sub: "dave", iat: now, exp: now + 600 });
  const sig = createHmac("sha512", "dev-user-jwt-secret").update(`${head}.${body}`).digest("base64url");
  const hs512 = await call(`${srv.url}/api/pats`, { headers: { authorization: `Bearer ${head}.${body}.${sig}` } });
  assertError(hs512, 401, "invalid_token", "HS512");
  assert.match(hs512.headers.get("www-authenticate") ?? "", /^Bearer realm="patgate", error="invalid_token"/);
});

test("DELETE 204 and rotate 201 carry Cache-Control: no-store", async () => {
  const pat = await createPat(srv.url, "hdrs");
  const rot = await userCall(srv.url, "hdrs", "POST", `/api/pats/${pat.id}/rotate`);
  assert.equal(rot.headers.get("cache-control"), "no-store");
  const d = await userCall(srv.url, "hdrs", "DELETE", `/api/pats/${pat.id}`);
  assert.equal(d.status, 204);
  assert.equal(d.headers.get("cache-control"), "no-store");
});
