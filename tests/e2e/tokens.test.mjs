// The OAuth2 authorization server: token endpoint grants and errors, JWT access tokens
// verified against the published JWKS, key rotation, RFC 9701 signed introspection responses,
// token exchange, and a third-party client library driven by discovery alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as jose from "jose";
import * as oidc from "openid-client";
import {
  startServer, createPat, introspect, form, call, basic, devToken, userCall, DEMO_API,
} from "./helpers.mjs";
import { DEV_VARS, DEV_ROTATION_KEY } from "../../scripts/devserver.mjs";

const TE = "urn:ietf:params:oauth:grant-type:token-exchange";
const TT_AT = "urn:ietf:params:oauth:token-type:access_token";
const TT_JWT = "urn:ietf:params:oauth:token-type:jwt";
const DEMO_CLIENT = basic("demo_client", "demo-client-secret");
const JWT_CLIENT = basic("demo_jwt_client", "demo-jwt-client-secret");

let srv;
before(async () => { srv = await startServer("tokens", 8814); });
after(async () => { await srv?.stop(); });

const token = (params, headers = {}) => {
  const defined = Object.entries(params).filter(([, v]) => v !== undefined);
  return form(`${srv.url}/oauth/token`, new URLSearchParams(defined).toString(), headers);
};
const jwks = () => jose.createRemoteJWKSet(new URL(`${srv.url}/.well-known/jwks.json`));

test("client_credentials, reference tokens: both auth methods, scopes, introspection, revocation", async () => {
  const r = await token({ grant_type: "client_credentials" }, { authorization: DEMO_CLIENT });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.equal(r.headers.get("pragma"), "no-cache");
  assert.deepEqual(Object.keys(r.json).sort(), ["access_token", "expires_in", "scope", "token_type"]);
  assert.match(r.json.access_token, /^pga_[0-9A-Za-z]{49}$/);
  assert.equal(r.json.token_type, "Bearer");
  assert.equal(r.json.expires_in, 3600);
  assert.equal(r.json.scope, "demo_api:read demo_api:write", "default: all allowed scopes");
  const post = await token({ grant_type: "client_credentials", client_id: "demo_client",
    client_secret: "demo-client-secret", scope: "demo_api:read" });
  assert.equal(post.status, 200);
  assert.equal(post.json.scope, "demo_api:read");
  const i = await introspect(srv.url, post.json.access_token);
  assert.equal(i.json.active, true);
  assert.equal(i.json.client_id, "demo_client");
  assert.equal(i.json.sub, "demo_client");
  assert.equal(i.json.scope, "demo_api:read");
  const rv = await form(`${srv.url}/oauth/revoke`, `token=${post.json.access_token}`, { authorization: DEMO_CLIENT });
  assert.equal(rv.status, 200);
  assert.deepEqual((await introspect(srv.url, post.json.access_token)).json, { active: false });
});

test("client_credentials, JWT access tokens: RFC 9068, verified against the JWKS, introspected, revoked", async () => {
  const r = await token({ grant_type: "client_credentials", scope: "demo_api:read" }, { authorization: JWT_CLIENT });
  assert.equal(r.status, 200);
  const { payload, protectedHeader } = await jose.jwtVerify(r.json.access_token, jwks(), {
    issuer: srv.url, audience: "demo_api", typ: "at+jwt",
  });
  assert.equal(protectedHeader.alg, "EdDSA");
  assert.equal(protectedHeader.kid, "dev-ed25519-1");
  assert.equal(payload.sub, "demo_jwt_client");
  assert.equal(payload.client_id, "demo_jwt_client");
  assert.equal(payload.scope, "demo_api:read");
  assert.equal(payload.exp - payload.iat, 3600);
  assert.ok(payload.jti);
  const i = await introspect(srv.url, r.json.access_token);
  assert.equal(i.json.active, true);
  assert.equal(i.json.jti, payload.jti);
  // revocation puts the jti on a denylist until exp
  const wrong = await form(`${srv.url}/oauth/revoke`, `token=${r.json.access_token}`, { authorization: DEMO_CLIENT });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error, "unauthorized_client");
  const rv = await form(`${srv.url}/oauth/revoke`, `token=${r.json.access_token}`, { authorization: JWT_CLIENT });
  assert.equal(rv.status, 200);
  assert.deepEqual((await introspect(srv.url, r.json.access_token)).json, { active: false });
  // a tampered JWT is inactive
  const t = r.json.access_token;
  const tampered = t.slice(0, -2) + (t.endsWith("AA") ? "BB" : "AA");
  assert.deepEqual((await introspect(srv.url, tampered)).json, { active: false });
});

test("token endpoint errors are RFC 6749 section 5.2", async () => {
  const cases = [
    [{}, { authorization: DEMO_CLIENT }, 400, "invalid_request"],
    [{ grant_type: "password", username: "a", password: "b" }, { authorization: DEMO_CLIENT }, 400, "unsupported_grant_type"],
    // the grant's parameters are checked after client authentication; then the client must be allowed it
    [{ grant_type: "authorization_code", code: "x" }, { authorization: DEMO_CLIENT }, 400, "invalid_request"],
    [{ grant_type: "authorization_code", code: "x", code_verifier: "a".repeat(43) }, { authorization: DEMO_CLIENT }, 400, "unauthorized_client"],
    [{ grant_type: "client_credentials", scope: "other_api:read" }, { authorization: DEMO_CLIENT }, 400, "invalid_scope"],
    [{ grant_type: "client_credentials", scope: "nope" }, { authorization: DEMO_CLIENT }, 400, "invalid_scope"],
    [{ grant_type: "client_credentials", client_id: "pat_client" }, {}, 400, "unauthorized_client"],
    [{ grant_type: "client_credentials" }, { authorization: basic("demo_client", "wrong") }, 401, "invalid_client"],
    [{ grant_type: "client_credentials" }, { authorization: basic("nobody", "x") }, 401, "invalid_client"],
    [{ grant_type: "client_credentials" }, {}, 401, "invalid_client"],
    [{ grant_type: "client_credentials", client_id: "demo_client", client_secret: "demo-client-secret" },
      { authorization: DEMO_CLIENT }, 400, "invalid_request"],
  ];
  for (const [params, headers, status, error] of cases) {
    const r = await token(params, headers);
    assert.equal(r.status, status, JSON.stringify(params));
    assert.equal(r.json.error, error, JSON.stringify(params));
    assert.equal(r.headers.get("cache-control"), "no-store");
    if (status === 401) assert.equal(r.headers.get("www-authenticate"), 'Basic realm="patgate"');
  }
  const dup = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials&grant_type=client_credentials",
    { authorization: DEMO_CLIENT });
  assert.equal(dup.json.error, "invalid_request");
});

test("token exchange: identity-provider JWT -> PAT for a CLI (pat_client, no secret)", async () => {
  const r = await token({
    grant_type: TE, client_id: "pat_client", subject_token: devToken("frank"), subject_token_type: TT_JWT,
    name: "laptop cli", scope: "demo_api:read other_api:read", expires_in_days: "7",
  });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.access_token, /^pgp_/);
  assert.equal(r.json.issued_token_type, TT_AT);
  assert.equal(r.json.token_type, "Bearer");
  assert.equal(r.json.expires_in, 7 * 86400);
  assert.equal(r.json.scope, "demo_api:read other_api:read");
  const mine = await userCall(srv.url, "frank", "GET", "/api/pats");
  assert.equal(mine.json.pats[0].name, "laptop cli");
  assert.equal((await introspect(srv.url, r.json.access_token)).json.sub, "frank");
  const base = { grant_type: TE, client_id: "pat_client", subject_token: devToken("frank"), subject_token_type: TT_JWT,
    name: "x", scope: "demo_api:read", expires_in_days: "1" };
  const errors = [
    [{ ...base, subject_token: devToken("frank", { secret: "forged" }) }, 400, "invalid_grant"],
    [{ ...base, subject_token: devToken("frank", { now: 1000, ttl: 10 }) }, 400, "invalid_grant"],
    [{ ...base, scope: "admin:everything" }, 400, "invalid_scope"],
    [{ ...base, subject_token_type: "urn:ietf:params:oauth:token-type:saml2" }, 400, "invalid_request"],
    [{ ...base, requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }, 400, "invalid_request"],
    [{ ...base, name: undefined }, 400, "invalid_request"],
    [{ ...base, actor_token: "x", actor_token_type: TT_JWT }, 400, "invalid_request"],
    [{ ...base, client_id: undefined }, 401, "invalid_client"],
  ];
  for (const [params, status, error] of errors) {
    const e = await token(params);
    assert.equal(e.status, status, JSON.stringify(params));
    assert.equal(e.json.error, error, JSON.stringify(params));
  }
  const confidential = await token({ ...base, client_id: undefined }, { authorization: DEMO_CLIENT });
  assert.equal(confidential.json.error, "unauthorized_client");
});

test("token exchange: PAT -> short-lived, down-scoped JWT that APIs verify offline", async () => {
  const pat = await createPat(srv.url, "gina", ["demo_api:read", "demo_api:write", "other_api:read"]);
  const r = await token({
    grant_type: TE, client_id: "pat_client", subject_token: pat.token, subject_token_type: TT_AT,
    requested_token_type: TT_JWT, scope: "demo_api:read",
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.issued_token_type, TT_JWT);
  assert.ok(r.json.expires_in <= 3600);
  assert.equal(r.json.scope, "demo_api:read");
  const { payload } = await jose.jwtVerify(r.json.access_token, jwks(), { issuer: srv.url, typ: "at+jwt" });
  assert.equal(payload.sub, "gina");
  assert.deepEqual(payload.aud, ["demo_api"]);
  assert.equal(payload.scope, "demo_api:read");
  const all = await token({ grant_type: TE, client_id: "pat_client", subject_token: pat.token, subject_token_type: TT_AT });
  assert.equal(all.json.scope, "demo_api:read demo_api:write other_api:read", "default: the PAT's scopes");
  const beyond = await createPat(srv.url, "gina", ["demo_api:read"]);
  const e1 = await token({ grant_type: TE, client_id: "pat_client", subject_token: beyond.token,
    subject_token_type: TT_AT, scope: "demo_api:write" });
  assert.equal(e1.json.error, "invalid_scope");
  const e2 = await token({ grant_type: TE, client_id: "pat_client", subject_token: pat.token,
    subject_token_type: TT_JWT });
  assert.equal(e2.json.error, "invalid_request");
  await userCall(srv.url, "gina", "DELETE", `/api/pats/${beyond.id}`);
  const e3 = await token({ grant_type: TE, client_id: "pat_client", subject_token: beyond.token, subject_token_type: TT_AT });
  assert.equal(e3.status, 400);
  assert.equal(e3.json.error, "invalid_grant");
});

test("RFC 9701: signed introspection responses", async () => {
  const pat = await createPat(srv.url, "hana", ["demo_api:read"]);
  const r = await introspect(srv.url, pat.token, DEMO_API, { accept: "application/token-introspection+jwt" });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/token-introspection+jwt");
  const { payload, protectedHeader } = await jose.jwtVerify(r.text, jwks(), {
    issuer: srv.url, audience: "demo_api", typ: "token-introspection+jwt",
  });
  assert.equal(protectedHeader.kid, "dev-ed25519-1");
  assert.equal(payload.token_introspection.active, true);
  assert.equal(payload.token_introspection.sub, "hana");
  const inactive = await introspect(srv.url, "garbage", DEMO_API, { accept: "application/token-introspection+jwt" });
  const v = await jose.jwtVerify(inactive.text, jwks(), { issuer: srv.url, audience: "demo_api" });
  assert.deepEqual(v.payload.token_introspection, { active: false });
});

test("RFC 9701: the signed answer carries exactly the JSON answer's claims (PAT, JWT, garbage)", async () => {
  const pat = await createPat(srv.url, "hana2", ["demo_api:read"]);
  const jwt = (await token({ grant_type: "client_credentials", scope: "demo_api:read" }, { authorization: JWT_CLIENT })).json.access_token;
  assert.equal(jwt.split(".").length, 3);
  for (const [what, t] of [["pat", pat.token], ["jwt", jwt], ["garbage", "garbage"]]) {
    const plain = await introspect(srv.url, t);
    const signed = await introspect(srv.url, t, DEMO_API, { accept: "application/token-introspection+jwt" });
    const { payload } = await jose.jwtVerify(signed.text, jwks(), { issuer: srv.url, audience: "demo_api" });
    assert.deepEqual(payload.token_introspection, plain.json, what);
    assert.equal(payload.token_introspection.active, what !== "garbage", what);
  }
});

test("OAuth errors keep their order: form and grant type first, parameters only after client authentication", async () => {
  const intro = (body, headers) => form(`${srv.url}/oauth/introspect`, body, headers);
  assert.equal((await intro("", {})).status, 401, "no credentials, no token");
  assert.equal((await intro("", { authorization: DEMO_API })).json.error_description, "missing parameter token");
  assert.equal((await intro("token=a&token=b", {})).json.error, "invalid_request", "a repeated parameter before anything");
  const unsupported = await token({ grant_type: "password", username: "a", password: "b" });
  assert.equal(unsupported.status, 400);
  assert.equal(unsupported.json.error, "unsupported_grant_type");
  const anon = await token({ grant_type: TE, actor_token: "x" });
  assert.equal(anon.status, 401);
  const known = await token({ grant_type: TE, client_id: "pat_client", actor_token: "x" });
  assert.equal(known.json.error_description, "missing parameter subject_token");
  const both = await token({ grant_type: "client_credentials", client_id: "demo_client", client_secret: "demo-client-secret" },
    { authorization: DEMO_CLIENT });
  assert.equal(both.json.error, "invalid_request");
});

test("discovery lists what is supported, and a third-party client (openid-client) uses it alone", async () => {
  const meta = (await call(`${srv.url}/.well-known/oauth-authorization-server`)).json;
  assert.equal(meta.token_endpoint, `${srv.url}/oauth/token`);
  assert.equal(meta.jwks_uri, `${srv.url}/.well-known/jwks.json`);
  assert.deepEqual(meta.grant_types_supported, ["client_credentials", "authorization_code", "refresh_token", TE]);
  assert.deepEqual(meta.response_types_supported, ["code"]);
  assert.deepEqual(meta.introspection_signing_alg_values_supported, ["EdDSA"]);

  // RFC 8414 metadata ("oauth2"): patgate is no OpenID Provider and serves no openid-configuration.
  const opts = { execute: [oidc.allowInsecureRequests], algorithm: "oauth2" };
  const cfg = await oidc.discovery(new URL(srv.url), "demo_client", "demo-client-secret", undefined, opts);
  const tok = await oidc.clientCredentialsGrant(cfg, { scope: "demo_api:read" });
  assert.match(tok.access_token, /^pga_/);
  assert.equal(tok.token_type, "bearer");
  const api = await oidc.discovery(new URL(srv.url), "demo_api", "demo-api-secret", undefined, opts);
  const info = await oidc.tokenIntrospection(api, tok.access_token);
  assert.equal(info.active, true);
  assert.equal(info.client_id, "demo_client");
  await oidc.tokenRevocation(cfg, tok.access_token);
  assert.equal((await oidc.tokenIntrospection(api, tok.access_token)).active, false);
});

test("admin API: clients and API resources, secret rotation with grace, disabling", async () => {
  const admin = (method, path, body) => call(`${srv.url}/admin${path}`, {
    method,
    headers: { authorization: "Bearer dev-admin-token", ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal((await call(`${srv.url}/admin/clients`)).status, 401);
  const wrong = await call(`${srv.url}/admin/clients`, { headers: { authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error, "invalid_token");

  const res = await admin("POST", "/resources", { id: "billing", scopes: ["billing:read", "billing:write"] });
  assert.equal(res.status, 201);
  assert.ok(res.json.secret.length >= 43);
  assert.equal((await admin("POST", "/resources", { id: "billing", scopes: [] })).status, 409);
  assert.equal((await admin("POST", "/resources", { id: "dup", scopes: ["demo_api:read"] })).status, 409);
  assert.equal((await admin("POST", "/resources", { id: "bad id!", scopes: [] })).status, 400);

  const cl = await admin("POST", "/clients", { id: "billing_job", allowed_scopes: ["billing:read"], token_lifetime: 600 });
  assert.equal(cl.status, 201);
  const secret = cl.json.client_secret;
  assert.equal((await admin("POST", "/clients", { id: "x", allowed_scopes: ["no:such"] })).json.error, "invalid_scope");
  assert.equal((await admin("GET", "/clients/billing_job")).json.client_secret, undefined, "shown once");
  const listed = await admin("GET", "/clients");
  assert.ok(listed.json.clients.some((c) => c.id === "billing_job"));

  const billingApi = basic("billing", res.json.secret);
  const t = await token({ grant_type: "client_credentials" }, { authorization: basic("billing_job", secret) });
  assert.equal(t.status, 200);
  assert.equal(t.json.expires_in, 600);
  assert.equal((await introspect(srv.url, t.json.access_token, billingApi)).json.scope, "billing:read");

  // rotate the client secret with a grace period: both work; then with no grace: only the new one
  const rot = await admin("POST", "/clients/billing_job/rotate-secret", { grace_seconds: 300 });
  assert.equal(rot.status, 200);
  assert.ok(rot.json.previous_secret_valid_until > Date.now() / 1000);
  for (const s of [secret, rot.json.client_secret]) {
    assert.equal((await token({ grant_type: "client_credentials" }, { authorization: basic("billing_job", s) })).status, 200);
  }
  const rot2 = await admin("POST", "/clients/billing_job/rotate-secret", { grace_seconds: 0 });
  assert.equal((await token({ grant_type: "client_credentials" }, { authorization: basic("billing_job", rot.json.client_secret) })).status, 401);
  const current = basic("billing_job", rot2.json.client_secret);
  assert.equal((await token({ grant_type: "client_credentials" }, { authorization: current })).status, 200);

  // resource secret rotation
  const rrot = await admin("POST", "/resources/billing/rotate-secret", { grace_seconds: 0 });
  assert.equal((await introspect(srv.url, t.json.access_token, billingApi)).status, 401);
  assert.equal((await introspect(srv.url, t.json.access_token, basic("billing", rrot.json.secret))).json.active, true);

  // disabling a client: no new tokens at once, its tokens inactive (this isolate: at once)
  const off = await admin("PATCH", "/clients/billing_job", { enabled: false });
  assert.equal(off.status, 200);
  assert.equal(off.json.enabled, false);
  assert.equal((await token({ grant_type: "client_credentials" }, { authorization: current })).json.error, "invalid_client");
  assert.deepEqual((await introspect(srv.url, t.json.access_token, basic("billing", rrot.json.secret))).json, { active: false });
  assert.equal((await admin("PATCH", "/clients/billing_job", { token_lifetime: 5 })).status, 400);
  assert.equal((await admin("PATCH", "/clients/billing_job", { nonsense: 1 })).status, 400);

  // disabling an API resource: it can no longer introspect
  await admin("PATCH", "/resources/billing", { enabled: false });
  assert.equal((await introspect(srv.url, t.json.access_token, basic("billing", rrot.json.secret))).status, 401);

  assert.equal((await admin("DELETE", "/clients/billing_job")).status, 204);
  assert.equal((await admin("GET", "/clients/billing_job")).status, 404);
  assert.equal((await admin("DELETE", "/resources/billing")).status, 204);
  assert.equal((await admin("DELETE", "/resources/billing")).status, 404);
  assert.equal((await admin("PUT", "/clients")).status, 405);
});

test("signing key rotation without downtime; admin API off without ADMIN_TOKEN", async () => {
  const before = await token({ grant_type: "client_credentials" }, { authorization: JWT_CLIENT });
  const oldKey = JSON.parse(DEV_VARS.JWT_SIGNING_KEYS)[0];
  await srv.restart({ JWT_SIGNING_KEYS: JSON.stringify([DEV_ROTATION_KEY, oldKey]), ADMIN_TOKEN: "" });
  const published = (await call(`${srv.url}/.well-known/jwks.json`)).json;
  assert.deepEqual(published.keys.map((k) => k.kid), ["dev-es256-1", "dev-ed25519-1"]);
  assert.ok(published.keys.every((k) => k.d === undefined));
  // the old token still verifies (offline and by introspection)
  await jose.jwtVerify(before.json.access_token, jwks(), { issuer: srv.url });
  assert.equal((await introspect(srv.url, before.json.access_token)).json.active, true);
  // new tokens are signed by the new key
  const after = await token({ grant_type: "client_credentials" }, { authorization: JWT_CLIENT });
  const { protectedHeader } = await jose.jwtVerify(after.json.access_token, jwks(), { issuer: srv.url });
  assert.equal(protectedHeader.kid, "dev-es256-1");
  assert.equal(protectedHeader.alg, "ES256");
  assert.equal((await call(`${srv.url}/admin/clients`, { headers: { authorization: "Bearer dev-admin-token" } })).status, 404);
});
