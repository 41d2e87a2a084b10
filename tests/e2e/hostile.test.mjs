// Hostile input on real workerd: bodies limited while they are read (chunked bodies,
// declared lengths, malformed chunking), JSON bodies that are not objects, ids a URL cannot
// address, user JWTs with unusable subjects or of the wrong type (a real patgate access token),
// no signing keys, Accept weights, discovery, and If-Match on admin writes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as jose from "jose";
import {
  startServer, userCall, createPat, introspect, form, call, assertError, devToken, ADMIN, FORM,
} from "./helpers.mjs";
import { DEV_VARS } from "../../scripts/devserver.mjs";
import { rawExchange, workerUrl } from "./rawhttp.mjs";

const DEV_KEY = JSON.parse(DEV_VARS.JWT_SIGNING_KEYS)[0];
const DEV_PUBLIC_JWKS = JSON.stringify({ keys: [{ kty: DEV_KEY.kty, crv: DEV_KEY.crv, x: DEV_KEY.x, kid: DEV_KEY.kid }] });
const TE = "urn:ietf:params:oauth:grant-type:token-exchange";
const TT_AT = "urn:ietf:params:oauth:token-type:access_token";

let srv; // the demo configuration
let direct; // srv's worker on workerd's own socket, behind no dev proxy (see workerUrl)
let bare; // no JWT signing keys; user JWTs verified against patgate's (srv's) public key
before(async () => {
  // The production drain bound (at most 1 MiB past the limit): these uploads go to workerd's own
  // socket, where an early answer disturbs nobody (bodies.test.mjs covers `wrangler dev`'s proxy).
  srv = await startServer("hostile", 8815, { DEV_DRAIN_REFUSED_BODIES: "false" });
  bare = await startServer("hostile-bare", 8816, {
    JWT_SIGNING_KEYS: "",
    USER_JWKS: DEV_PUBLIC_JWKS,
    USER_JWT_ISSUER: srv.url,
    USER_JWT_AUDIENCE: "demo_api",
  });
  direct = await workerUrl(srv.url);
});
after(async () => {
  await srv?.stop();
  await bare?.stop();
});

const admin = (base, method, path, body, headers = {}) => call(`${base}/admin${path}`, {
  method,
  headers: { authorization: ADMIN, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
  body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
});

/** `total` bytes of `fill`, in chunks of `size`. */
function chunks(total, size = 64 * 1024, fill = "a") {
  let left = total;
  return () => {
    if (left <= 0) return null;
    const n = Math.min(size, left);
    left -= n;
    return Buffer.alloc(n, fill);
  };
}

const HUGE = 64 * 1024 * 1024; // far more than any socket buffer between us and the worker

function assert413(r, limit, what, oauth) {
  assert.equal(r.status, 413, `${what}: ${r.status} ${r.body}`);
  assert.equal(r.json?.error, "invalid_request", what);
  assert.equal(r.json?.error_description, `the body is larger than ${limit} bytes`, what);
  assert.equal(r.headers["cache-control"], "no-store", what);
  if (oauth) assert.equal(r.headers["pragma"], "no-cache", what);
}

test("a chunked body over the limit is refused after keeping at most the limit and draining at most 1 MiB more; the PAT is not rotated", async () => {
  const pat = await createPat(srv.url, "chunky");
  const r = await rawExchange(direct, [
    `POST /api/pats/${pat.id}/rotate HTTP/1.1`,
    `Authorization: Bearer ${devToken("chunky")}`,
    "Content-Type: application/json",
    "Transfer-Encoding: chunked",
  ].join("\r\n"), { nextChunk: chunks(HUGE) });
  // The answer (or, when the runtime's reset overtakes it, the reset) came while the upload was
  // still going: the body was not read to its end (before: read whole, then the PAT rotated, 201).
  if (!r.reset) assert413(r, 16384, "64 MiB chunked rotate");
  assert.ok(r.sent < HUGE, `answered after ${r.sent} of ${HUGE} bytes`);
  assert.equal((await introspect(srv.url, pat.token)).json.active, true, "the old token still works: no rotation");
  const view = await userCall(srv.url, "chunky", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.json.status, "active");

  const f = await rawExchange(direct, [
    "POST /oauth/introspect HTTP/1.1",
    "Authorization: Basic " + Buffer.from("demo_api:demo-api-secret").toString("base64"),
    `Content-Type: ${FORM}`,
    "Transfer-Encoding: chunked",
  ].join("\r\n"), { nextChunk: chunks(HUGE) });
  if (!f.reset) assert413(f, 8192, "64 MiB chunked form", true);
  assert.ok(f.sent < HUGE, `answered after ${f.sent} of ${HUGE} bytes`);
});

test("a declared Content-Length over the limit is a 413 naming the endpoint's limit", async () => {
  // The shim refuses it from the header without reading the body. (workerd itself waits for the
  // declared bytes before it sends any answer, to keep the connection, so they are sent.)
  for (const [path, limit, type, oauth] of [
    ["/oauth/token", 8192, FORM, true],
    ["/oauth/revoke", 8192, FORM, true],
    ["/api/pats", 16384, "application/json", false],
    ["/admin/clients", 16384, "application/json", false],
  ]) {
    const r = await rawExchange(direct, [
      `POST ${path} HTTP/1.1`,
      `Authorization: Bearer ${devToken("cl")}`,
      `Content-Type: ${type}`,
      `Content-Length: ${limit + 1}`,
    ].join("\r\n"), { chunked: false, nextChunk: chunks(limit + 1) });
    assert413(r, limit, `${path} declaring ${limit + 1}`, oauth);
  }
});

test("each endpoint's exact limit holds for chunked bodies (shim and core agree)", async () => {
  const post = (path, size, type, auth) => rawExchange(direct, [
    `POST ${path} HTTP/1.1`, `Authorization: ${auth}`, `Content-Type: ${type}`, "Transfer-Encoding: chunked",
  ].join("\r\n"), { nextChunk: chunks(size, 1000, "a") });
  const basicAuth = "Basic " + Buffer.from("demo_api:demo-api-secret").toString("base64");
  // 8192 bytes of `a...` is one unknown parameter without a token: 400, not 413.
  const atForm = await post("/oauth/introspect", 8192, FORM, basicAuth);
  assert.equal(atForm.status, 400, atForm.body);
  assert413(await post("/oauth/introspect", 8193, FORM, basicAuth), 8192, "8193-byte form", true);
  const user = `Bearer ${devToken("limits")}`;
  const atJson = await post("/api/pats", 16384, "application/json", user);
  assert.equal(atJson.status, 400, atJson.body);
  assert.notEqual(atJson.json?.error_description, "the body is larger than 16384 bytes");
  assert413(await post("/api/pats", 16385, "application/json", user), 16384, "16385-byte JSON");
});

test("a malformed chunked encoding is a 400, never a 5xx", async () => {
  const cases = [
    ["bad chunk size", "zz\r\nabc\r\n0\r\n\r\n"],
    ["negative size", "-5\r\nabc\r\n0\r\n\r\n"],
    ["body cut off inside a chunk", "10\r\nabc"],
  ];
  for (const [what, wire] of cases) {
    let sentOnce = false;
    const r = await rawExchange(direct, [
      "POST /oauth/revoke HTTP/1.1", `Content-Type: ${FORM}`, "Transfer-Encoding: chunked",
    ].join("\r\n"), {
      chunked: false,
      halfClose: true,
      nextChunk: () => (sentOnce ? null : ((sentOnce = true), Buffer.from(wire))),
    }).catch((e) => ({ status: 0, body: String(e) }));
    // workerd hands the worker a body stream that fails; the shim turns that into the worker's
    // 400 (before: the read error was rethrown, a 5xx).
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.body}`);
    assert.equal(r.json?.error, "invalid_request", `${what}: ${r.body}`);
    assert.equal(r.headers["cache-control"], "no-store", what);
  }
});

// --- JSON bodies must be objects ----------------------------------------------------------------

test("a JSON array is not a PAT request, a resource or a client", async () => {
  const r = await userCall(srv.url, "arrays", "POST", "/api/pats", JSON.stringify(["name", ["demo_api:read"], null, 1]));
  assertError(r, 400, "invalid_request", "array PAT");
  assert.equal(r.json.error_description, "the JSON body must be an object, not an array");
  assert.deepEqual((await userCall(srv.url, "arrays", "GET", "/api/pats")).json.pats, []);
  const res = await admin(srv.url, "POST", "/resources", JSON.stringify(["arr_api", ["arr:read"]]));
  assertError(res, 400, "invalid_request", "array resource");
  assert.equal((await admin(srv.url, "GET", "/resources/arr_api")).status, 404);
  const cl = await admin(srv.url, "POST", "/clients", JSON.stringify(["arr_client", false, ["demo_api:read"]]));
  assertError(cl, 400, "invalid_request", "array client");
  assert.equal((await admin(srv.url, "GET", "/clients/arr_client")).status, 404);
  for (const body of ["null", "1", '"x"', "true"]) {
    assertError(await userCall(srv.url, "arrays", "POST", "/api/pats", body), 400, "invalid_request", body);
  }
});

test("ids . and .. are refused (a URL can never address them)", async () => {
  for (const id of [".", ".."]) {
    assertError(await admin(srv.url, "POST", "/resources", { id, scopes: [] }), 400, "invalid_request", `resource ${id}`);
    assertError(await admin(srv.url, "POST", "/clients", { id, allowed_scopes: [] }), 400, "invalid_request", `client ${id}`);
  }
  const list = (await admin(srv.url, "GET", "/resources")).json.resources.map((r) => r.id);
  assert.ok(!list.includes(".") && !list.includes(".."), list.join(","));
});

// --- user JWTs ----------------------------------------------------------------------------------

test("user JWTs with an empty, blank or control-character sub are refused", async () => {
  for (const sub of ["", "   ", "\t", "alice\n", "al\u0000ice", "\u001b[31mroot"]) {
    const r = await call(`${srv.url}/api/pats`, { headers: { authorization: `Bearer ${devToken(sub)}` } });
    assertError(r, 401, "invalid_token", JSON.stringify(sub));
  }
});

async function signWithDevKey(header, payload) {
  const key = await jose.importJWK(DEV_KEY, "EdDSA");
  return new jose.SignJWT(payload).setProtectedHeader({ alg: "EdDSA", kid: DEV_KEY.kid, ...header }).sign(key);
}

test("a real patgate access token never acts as a user, even where patgate's key verifies user JWTs", async () => {
  // `bare` verifies user JWTs with srv's signing key, issuer and an audience srv puts in tokens.
  const now = Math.floor(Date.now() / 1000);
  const identity = await signWithDevKey({ typ: "JWT" }, { iss: srv.url, aud: "demo_api", sub: "mallory", exp: now + 600 });
  const control = await call(`${bare.url}/api/pats`, { headers: { authorization: `Bearer ${identity}` } });
  assert.equal(control.status, 200, `a JWT typed JWT with the same key is a user: ${control.text}`);

  const pat = await createPat(srv.url, "alice");
  const ex = await form(`${srv.url}/oauth/token`, new URLSearchParams({
    client_id: "pat_client", grant_type: TE, subject_token: pat.token, subject_token_type: TT_AT,
  }).toString());
  assert.equal(ex.status, 200, ex.text);
  const at = ex.json.access_token;
  assert.equal(jose.decodeProtectedHeader(at).typ, "at+jwt");
  const cc = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials", {
    authorization: "Basic " + Buffer.from("demo_jwt_client:demo-jwt-client-secret").toString("base64"),
  });
  assert.equal(cc.status, 200, cc.text);
  const signedIntrospection = (await introspect(srv.url, pat.token, undefined, { accept: "application/token-introspection+jwt" })).text;
  for (const [what, jwt] of [["PAT-exchanged at+jwt", at], ["client_credentials at+jwt", cc.json.access_token],
    ["signed introspection response", signedIntrospection]]) {
    const r = await call(`${bare.url}/api/pats`, { headers: { authorization: `Bearer ${jwt}` } });
    assertError(r, 401, "invalid_token", what);
    const sso = await form(`${bare.url}/oauth/token`, new URLSearchParams({
      client_id: "pat_client", grant_type: TE, subject_token: jwt,
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt", name: "x", scope: "demo_api:read", expires_in_days: "1",
    }).toString());
    assertError(sso, 400, "invalid_grant", `${what} as SSO subject token`);
  }
  for (const typ of ["at+jwt", "application/AT+JWT", "token-introspection+jwt", "patgate-assertion+jwt"]) {
    const forged = await signWithDevKey({ typ }, { iss: srv.url, aud: "demo_api", sub: "mallory", exp: now + 600 });
    assertError(await call(`${bare.url}/api/pats`, { headers: { authorization: `Bearer ${forged}` } }), 401, "invalid_token", typ);
  }
});

// --- no signing keys, discovery, Accept ---------------------------------------------------------

test("without signing keys: exchange and JWT clients are 400s, discovery promises no JWTs", async () => {
  const now = Math.floor(Date.now() / 1000);
  const user = await signWithDevKey({ typ: "JWT" }, { iss: srv.url, aud: "demo_api", sub: "kim", exp: now + 600 });
  const made = await call(`${bare.url}/api/pats`, {
    method: "POST", headers: { authorization: `Bearer ${user}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "k", scopes: ["demo_api:read"], expires_in_days: 1 }),
  });
  assert.equal(made.status, 201, made.text);
  const ex = await form(`${bare.url}/oauth/token`, new URLSearchParams({
    client_id: "pat_client", grant_type: TE, subject_token: made.json.token, subject_token_type: TT_AT,
  }).toString());
  assertError(ex, 400, "invalid_request", "PAT -> JWT without keys");
  assert.equal(ex.headers.get("pragma"), "no-cache");
  const cc = await form(`${bare.url}/oauth/token`, "grant_type=client_credentials", {
    authorization: "Basic " + Buffer.from("demo_jwt_client:demo-jwt-client-secret").toString("base64"),
  });
  assertError(cc, 400, "invalid_request", "JWT client without keys");
  const signed = await introspect(bare.url, made.json.token, undefined, { accept: "application/token-introspection+jwt" });
  assertError(signed, 400, "invalid_request", "signed introspection without keys");
  assertError(await admin(bare.url, "POST", "/clients", { id: "j", allowed_scopes: ["demo_api:read"], token_format: "jwt" }),
    400, "invalid_request", "creating a JWT client without keys");

  const m = (await call(`${bare.url}/.well-known/oauth-authorization-server`)).json;
  for (const k of ["jwks_uri", "introspection_signing_alg_values_supported", "access_token_signing_alg_values_supported"]) {
    assert.equal(m[k], undefined, `${k} without keys`);
  }
  assert.ok(m.grant_types_supported.includes(TE), "SSO -> PAT still works");
  assertError(await call(`${bare.url}/.well-known/openid-configuration`), 404, "not_found", "no OIDC metadata");
});

test("discovery: no D1 query per GET; an admin change shows at once", async () => {
  const counters = async () => (await call(`${srv.url}/_dev/counters`)).json;
  const get = () => call(`${srv.url}/.well-known/oauth-authorization-server`);
  const first = await get();
  assert.equal(first.status, 200);
  // Count only the GETs' own D1 queries: a background refresh may land in any window, but never
  // once per GET.
  const a = await counters();
  const n = 10;
  for (let i = 0; i < n; i++) assert.deepEqual((await get()).json, first.json);
  const b = await counters();
  assert.ok(b.d1_query - a.d1_query < n, `${b.d1_query - a.d1_query} D1 queries for ${n} GETs`);
  assert.ok(b.d1_query - a.d1_query <= 2, `${b.d1_query - a.d1_query} D1 queries for ${n} GETs`);
  const made = await admin(srv.url, "POST", "/resources", { id: "disco_api", scopes: ["disco:read"] });
  assert.equal(made.status, 201, made.text);
  assert.ok((await get()).json.scopes_supported.includes("disco:read"));
});

test("Accept: q=0 is not a request for a signed introspection answer", async () => {
  const pat = await createPat(srv.url, "quinn");
  const no = await introspect(srv.url, pat.token, undefined, { accept: "application/token-introspection+jwt;q=0, application/json" });
  assert.equal(no.status, 200);
  assert.match(no.headers.get("content-type"), /^application\/json/);
  assert.equal(no.json.active, true);
  const yes = await introspect(srv.url, pat.token, undefined, { accept: "application/json;q=0.5, application/token-introspection+jwt;q=0.9" });
  assert.equal(yes.headers.get("content-type"), "application/token-introspection+jwt");
});

// --- If-Match -----------------------------------------------------------------------------------

test("admin: two operators cannot silently overwrite each other (ETag / If-Match)", async () => {
  const made = await admin(srv.url, "POST", "/resources", { id: "etag_api", scopes: ["etag:read"] });
  assert.equal(made.status, 201);
  const tag0 = made.headers.get("etag");
  assert.match(tag0, /^"[0-9a-f]{32}"$/);
  const got = await admin(srv.url, "GET", "/resources/etag_api");
  assert.equal(got.headers.get("etag"), tag0);
  // Operator A changes the scopes with the tag it read.
  const a = await admin(srv.url, "PATCH", "/resources/etag_api", { scopes: ["etag:read", "etag:write"] }, { "if-match": tag0 });
  assert.equal(a.status, 200, a.text);
  const tag1 = a.headers.get("etag");
  assert.notEqual(tag1, tag0);
  // Operator B, holding the old tag, is refused; nothing changes.
  const b = await admin(srv.url, "PATCH", "/resources/etag_api", { scopes: ["etag:read"] }, { "if-match": tag0 });
  assertError(b, 412, "precondition_failed", "stale If-Match");
  assert.equal(b.headers.get("cache-control"), "no-store");
  assert.deepEqual((await admin(srv.url, "GET", "/resources/etag_api")).json.scopes, ["etag:read", "etag:write"]);
  assertError(await admin(srv.url, "POST", "/resources/etag_api/rotate-secret", {}, { "if-match": tag0 }), 412, "precondition_failed", "stale rotate");
  assertError(await admin(srv.url, "DELETE", "/resources/etag_api", undefined, { "if-match": tag0 }), 412, "precondition_failed", "stale delete");
  assertError(await admin(srv.url, "PATCH", "/resources/etag_api", { enabled: false }, { "if-match": `W/${tag1}` }), 412, "precondition_failed", "weak tag");
  // Without If-Match a write is unconditional (documented).
  const c = await admin(srv.url, "PATCH", "/resources/etag_api", { enabled: true });
  assert.equal(c.status, 200);
  const cl = await admin(srv.url, "GET", "/clients/demo_client");
  const ctag = cl.headers.get("etag");
  assert.match(ctag, /^"[0-9a-f]{32}"$/);
  const rot = await admin(srv.url, "POST", "/clients/demo_client/rotate-secret", { grace_seconds: 3600 }, { "if-match": ctag });
  assert.equal(rot.status, 200, rot.text);
  assert.notEqual(rot.headers.get("etag"), ctag);
  assertError(await admin(srv.url, "PATCH", "/clients/demo_client", { token_lifetime: 120 }, { "if-match": ctag }), 412, "precondition_failed", "client after rotation");
  assert.equal((await admin(srv.url, "DELETE", "/resources/etag_api", undefined, { "if-match": c.headers.get("etag") })).status, 204);
});
