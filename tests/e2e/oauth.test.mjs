// RFC 7662 introspection, RFC 7009 revocation, RFC 8414 discovery, expiry, bad input, and the
// hot path's storage operation counts, against the worker on workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, userCall, createPat, introspect, form, call, makeToken, basic, sleep,
  DEMO_API, OTHER_API, FORM,
} from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("oauth", 8812); });
after(async () => { await srv?.stop(); });

const revoke = (body, headers) => form(`${srv.url}/oauth/revoke`, body, headers);

test("active PAT: exact RFC 7662 fields, client_secret_basic and client_secret_post", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read", "demo_api:write"], { name: "deploy" });
  const r = await introspect(srv.url, pat.token);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.equal(r.headers.get("pragma"), "no-cache");
  assert.match(r.headers.get("content-type"), /^application\/json/);
  const exp = Math.floor(Date.parse(pat.expires_at) / 1000);
  const iat = Math.floor(Date.parse(pat.created_at) / 1000);
  assert.deepEqual(r.json, {
    active: true, scope: "demo_api:read demo_api:write", client_id: "pat_client", sub: "alice",
    exp, iat, iss: srv.url, token_type: "Bearer", jti: pat.id, name: "deploy", aud: "demo_api",
  });
  const post = await form(`${srv.url}/oauth/introspect`,
    new URLSearchParams({ client_id: "demo_api", client_secret: "demo-api-secret", token: pat.token }).toString());
  assert.deepEqual(post.json, r.json);
  const hinted = await form(`${srv.url}/oauth/introspect`,
    new URLSearchParams({ token: pat.token, token_type_hint: "refresh_token" }).toString(), { authorization: DEMO_API });
  assert.equal(hinted.json.active, true, "the hint is only a hint");
});

test("scope rule: each API resource sees only its own scopes", async () => {
  const both = await createPat(srv.url, "alice", ["demo_api:read", "other_api:read"]);
  assert.equal((await introspect(srv.url, both.token, DEMO_API)).json.scope, "demo_api:read");
  const other = await introspect(srv.url, both.token, OTHER_API);
  assert.equal(other.json.scope, "other_api:read");
  assert.equal(other.json.aud, "other_api");
  const onlyOther = await createPat(srv.url, "alice", ["other_api:read"]);
  assert.deepEqual((await introspect(srv.url, onlyOther.token, DEMO_API)).json, { active: false });
});

test("inactive tokens answer exactly {\"active\":false}", async () => {
  const pat = await createPat(srv.url, "alice");
  const flipped = pat.token.slice(0, -1) + (pat.token.endsWith("0") ? "1" : "0");
  const typo = pat.token.slice(0, 10) + (pat.token[10] === "a" ? "b" : "a") + pat.token.slice(11);
  for (const t of ["garbage", flipped, typo, makeToken(), makeToken("pga_"), "x".repeat(151),
                   `${"x".repeat(100)}--${pat.token}`, "pgp_", "été"]) {
    const r = await introspect(srv.url, t);
    assert.equal(r.status, 200, t);
    assert.equal(r.text, '{"active":false}', t);
  }
  const decorated = await introspect(srv.url, `ci-deploy-20261123-20270101--${pat.token}`);
  assert.equal(decorated.json.active, true, "the human-readable part is ignored");
});

test("introspection client authentication failures: 401 invalid_client with a challenge", async () => {
  const pat = await createPat(srv.url, "alice");
  const body = new URLSearchParams({ token: pat.token }).toString();
  for (const auth of [basic("demo_api", "wrong"), basic("nobody", "x"), basic("pat_client", ""), "Basic !!!", undefined]) {
    const r = await form(`${srv.url}/oauth/introspect`, body, auth ? { authorization: auth } : {});
    assert.equal(r.status, 401, String(auth));
    assert.equal(r.json.error, "invalid_client");
    assert.equal(r.headers.get("www-authenticate"), 'Basic realm="patgate"');
    assert.equal(r.headers.get("cache-control"), "no-store");
  }
  const wrongPost = await form(`${srv.url}/oauth/introspect`,
    new URLSearchParams({ client_id: "demo_api", client_secret: "nope", token: pat.token }).toString());
  assert.equal(wrongPost.status, 401);
  const both = await form(`${srv.url}/oauth/introspect`,
    new URLSearchParams({ client_id: "demo_api", client_secret: "demo-api-secret", token: pat.token }).toString(),
    { authorization: DEMO_API });
  assert.equal(both.status, 400);
  assert.equal(both.json.error, "invalid_request");
});

test("malformed OAuth requests: 400/405/413 with RFC 6749 bodies", async () => {
  const pat = await createPat(srv.url, "alice");
  const cases = [
    ["", 400], // missing token
    [`token=${pat.token}&token=${pat.token}`, 400], // duplicate parameter
    ["token=%FF", 400], // not UTF-8
    ["token=%zz", 400], // bad escape
  ];
  for (const [body, status] of cases) {
    const r = await form(`${srv.url}/oauth/introspect`, body, { authorization: DEMO_API });
    assert.equal(r.status, status, body);
    assert.equal(r.json.error, "invalid_request", body);
  }
  const json = await call(`${srv.url}/oauth/introspect`, {
    method: "POST", headers: { authorization: DEMO_API, "content-type": "application/json" },
    body: JSON.stringify({ token: pat.token }),
  });
  assert.equal(json.status, 400);
  assert.equal(json.json.error, "invalid_request");
  const big = await form(`${srv.url}/oauth/introspect`, `token=${"a".repeat(9000)}`, { authorization: DEMO_API });
  assert.equal(big.status, 413);
  assert.equal(big.json.error, "invalid_request");
  const get = await call(`${srv.url}/oauth/introspect`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  assert.equal(get.json.error, "method_not_allowed");
  const nf = await call(`${srv.url}/no/such/route`);
  assert.equal(nf.status, 404);
  assert.deepEqual(nf.json, { error: "not_found" });
});

test("RFC 7009: a PAT holder revokes with client_id=pat_client and no secret", async () => {
  const pat = await createPat(srv.url, "alice");
  const r = await revoke(new URLSearchParams({ client_id: "pat_client", token: pat.token }).toString());
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.deepEqual((await introspect(srv.url, pat.token)).json, { active: false });
  assert.equal((await userCall(srv.url, "alice", "GET", `/api/pats/${pat.id}`)).json.status, "revoked");
  // again, unknown, garbage: all 200
  for (const t of [pat.token, makeToken(), "garbage"]) {
    assert.equal((await revoke(`client_id=pat_client&token=${encodeURIComponent(t)}&token_type_hint=access_token`)).status, 200, t);
  }
  // no client identification
  const anon = await revoke(`token=${pat.token}`);
  assert.equal(anon.status, 401);
  assert.equal(anon.json.error, "invalid_client");
  // missing token
  assert.equal((await revoke("client_id=pat_client")).json.error, "invalid_request");
  // a confidential client cannot revoke a PAT it was not issued
  const other = await createPat(srv.url, "alice");
  const r2 = await revoke(`token=${other.token}`, { authorization: basic("demo_client", "demo-client-secret") });
  assert.equal(r2.status, 400);
  assert.equal(r2.json.error, "unauthorized_client");
  assert.equal((await introspect(srv.url, other.token)).json.active, true);
});

test("expiry: a PAT is active until expires_at, then inactive and listed as expired", async () => {
  const at = new Date(Date.now() + 3000);
  at.setUTCMilliseconds(0);
  const pat = await createPat(srv.url, "eve", ["demo_api:read"], { expires_in_days: undefined, expires_at: at.toISOString() });
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  await sleep(Math.max(0, at.getTime() - Date.now()) + 1500);
  assert.deepEqual((await introspect(srv.url, pat.token)).json, { active: false });
  assert.equal((await userCall(srv.url, "eve", "GET", `/api/pats/${pat.id}`)).json.status, "expired");
});

test("no input makes a 5xx", async () => {
  const pat = await createPat(srv.url, "alice");
  const paths = ["/oauth/introspect", "/oauth/revoke", "/oauth/token", "/api/pats", `/api/pats/${pat.id}`,
    `/api/pats/${pat.id}/rotate`, "/admin/clients", "/.well-known/oauth-authorization-server", "/%ff", "/api/pats/%00"];
  const bodies = ["", "token", "=", "&&&", "token=%", "a=b&a=b", "\u0000", "{}", "[]", '{"name":', "%E2%82",
    Buffer.from([0xff, 0xfe, 0x00]), "x".repeat(20000)];
  const headerSets = [
    { "content-type": FORM, authorization: DEMO_API },
    { "content-type": "application/json", authorization: "Bearer x.y.z" },
    { "content-type": "multipart/form-data; boundary=x" },
    { authorization: "Basic" },
    { authorization: "Bearer" },
  ];
  for (const path of paths) {
    for (const method of ["GET", "POST", "DELETE", "PUT", "PATCH"]) {
      for (const body of method === "GET" ? [undefined] : bodies) {
        for (const headers of headerSets) {
          const r = await call(`${srv.url}${path}`, { method, headers, body });
          assert.ok(r.status < 500, `${method} ${path} ${String(body).slice(0, 20)} -> ${r.status} ${r.text}`);
          if (r.status >= 400 && r.text) assert.equal(typeof r.json?.error, "string", `${method} ${path}: ${r.text}`);
        }
      }
    }
  }
});

test("discovery: RFC 8414 metadata at {issuer}/.well-known/oauth-authorization-server", async () => {
  const r = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.equal(r.json.issuer, srv.url);
  assert.equal(r.json.introspection_endpoint, `${srv.url}/oauth/introspect`);
  assert.equal(r.json.revocation_endpoint, `${srv.url}/oauth/revoke`);
  assert.deepEqual(r.json.introspection_endpoint_auth_methods_supported, ["client_secret_basic", "client_secret_post"]);
  assert.ok(r.json.revocation_endpoint_auth_methods_supported.includes("none"));
  assert.deepEqual(r.json.scopes_supported, ["demo_api:read", "demo_api:write", "other_api:read"]);
  const oidc = await call(`${srv.url}/.well-known/openid-configuration`);
  assert.deepEqual(oidc.json, r.json);
});

test("hot path cost: an active PAT is 1 KV read and 0 D1 queries; garbage touches nothing", async () => {
  const counters = async () => (await call(`${srv.url}/_dev/counters`)).json;
  const pat = await createPat(srv.url, "alice");
  for (let i = 0; i < 3; i++) await introspect(srv.url, pat.token); // warm caches
  const a = await counters();
  const n = 20;
  for (let i = 0; i < n; i++) assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const b = await counters();
  assert.equal(b.kv_get - a.kv_get, n);
  assert.equal(b.d1_query - a.d1_query, 0);
  assert.equal(b.do_call - a.do_call, 0, "last use already reported in this 30 s window");
  for (let i = 0; i < n; i++) await introspect(srv.url, "garbage");
  const c = await counters();
  for (const k of Object.keys(c)) assert.equal(c[k], b[k], k);
});
