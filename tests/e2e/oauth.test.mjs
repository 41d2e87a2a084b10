// RFC 7662 introspection, RFC 7009 revocation, RFC 8414 discovery, the token format, expiry, bad
// input in general (404/405/no 5xx), and the hot path's storage operation counts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, userCall, createPat, introspect, form, call, makeToken, flipLast, checksum, basic, sleep,
  assertError, isoIn, devToken, DEMO_API, OTHER_API, FORM, ADMIN,
} from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("oauth", 8812); });
after(async () => { await srv?.stop(); });

const INACTIVE = '{"active":false}';
const enc = (o) => new URLSearchParams(o).toString();
const introspectRaw = (body, headers = { authorization: DEMO_API }) => form(`${srv.url}/oauth/introspect`, body, headers);
const revoke = (body, headers) => form(`${srv.url}/oauth/revoke`, body, headers);

function assertInactive(r, what) {
  assert.equal(r.status, 200, `${what}: ${r.text}`);
  assert.equal(r.text, INACTIVE, what);
  // an API may reuse the answer for the revocation bound (a token not yet visible here may work
  // a moment later)
  assert.equal(r.headers.get("cache-control"), "private, max-age=5", what);
}

function assertInvalidClient(r, what) {
  assertError(r, 401, "invalid_client", what);
  assert.equal(r.headers.get("www-authenticate"), 'Basic realm="patgate"', what);
  assert.equal(r.headers.get("cache-control"), "no-store", what);
  assert.equal(r.headers.get("pragma"), "no-cache", what);
}

// --- the token format -------------------------------------------------------------------------

test("makeToken: a well-formed token the server never issued is {\"active\":false}", async () => {
  const t = makeToken();
  assert.equal(t.length, 53);
  assert.match(t, /^pgp_[0-9A-Za-z]{49}$/);
  assert.equal(t.slice(47), checksum(t.slice(0, 47)));
  assertInactive(await introspect(srv.url, t), "unknown well-formed");
  assertInactive(await introspect(srv.url, makeToken("pga_")), "unknown well-formed pga_");
});

test("a token with its last character flipped (bad checksum) is {\"active\":false}", async () => {
  const pat = await createPat(srv.url, "alice");
  assert.equal(pat.token.slice(47), checksum(pat.token.slice(0, 47)), "server tokens use the documented checksum");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  assertInactive(await introspect(srv.url, flipLast(pat.token)), "flipped last char");
  assertInactive(await introspect(srv.url, flipLast(makeToken())), "flipped unknown");
});

// --- introspection ----------------------------------------------------------------------------

test("active PAT: exact RFC 7662 fields via client_secret_basic and client_secret_post", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read", "demo_api:write"], { name: "deploy" });
  const r = await introspect(srv.url, pat.token);
  assert.equal(r.status, 200);
  // reusable for the rest of the 5 s revocation bound (the age of the revocation feed's view)
  assert.match(r.headers.get("cache-control") ?? "", /^private, max-age=[0-5]$/);
  assert.equal(r.headers.get("pragma"), "no-cache");
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  const expected = {
    active: true, scope: "demo_api:read demo_api:write", client_id: "pat_client", sub: "alice",
    exp: Math.floor(Date.parse(pat.expires_at) / 1000), iat: Math.floor(Date.parse(pat.created_at) / 1000),
    iss: srv.url, token_type: "Bearer", jti: pat.id, name: "deploy", aud: "demo_api",
  };
  assert.deepEqual(r.json, expected);
  const post = await introspectRaw(enc({ client_id: "demo_api", client_secret: "demo-api-secret", token: pat.token }), {});
  assert.equal(post.status, 200, post.text);
  assert.deepEqual(post.json, expected);
  const hinted = await introspectRaw(enc({ token: pat.token, token_type_hint: "refresh_token" }));
  assert.deepEqual(hinted.json, expected, "token_type_hint is ignored");
  const charset = await introspectRaw(enc({ token: pat.token }),
    { authorization: DEMO_API, "content-type": `${FORM}; charset=UTF-8` });
  assert.deepEqual(charset.json, expected, "form content type with a charset parameter");
});

test("scope rule: each API resource sees only its own scopes, none -> inactive", async () => {
  const both = await createPat(srv.url, "alice", ["demo_api:read", "other_api:read"]);
  const d = await introspect(srv.url, both.token, DEMO_API);
  assert.equal(d.json.active, true);
  assert.equal(d.json.scope, "demo_api:read");
  assert.equal(d.json.aud, "demo_api");
  const o = await introspect(srv.url, both.token, OTHER_API);
  assert.equal(o.json.active, true);
  assert.equal(o.json.scope, "other_api:read");
  assert.equal(o.json.aud, "other_api");
  const onlyOther = await createPat(srv.url, "alice", ["other_api:read"]);
  assertInactive(await introspect(srv.url, onlyOther.token, DEMO_API), "other_api-only PAT seen by demo_api");
  assert.equal((await introspect(srv.url, onlyOther.token, OTHER_API)).json.active, true);
  const onlyDemo = await createPat(srv.url, "alice", ["demo_api:write"]);
  assertInactive(await introspect(srv.url, onlyDemo.token, OTHER_API), "demo_api-only PAT seen by other_api");
});

test("inactive inputs answer exactly {\"active\":false}; the name--token form is accepted", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"], { name: "ci deploy" });
  const typo = pat.token.slice(0, 10) + (pat.token[10] === "a" ? "b" : "a") + pat.token.slice(11);
  const cases = {
    garbage: "garbage",
    "wrong checksum": flipLast(pat.token),
    "typo in the random part": typo,
    "unknown well-formed": makeToken(),
    "over 150 characters": `${"x".repeat(96)}--${pat.token}`, // 151
    "very long": "pgp_" + "a".repeat(4000),
    "prefix only": "pgp_",
    "short": pat.token.slice(0, 52),
    "long": pat.token + "0",
    "upper-case prefix": "PGP_" + pat.token.slice(4),
    "bad alphabet": pat.token.slice(0, 20) + "-" + pat.token.slice(21),
    "non-ASCII": "été",
    "trailing separator": `${pat.token}--`,
    "JWT-looking": "a.b.c",
  };
  for (const [why, t] of Object.entries(cases)) assertInactive(await introspect(srv.url, t), why);

  const expectedName = "ci deploy";
  const decorated = await introspect(srv.url, `ci-deploy-20261123-20270101--${pat.token}`);
  assert.equal(decorated.status, 200);
  assert.equal(decorated.json.active, true, "the human-readable part is ignored");
  assert.equal(decorated.json.jti, pat.id);
  assert.equal(decorated.json.name, expectedName);
  const exactly150 = `${"x".repeat(95)}--${pat.token}`;
  assert.equal(exactly150.length, 150);
  assert.equal((await introspect(srv.url, exactly150)).json.active, true, "150 characters is not over 150");
});

test("introspection client authentication failures: 401 invalid_client + Basic challenge", async () => {
  const pat = await createPat(srv.url, "alice");
  const token = pat.token;
  const basicCases = {
    "wrong secret": basic("demo_api", "wrong"),
    "other resource's secret": basic("demo_api", "other-api-secret"),
    "unknown resource": basic("nobody", "x"),
    "a client, not an API resource": basic("demo_client", "demo-client-secret"),
    "public pat_client, empty secret": basic("pat_client", ""),
    "not base64": "Basic !!!",
    "no colon": "Basic " + Buffer.from("demo_api").toString("base64"),
    "empty Basic": "Basic",
  };
  for (const [why, auth] of Object.entries(basicCases)) {
    assertInvalidClient(await introspectRaw(enc({ token }), { authorization: auth }), why);
  }
  assertInvalidClient(await introspectRaw(enc({ token }), {}), "no credentials");
  const postCases = {
    "post: wrong secret": { client_id: "demo_api", client_secret: "nope", token },
    "post: unknown resource": { client_id: "nobody", client_secret: "x", token },
    "post: id without secret": { client_id: "demo_api", token },
    "post: pat_client without secret": { client_id: "pat_client", token },
  };
  for (const [why, params] of Object.entries(postCases)) {
    assertInvalidClient(await introspectRaw(enc(params), {}), why);
  }
  const both = await introspectRaw(enc({ client_id: "demo_api", client_secret: "demo-api-secret", token }),
    { authorization: DEMO_API });
  assertError(both, 400, "invalid_request", "client_secret_basic and client_secret_post at once");
  assert.equal((await introspect(srv.url, token)).json.active, true, "nothing changed");
});

test("malformed introspection requests: 400/413 invalid_request", async () => {
  const pat = await createPat(srv.url, "alice");
  const cases = {
    "missing token": "",
    "only a hint": "token_type_hint=access_token",
    "duplicate token": `token=${pat.token}&token=${pat.token}`,
    "duplicate token, one empty": `token=${pat.token}&token=`,
    "non-UTF-8": "token=%FF",
    "non-UTF-8 (overlong)": "token=%C0%AF",
    "bad percent escape": "token=%zz",
  };
  for (const [why, body] of Object.entries(cases)) {
    const r = await introspectRaw(body);
    assertError(r, 400, "invalid_request", why);
    assert.equal(r.headers.get("cache-control"), "no-store", why);
  }
  for (const ct of ["application/json", "text/plain", "multipart/form-data; boundary=x", undefined]) {
    const headers = { authorization: DEMO_API };
    if (ct) headers["content-type"] = ct;
    const body = ct === "application/json" ? JSON.stringify({ token: pat.token }) : enc({ token: pat.token });
    const r = await call(`${srv.url}/oauth/introspect`, { method: "POST", headers, body });
    assertError(r, 400, "invalid_request", `content-type ${ct}`);
  }
  const big = await introspectRaw(`token=${"a".repeat(9000)}`);
  assertError(big, 413, "invalid_request", "9000-byte body");
  const under = await introspectRaw(`token=${"a".repeat(8000)}`);
  assertInactive(under, "8006-byte body is within 8 KiB");
});

// --- expiry -----------------------------------------------------------------------------------

test("expiry: active until expires_at, then inactive and listed as expired; cannot rotate", async () => {
  const at = isoIn(8000); // 7-8 s ahead, whole seconds: room for a slow create
  const pat = await createPat(srv.url, "eve", ["demo_api:read"], { expires_in_days: undefined, expires_at: at });
  assert.equal(Date.parse(pat.expires_at), Date.parse(at));
  const r = await introspect(srv.url, pat.token);
  assert.equal(r.json.active, true);
  assert.equal(r.json.exp, Date.parse(at) / 1000);
  assert.equal((await userCall(srv.url, "eve", "GET", `/api/pats/${pat.id}`)).json.status, "active");
  await sleep(Math.max(0, Date.parse(at) - Date.now()) + 1500);
  assertInactive(await introspect(srv.url, pat.token), "after expires_at");
  const view = await userCall(srv.url, "eve", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.json.status, "expired");
  assert.equal(view.json.revoked_at, null);
  const list = await userCall(srv.url, "eve", "GET", "/api/pats");
  assert.equal(list.json.pats.find((p) => p.id === pat.id)?.status, "expired");
  assertError(await userCall(srv.url, "eve", "POST", `/api/pats/${pat.id}/rotate`), 409, "conflict", "rotate expired");
});

// --- revocation (RFC 7009) --------------------------------------------------------------------

test("RFC 7009: the PAT holder revokes with client_id=pat_client and no secret", async () => {
  const pat = await createPat(srv.url, "alice");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const r = await revoke(enc({ client_id: "pat_client", token: pat.token }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, "", "empty body");
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.equal(r.headers.get("pragma"), "no-cache");
  assertInactive(await introspect(srv.url, pat.token), "after RFC 7009 revocation");
  const view = await userCall(srv.url, "alice", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.json.status, "revoked");
  assert.ok(view.json.revoked_at);

  const again = await revoke(enc({ client_id: "pat_client", token: pat.token }));
  assert.equal(again.status, 200, "revoking twice");
  for (const [why, t] of [["unknown well-formed", makeToken()], ["garbage", "garbage"], ["bad checksum", flipLast(makeToken())]]) {
    const u = await revoke(enc({ client_id: "pat_client", token: t, token_type_hint: "access_token" }));
    assert.equal(u.status, 200, `${why}: ${u.text}`);
  }

  const decorated = await createPat(srv.url, "alice");
  assert.equal((await revoke(enc({ client_id: "pat_client", token: `my-laptop--${decorated.token}` }))).status, 200);
  assertInactive(await introspect(srv.url, decorated.token), "revoked through the name--token form");
});

test("RFC 7009 errors: missing client_id, unknown client, missing token, another client's token", async () => {
  const pat = await createPat(srv.url, "alice");
  assertInvalidClient(await revoke(enc({ token: pat.token })), "missing client_id");
  assertInvalidClient(await revoke(enc({ client_id: "nobody", token: pat.token })), "unknown public client");
  assertInvalidClient(await revoke(enc({ token: pat.token }), { authorization: basic("demo_client", "wrong") }),
    "confidential client, wrong secret");
  assertError(await revoke(enc({ client_id: "pat_client" })), 400, "invalid_request", "missing token");
  assertError(await revoke(`client_id=pat_client&token=${pat.token}&token=${pat.token}`), 400, "invalid_request", "duplicate token");
  assertError(await revoke("client_id=pat_client&token=%FF"), 400, "invalid_request", "non-UTF-8");
  const json = await call(`${srv.url}/oauth/revoke`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_id: "pat_client", token: pat.token }),
  });
  assertError(json, 400, "invalid_request", "JSON body");
  assertError(await revoke(`client_id=pat_client&token=${"a".repeat(9000)}`), 413, "invalid_request", "9 KiB");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true, "none of these revoked it");

  const r = await revoke(enc({ token: pat.token }), { authorization: basic("demo_client", "demo-client-secret") });
  assertError(r, 400, "unauthorized_client", "a confidential client revoking a PAT");
  assert.equal((await introspect(srv.url, pat.token)).json.active, true, "still active");
});

// --- bad input in general ---------------------------------------------------------------------

test("unknown routes: 404 {\"error\":\"not_found\"}", async () => {
  // "/" is the token page on the issuer's host (tests/e2e/page.test.mjs).
  for (const path of ["/nope", "/api", "/api/", "/api/pats/", "/api/pats/x/y", "/api/pats/x/rotate/y",
    "/api/patsx", "/oauth", "/oauth/authorize", "/oauth/introspect/x", "/.well-known/nope", "/_dev/nope"]) {
    for (const method of ["GET", "POST"]) {
      const r = await call(`${srv.url}${path}`, { method, headers: { authorization: DEMO_API } });
      assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text}`);
      assert.deepEqual(r.json, { error: "not_found" }, `${method} ${path}`);
      if (path.startsWith("/api/") || path.startsWith("/oauth/")) {
        assert.equal(r.headers.get("cache-control"), "no-store", `${method} ${path}`);
      }
    }
  }
});

test("wrong method: 405 method_not_allowed with Allow", async () => {
  const pat = await createPat(srv.url, "alice");
  const cases = [
    ["GET", "/oauth/introspect", ["POST"]],
    ["PUT", "/oauth/introspect", ["POST"]],
    ["GET", "/oauth/revoke", ["POST"]],
    ["GET", "/oauth/token", ["POST"]],
    ["PUT", "/api/pats", ["GET", "POST"]],
    ["DELETE", "/api/pats", ["GET", "POST"]],
    ["POST", `/api/pats/${pat.id}`, ["GET", "DELETE"]],
    ["PATCH", `/api/pats/${pat.id}`, ["GET", "DELETE"]],
    ["GET", `/api/pats/${pat.id}/rotate`, ["POST"]],
    ["POST", "/.well-known/oauth-authorization-server", ["GET"]],
    ["DELETE", "/.well-known/jwks.json", ["GET"]],
  ];
  for (const [method, path, allow] of cases) {
    const r = await userCall(srv.url, "alice", method, path);
    assertError(r, 405, "method_not_allowed", `${method} ${path}`);
    const got = (r.headers.get("allow") ?? "").split(",").map((s) => s.trim()).filter(Boolean).sort();
    assert.deepEqual(got, [...allow].sort(), `Allow for ${method} ${path}`);
  }
});

test("no input makes a 5xx, and every error body is JSON with an error code", async () => {
  const pat = await createPat(srv.url, "alice");
  const paths = ["/oauth/introspect", "/oauth/revoke", "/oauth/token", "/api/pats", `/api/pats/${pat.id}`,
    `/api/pats/${pat.id}/rotate`, "/api/pats?limit=abc&cursor=%ff", "/api/pats/%ff", "/api/pats/%00/rotate",
    `/api/pats/${"a".repeat(2000)}`, "/.well-known/oauth-authorization-server", "/.well-known/jwks.json", "/%ff"];
  const bodies = ["", "token", "=", "&&&", "token=%", "token=%FF", "a=b&a=b", "token=a&token=b", "\u0000", "{}", "[]",
    '{"name":', '{"name":"x","scopes":"demo_api:read","expires_in_days":1}',
    '{"name":"x","scopes":[null],"expires_in_days":1e400}', "%E2%82",
    Buffer.from([0xff, 0xfe, 0x00]), "x".repeat(20000), `token=${encodeURIComponent(pat.token)}`];
  const bearer = `Bearer ${devToken("fuzzer")}`;
  const headerSets = [
    { "content-type": FORM, authorization: DEMO_API },
    { "content-type": FORM },
    { "content-type": "application/json", authorization: bearer },
    { "content-type": "application/json", authorization: "Bearer x.y.z" },
    { "content-type": "multipart/form-data; boundary=x" },
    { "content-type": FORM, authorization: "Basic " + Buffer.from(":").toString("base64") },
    { "content-type": FORM, authorization: "Basic " + Buffer.from("%zz:%zz").toString("base64") },
    { authorization: "Basic" },
    { authorization: "Bearer" },
    { authorization: "Bearer " + "a".repeat(5000) },
    { "cf-access-jwt-assertion": "\u00ff" },
  ];
  let n = 0;
  for (const path of paths) {
    for (const method of ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]) {
      const bodyless = method === "GET" || method === "HEAD";
      const combos = [];
      if (bodyless) for (const headers of headerSets) combos.push([undefined, headers]);
      else {
        // every body with a few header sets (all of them for POST), rotating through the sets
        const per = method === "POST" ? 3 : 1;
        bodies.forEach((body, i) => {
          for (let j = 0; j < per; j++) combos.push([body, headerSets[(i * per + j) % headerSets.length]]);
        });
      }
      {
        for (const [body, headers] of combos) {
          let r;
          try {
            r = await call(`${srv.url}${path}`, { method, headers, body });
          } catch (e) {
            assert.fail(`${method} ${path} ${JSON.stringify(headers)}: fetch failed: ${e.message}`);
          }
          n++;
          const what = `${method} ${path} body=${JSON.stringify(String(body ?? "").slice(0, 30))} ${JSON.stringify(headers).slice(0, 80)} -> ${r.status} ${r.text.slice(0, 200)}`;
          assert.ok(r.status < 500, what);
          if (r.status >= 400 && method !== "HEAD") {
            assert.ok(r.json && typeof r.json.error === "string", `error body is JSON with error: ${what}`);
          }
        }
      }
    }
  }
  assert.ok(n > 1000, `${n} requests`);
  assert.equal((await introspect(srv.url, pat.token)).json.active, true, "the server still works");
});

// --- discovery --------------------------------------------------------------------------------

test("discovery: RFC 8414 metadata, no-store", async () => {
  const r = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  const m = r.json;
  assert.equal(m.issuer, srv.url);
  assert.equal(m.introspection_endpoint, `${srv.url}/oauth/introspect`);
  assert.equal(m.revocation_endpoint, `${srv.url}/oauth/revoke`);
  assert.equal(m.token_endpoint, `${srv.url}/oauth/token`);
  assert.equal(m.jwks_uri, `${srv.url}/.well-known/jwks.json`);
  for (const k of ["introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"]) {
    assert.ok(Array.isArray(m[k]), k);
    for (const meth of ["client_secret_basic", "client_secret_post"]) assert.ok(m[k].includes(meth), `${k} has ${meth}`);
  }
  assert.ok(m.revocation_endpoint_auth_methods_supported.includes("none"), "public pat_client revokes with none");
  assert.deepEqual(m.response_types_supported, ["code"]);
  assert.equal(m.authorization_endpoint, `${srv.url}/authorize`);
  assert.ok(m.grant_types_supported.includes("client_credentials"));
  assert.ok(m.grant_types_supported.includes("urn:ietf:params:oauth:grant-type:token-exchange"));
  assert.deepEqual([...m.scopes_supported].sort(), ["demo_api:read", "demo_api:write", "other_api:read"]);
  // patgate is no OpenID Provider (no ID tokens): no OIDC metadata.
  const oidc = await call(`${srv.url}/.well-known/openid-configuration`);
  assertError(oidc, 404, "not_found", "openid-configuration");
});

// --- storage cost of the hot path ------------------------------------------------------------

// --- more edges -------------------------------------------------------------------------------

test("introspection: raw non-UTF-8 bytes, chunked body over 8 KiB, lower-case basic scheme", async () => {
  const pat = await createPat(srv.url, "alice");
  const raw = Buffer.concat([Buffer.from("token="), Buffer.from([0xff, 0xfe])]);
  assertError(await introspectRaw(raw), 400, "invalid_request", "raw non-UTF-8 bytes");
  const body = `token=${"a".repeat(9000)}`;
  const chunks = [body.slice(0, 3000), body.slice(3000)];
  const stream = new ReadableStream({
    pull(c) { if (chunks.length) c.enqueue(new TextEncoder().encode(chunks.shift())); else c.close(); },
  });
  const r = await call(`${srv.url}/oauth/introspect`, {
    method: "POST", duplex: "half", body: stream, headers: { authorization: DEMO_API, "content-type": FORM },
  });
  assertError(r, 413, "invalid_request", "chunked 9 KiB form");
  const lower = await introspectRaw(enc({ token: pat.token }), { authorization: DEMO_API.replace("Basic", "basic") });
  assert.equal(lower.json?.active, true, `'basic' scheme (RFC 7235: case-insensitive): ${lower.status} ${lower.text}`);
});

test("client_secret_basic url-decodes the id (an API resource id with ':')", async () => {
  const made = await call(`${srv.url}/admin/resources`, {
    method: "POST", headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ id: "ns:api", scopes: ["ns:read"] }),
  });
  assert.equal(made.status, 201, made.text);
  const secret = made.json.secret;
  assert.equal(typeof secret, "string");
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const viaBasic = await introspect(srv.url, pat.token, basic("ns:api", secret));
  assertInactive(viaBasic, "ns:api authenticates (urlencoded id) and sees no scope of its own");
  const viaPost = await introspectRaw(enc({ client_id: "ns:api", client_secret: secret, token: pat.token }), {});
  assertInactive(viaPost, "ns:api via client_secret_post");
  assertInvalidClient(await introspect(srv.url, pat.token, basic("ns:api", secret + "x")), "ns:api wrong secret");
});

test("expired PATs: RFC 7009 revocation still answers 200", async () => {
  const at = isoIn(5000);
  const pat = await createPat(srv.url, "eve2", ["demo_api:read"], { expires_in_days: undefined, expires_at: at });
  await sleep(Math.max(0, Date.parse(at) - Date.now()) + 1200);
  assertInactive(await introspect(srv.url, pat.token), "expired");
  const r = await revoke(enc({ client_id: "pat_client", token: pat.token }));
  assert.equal(r.status, 200, r.text);
});

test("404 and 405 on /oauth/* carry Pragma: no-cache and Cache-Control: no-store", async () => {
  for (const [method, path, status] of [["GET", "/oauth/introspect", 405], ["POST", "/oauth/nope", 404]]) {
    const r = await call(`${srv.url}${path}`, { method });
    assert.equal(r.status, status);
    assert.equal(r.headers.get("cache-control"), "no-store", `${method} ${path}`);
    assert.equal(r.headers.get("pragma"), "no-cache", `${method} ${path}`);
  }
});
