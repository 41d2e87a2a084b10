// The authorization code flow end to end with a plain HTTP client (Node's fetch, no browser, no
// SDK): /authorize with PKCE and consent as a signed-in dev user, the code exchange, refresh
// rotation, reuse detection, revocation on the token page, and the gate in front of a real local
// upstream refusing what it must. The issuer is http://127.0.0.1:<port>; the gate answers on
// http://localhost:<port>.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { startServer, call, introspect, ADMIN, assertError, form, eventually } from "./helpers.mjs";
import {
  pkce, signIn, authorizeQuery, authorize, consentForm, answer, redirectParams, approve, exchange, refresh, insertClient, hidden,
} from "./authflow.mjs";
import { queryLocalD1 } from "../../scripts/devserver.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 9071 + OFFSET;
const CLIENT = "e2e_app";
const REDIRECT = "http://127.0.0.1:4501/callback";

let srv, gate, upstream, resource, alice;

before(async () => {
  srv = await startServer("authorize", 8861);
  gate = srv.url.replace("127.0.0.1", "localhost");
  resource = `${gate}/gw/mcp/`;
  upstream = http.createServer((req, res) => {
    req.resume();
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ok: true, sub: req.headers["x-patgate-subject"], scope: req.headers["x-patgate-scope"] }));
  });
  upstream.listen(UPSTREAM_PORT, "127.0.0.1");
  await once(upstream, "listening");
  await insertClient(srv, CLIENT, { redirectUris: ["http://127.0.0.1/callback", "https://app.example/cb"], name: "E2E <App>" });
  const route = await call(`${srv.url}/admin/routes/mcp`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      path_prefix: "/gw/mcp/", upstream: `http://127.0.0.1:${UPSTREAM_PORT}`, resource: "demo_api",
      rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }, { methods: ["POST"], scopes: ["demo_api:read", "demo_api:write"] }],
    }),
  });
  assert.equal(route.status, 201, route.text);
  const other = await call(`${srv.url}/admin/routes/other`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ path_prefix: "/gw/other/", upstream: `http://127.0.0.1:${UPSTREAM_PORT}`, resource: "demo_api", rules: [{ methods: ["*"], scopes: ["demo_api:read"] }] }),
  });
  assert.equal(other.status, 201, other.text);
  alice = await signIn(srv.url, "alice");
});

after(async () => {
  upstream?.close();
  await srv?.stop();
});

/** A fresh client-side state for one flow. */
function flow(over = {}) {
  return { clientId: CLIENT, redirectUri: REDIRECT, resource, scope: "demo_api:read", ...pkce(), ...over };
}

const through = (tok, path = "/gw/mcp/tool", init = {}) =>
  call(`${gate}${path}`, { ...init, headers: { authorization: `Bearer ${tok}`, ...(init.headers ?? {}) } });

test("code flow: consent, exchange, a call through the gate, refresh, introspection", async () => {
  const p = flow({ state: "s t&ate=1" });
  const r = await authorize(srv.url, alice, authorizeQuery(p));
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.match(r.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  assert.equal(r.headers.get("x-frame-options"), "DENY");
  assert.equal(r.headers.get("cache-control"), "no-store");
  // the page names the app (escaped), where it sends the code (with the local warning), the API
  // and each scope with its description
  assert.ok(r.text.includes("E2E &lt;App&gt;") && !r.text.includes("E2E <App>"), "client name escaped");
  assert.match(r.text, /127\.0\.0\.1:4501/);
  assert.match(r.text, /this device/i);
  assert.ok(r.text.includes(resource), "the resource");
  assert.match(r.text, /demo_api:read/);
  assert.match(r.text, /Read the demo API/);
  const a = await answer(srv.url, alice, consentForm(r), "approve");
  assert.equal(a.status, 303, a.text);
  const { url, params } = redirectParams(a);
  assert.equal(`${url.origin}${url.pathname}`, REDIRECT, "the registered URI, the request's port");
  assert.match(params.code, /^pgc_[0-9A-Za-z]{49}$/);
  assert.equal(params.state, "s t&ate=1", "state unchanged");
  assert.equal(params.iss, srv.url, "iss (RFC 9207)");

  const t = await exchange(srv.url, p, params.code);
  assert.equal(t.status, 200, t.text);
  assert.match(t.json.access_token, /^pga_[0-9A-Za-z]{49}$/);
  assert.match(t.json.refresh_token, /^pgr_[0-9A-Za-z]{49}$/);
  assert.equal(t.json.token_type, "Bearer");
  assert.equal(t.json.scope, "demo_api:read");
  assert.ok(t.json.expires_in > 0);
  assert.equal(t.headers.get("cache-control"), "no-store");

  const g = await through(t.json.access_token);
  assert.equal(g.status, 200, g.text);
  assert.equal(g.json.sub, "alice");
  // introspection names the audience
  const i = await introspect(srv.url, t.json.access_token);
  assert.equal(i.json.active, true, i.text);
  assert.equal(i.json.aud, resource);
  assert.equal(i.json.sub, "alice");
  assert.equal(i.json.client_id, CLIENT);

  // refresh: a new pair, the old access token keeps working until it expires
  const r2 = await refresh(srv.url, CLIENT, t.json.refresh_token);
  assert.equal(r2.status, 200, r2.text);
  assert.notEqual(r2.json.refresh_token, t.json.refresh_token, "rotated");
  assert.notEqual(r2.json.access_token, t.json.access_token);
  assert.equal((await through(r2.json.access_token)).status, 200);
  const r3 = await refresh(srv.url, CLIENT, r2.json.refresh_token, { scope: "demo_api:read" });
  assert.equal(r3.status, 200, r3.text);
  assertError(await refresh(srv.url, CLIENT, r3.json.refresh_token, { scope: "demo_api:write" }), 400, "invalid_scope", "more than granted");
});

test("the gate refuses a token for another resource; 401 and 403 name what is needed", async () => {
  const p = flow();
  const { params } = await approve(srv.url, alice, authorizeQuery(p));
  const t = (await exchange(srv.url, p, params.code)).json;
  // another route of the same API resource: not this token's audience
  const other = await through(t.access_token, "/gw/other/x");
  assert.equal(other.status, 401, other.text);
  assert.match(other.headers.get("www-authenticate"), /error="invalid_token"/);
  // no token: resource_metadata and scope
  const none = await call(`${gate}/gw/mcp/tool`);
  assert.equal(none.status, 401);
  const challenge = none.headers.get("www-authenticate");
  assert.match(challenge, new RegExp(`resource_metadata="${gate}/.well-known/oauth-protected-resource/gw/mcp"`));
  assert.match(challenge, /scope="demo_api:read"/);
  // POST needs read and write: 403 names both (step-up)
  const post = await through(t.access_token, "/gw/mcp/tool", { method: "POST", body: "{}" });
  assert.equal(post.status, 403, post.text);
  assert.match(post.headers.get("www-authenticate"), /error="insufficient_scope"/);
  assert.match(post.headers.get("www-authenticate"), /scope="demo_api:read demo_api:write"/);
  // RFC 9728 metadata lists the route's scopes and names patgate
  const meta = await call(`${gate}/.well-known/oauth-protected-resource/gw/mcp`);
  assert.equal(meta.status, 200);
  assert.equal(meta.json.resource, resource);
  assert.deepEqual(meta.json.authorization_servers, [srv.url]);
  assert.deepEqual([...meta.json.scopes_supported].sort(), ["demo_api:read", "demo_api:write"]);
  // step-up: a new consent for both scopes, the new token passes
  const p2 = flow({ scope: "demo_api:read demo_api:write" });
  const r = await authorize(srv.url, alice, authorizeQuery(p2));
  assert.equal(r.status, 200, "new scopes ask again");
  const { params: q2 } = redirectParams(await answer(srv.url, alice, consentForm(r), "approve"));
  const t2 = (await exchange(srv.url, p2, q2.code)).json;
  assert.equal(t2.scope, "demo_api:read demo_api:write");
  assert.equal((await through(t2.access_token, "/gw/mcp/tool", { method: "POST", body: "{}" })).status, 200);
});

test("a replayed authorization code fails and revokes what its first use issued", async () => {
  const p = flow();
  const { params } = await approve(srv.url, alice, authorizeQuery(p));
  const first = await exchange(srv.url, p, params.code);
  assert.equal(first.status, 200, first.text);
  assert.equal((await through(first.json.access_token)).status, 200);
  assertError(await exchange(srv.url, p, params.code), 400, "invalid_grant", "replay");
  const after = await through(first.json.access_token);
  assert.equal(after.status, 401, "the first exchange's access token died at once");
  assertError(await refresh(srv.url, CLIENT, first.json.refresh_token), 400, "invalid_grant", "and its refresh token");
});

test("PKCE mismatch, another redirect_uri, another resource, another client: the code is burnt", async () => {
  for (const [what, over, code] of [
    ["wrong verifier", { code_verifier: pkce().verifier }, "invalid_grant"],
    ["another redirect_uri", { redirect_uri: "http://127.0.0.1:4502/callback" }, "invalid_grant"],
    ["another resource", { resource: `${gate}/gw/other/` }, "invalid_target"],
    ["no verifier", { code_verifier: undefined }, "invalid_request"],
  ]) {
    const p = flow();
    const { params } = await approve(srv.url, alice, authorizeQuery(p));
    assertError(await exchange(srv.url, p, params.code, over), 400, code, what);
    if (code !== "invalid_request") {
      // the code was consumed by the failed attempt: the right verifier no longer helps
      assertError(await exchange(srv.url, p, params.code), 400, "invalid_grant", `${what}, then right`);
    }
  }
  const p = flow();
  const { params } = await approve(srv.url, alice, authorizeQuery(p));
  assertError(await exchange(srv.url, p, params.code, { client_id: "nobody" }), 401, "invalid_client", "unknown client");
  assertError(await exchange(srv.url, p, "pgc_garbage"), 400, "invalid_grant", "garbage code");
});

test("a replayed refresh token revokes the grant: access and refresh tokens die at once", async () => {
  const p = flow();
  const { params } = await approve(srv.url, alice, authorizeQuery(p));
  const t1 = (await exchange(srv.url, p, params.code)).json;
  const t2 = (await refresh(srv.url, CLIENT, t1.refresh_token)).json;
  assert.ok(t2.refresh_token);
  // the lost-answer retry window: the rotated-away token once more within 60 s is a retry
  const retry = await refresh(srv.url, CLIENT, t1.refresh_token);
  assert.equal(retry.status, 200, `a retry of a lost answer: ${retry.text}`);
  // t2's refresh token was never used and has been retired by the retry: presenting it is a reuse
  assertError(await refresh(srv.url, CLIENT, t2.refresh_token), 400, "invalid_grant", "reuse");
  for (const at of [t1.access_token, t2.access_token, retry.json.access_token]) {
    assert.equal((await through(at)).status, 401, "every access token of the grant");
  }
  assertError(await refresh(srv.url, CLIENT, retry.json.refresh_token), 400, "invalid_grant", "the current one too");
});

test("authorization errors: a page before the client and redirect are known, a redirect with state and iss after", async () => {
  const p = flow();
  // page errors: never a Location
  for (const [what, over] of [
    ["unknown client", { client_id: "nobody" }],
    ["missing client", { client_id: undefined }],
    ["prefix of a registered URI", { redirect_uri: "https://app.example/c" }],
    ["longer than a registered URI", { redirect_uri: "https://app.example/cb/x" }],
    ["case", { redirect_uri: "https://APP.example/cb" }],
    ["userinfo", { redirect_uri: "https://u@app.example/cb" }],
    ["fragment", { redirect_uri: "https://app.example/cb#x" }],
    ["another port on a non-loopback host", { redirect_uri: "https://app.example:444/cb" }],
    ["http to a non-loopback host", { redirect_uri: "http://app.example/cb" }],
    ["localhost is not a loopback IP", { redirect_uri: "http://localhost:4501/callback" }],
  ]) {
    const r = await authorize(srv.url, alice, authorizeQuery(p, over));
    assert.equal(r.status, 400, `${what}: ${r.status}`);
    assert.equal(r.headers.get("location"), null, what);
    assert.match(r.headers.get("content-type"), /^text\/html/, what);
  }
  // redirect errors: state and iss always
  for (const [what, over, error] of [
    ["resource of no API", { resource: "https://elsewhere.example/api" }, "invalid_target"],
    ["missing resource", { resource: undefined }, "invalid_target"],
    ["plain PKCE", { code_challenge_method: "plain" }, "invalid_request"],
    ["no PKCE", { code_challenge: undefined, code_challenge_method: undefined }, "invalid_request"],
    ["token response type", { response_type: "token" }, "unsupported_response_type"],
    ["a scope of another API", { scope: "other_api:read" }, "invalid_scope"],
  ]) {
    const r = await authorize(srv.url, alice, authorizeQuery(p, { state: "xyz", ...over }));
    assert.equal(r.status, 302, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
    const { url, params } = redirectParams(r);
    assert.equal(`${url.origin}${url.pathname}`, REDIRECT, what);
    assert.equal(params.error, error, what);
    assert.equal(params.state, "xyz", what);
    assert.equal(params.iss, srv.url, what);
    assert.equal(params.code, undefined, what);
  }
});

test("consent: deny, CSRF, a cross-site POST, another user's handle, one use only", async () => {
  // a user with no remembered approval (alice approved read and write above)
  const ivan = await signIn(srv.url, "ivan");
  const p = flow({ scope: "demo_api:write" });
  const r = await authorize(srv.url, ivan, authorizeQuery(p, { state: "d1" }));
  const f = consentForm(r);
  // no CSRF token, a wrong one, a cross-site POST: 403 and nothing happens
  for (const [what, fields, headers] of [
    ["no csrf", { ...f, csrf: "" }, {}],
    ["forged csrf", { ...f, csrf: "x".repeat(40) }, {}],
    ["cross-site", f, { "sec-fetch-site": "cross-site", origin: "https://evil.example" }],
    ["foreign origin", f, { "sec-fetch-site": "", origin: "https://evil.example" }],
  ]) {
    const a = await answer(srv.url, ivan, fields, "approve", headers);
    assert.equal(a.status, 403, `${what}: ${a.status}`);
    assert.equal(a.headers.get("location"), null, what);
  }
  // another user cannot answer ivan's request, even with a valid CSRF token of their own
  const bob = await signIn(srv.url, "bob");
  const bobsPage = await authorize(srv.url, bob, authorizeQuery(flow()));
  const bobsCsrf = consentForm(bobsPage).csrf;
  const stolen = await answer(srv.url, bob, { handle: f.handle, csrf: bobsCsrf }, "approve");
  assert.equal(stolen.status, 400, stolen.text.slice(0, 200));
  assert.equal(stolen.headers.get("location"), null);
  // ivan denies: access_denied with state and iss; the handle is then spent
  const d = await answer(srv.url, ivan, f, "deny");
  assert.equal(d.status, 303);
  const { params } = redirectParams(d);
  assert.deepEqual([params.error, params.state, params.iss], ["access_denied", "d1", srv.url]);
  const again = await answer(srv.url, ivan, f, "approve");
  assert.equal(again.status, 400, "a handle works once");
  assert.equal(again.headers.get("location"), null);
});

test("remembered approval: the exact client, redirect URI and resource with covered scopes skip consent", async () => {
  const carol = await signIn(srv.url, "carol");
  const p = flow({ scope: "demo_api:read" });
  const first = await authorize(srv.url, carol, authorizeQuery(p));
  assert.equal(first.status, 200, "asked the first time");
  await answer(srv.url, carol, consentForm(first), "approve");
  // the same four (another loopback port is the same redirect key): a code at once
  const again = await authorize(srv.url, carol, authorizeQuery(flow({ redirectUri: "http://127.0.0.1:4999/callback" })));
  assert.equal(again.status, 302, again.text.slice(0, 200));
  assert.match(redirectParams(again).params.code, /^pgc_/);
  // anything new asks again: a new scope, another resource, another redirect URI
  for (const over of [{ scope: "demo_api:read demo_api:write" }, { resource: `${gate}/gw/other/` }, { redirectUri: "https://app.example/cb" }]) {
    const r = await authorize(srv.url, carol, authorizeQuery(flow(over)));
    assert.equal(r.status, 200, JSON.stringify(over));
  }
});

test("not signed in: the dev sign-in, then back to the same authorization request", async () => {
  const p = flow();
  const query = authorizeQuery(p, { state: "back" });
  const r = await call(`${srv.url}/authorize?${query}`);
  assert.equal(r.status, 303);
  const to = new URL(r.headers.get("location"), srv.url);
  assert.equal(to.pathname, "/tokens/sign-in");
  const page = await call(to.href);
  assert.equal(page.status, 200);
  const pre = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const s = await form(`${srv.url}${to.pathname}${to.search}`, new URLSearchParams({ csrf: hidden(page.text, "csrf"), user: "dave" }).toString(), { cookie: pre, "sec-fetch-site": "same-origin" });
  assert.equal(s.status, 303, s.text);
  assert.equal(s.headers.get("location"), `/authorize?${query}`);
  // an open redirect through the sign-in is refused: only /authorize? paths come back
  for (const bad of ["https://evil.example/", "//evil.example/authorize?x", "/tokens/../authorize?x", "/authorize"]) {
    const page2 = await call(`${srv.url}/tokens/sign-in?return_to=${encodeURIComponent(bad)}`);
    const pre2 = page2.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const s2 = await form(`${srv.url}/tokens/sign-in?return_to=${encodeURIComponent(bad)}`, new URLSearchParams({ csrf: hidden(page2.text, "csrf"), user: "dave" }).toString(), { cookie: pre2, "sec-fetch-site": "same-origin" });
    assert.equal(s2.headers.get("location"), "/tokens", bad);
  }
});

test("authorized applications: listed on the token page; Revoke ends access and refresh at once", async () => {
  const erin = await signIn(srv.url, "erin");
  const p = flow();
  const { params } = await approve(srv.url, erin, authorizeQuery(p));
  const t = (await exchange(srv.url, p, params.code)).json;
  assert.equal((await through(t.access_token)).status, 200);
  const list = await call(`${srv.url}/tokens/apps`, { headers: { cookie: erin } });
  assert.equal(list.status, 200);
  assert.ok(list.text.includes("E2E &lt;App&gt;"));
  assert.ok(list.text.includes(resource));
  const id = /\/tokens\/apps\/([0-9A-Za-z]+)\/revoke/.exec(list.text)?.[1];
  assert.ok(id, "a Revoke link");
  // another user cannot see or revoke it
  const frank = await signIn(srv.url, "frank");
  assert.equal((await call(`${srv.url}/tokens/apps/${id}/revoke`, { headers: { cookie: frank } })).status, 404);
  const confirm = await call(`${srv.url}/tokens/apps/${id}/revoke`, { headers: { cookie: erin } });
  assert.equal(confirm.status, 200);
  const done = await form(`${srv.url}/tokens/apps/${id}/revoke`, new URLSearchParams({ csrf: hidden(confirm.text, "csrf") }).toString(), { cookie: erin, "sec-fetch-site": "same-origin" });
  assert.equal(done.status, 303, done.text);
  assert.equal((await through(t.access_token)).status, 401, "the next call through the gate is refused");
  assertError(await refresh(srv.url, CLIENT, t.refresh_token), 400, "invalid_grant", "refresh after Revoke");
  // the approval is forgotten: the next authorization asks again
  assert.equal((await authorize(srv.url, erin, authorizeQuery(flow()))).status, 200);
  const after = await call(`${srv.url}/tokens/apps`, { headers: { cookie: erin } });
  assert.ok(!after.text.includes(`/tokens/apps/${id}/revoke`));
});

test("RFC 7009: revoking a refresh token ends its grant; admin API lists and revokes grants", async () => {
  const p = flow();
  const { params } = await approve(srv.url, alice, authorizeQuery(p));
  const t = (await exchange(srv.url, p, params.code)).json;
  const rv = await form(`${srv.url}/oauth/revoke`, new URLSearchParams({ token: t.refresh_token, client_id: CLIENT }).toString());
  assert.equal(rv.status, 200, rv.text);
  assert.equal((await through(t.access_token)).status, 401);
  assertError(await refresh(srv.url, CLIENT, t.refresh_token), 400, "invalid_grant");

  const p2 = flow();
  const { params: q2 } = await approve(srv.url, alice, authorizeQuery(p2));
  const t2 = (await exchange(srv.url, p2, q2.code)).json;
  const list = await call(`${srv.url}/admin/grants?subject=alice&client_id=${CLIENT}`, { headers: { authorization: ADMIN } });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.json.grants.length >= 1);
  const g = list.json.grants[0];
  assert.equal(g.client_id, CLIENT);
  assert.equal(g.resource, resource);
  const del = await call(`${srv.url}/admin/grants/${g.id}`, { method: "DELETE", headers: { authorization: ADMIN } });
  assert.equal(del.status, 204, del.text);
  assert.equal((await through(t2.access_token)).status, 401);
});

test("discovery: RFC 8414 metadata of the authorization server", async () => {
  const m = (await call(`${srv.url}/.well-known/oauth-authorization-server`)).json;
  assert.equal(m.issuer, srv.url);
  assert.equal(m.authorization_endpoint, `${srv.url}/authorize`);
  assert.deepEqual(m.response_types_supported, ["code"]);
  assert.deepEqual(m.code_challenge_methods_supported, ["S256"]);
  assert.ok(m.grant_types_supported.includes("authorization_code"));
  assert.ok(m.grant_types_supported.includes("refresh_token"));
  assert.ok(m.token_endpoint_auth_methods_supported.includes("none"));
  assert.equal(m.authorization_response_iss_parameter_supported, true);
});

test("RFC 8707: a registered API resource as the target; its token is active for it alone", async () => {
  const admin = (method, path, body) =>
    call(`${srv.url}${path}`, { method, headers: { authorization: ADMIN, "content-type": "application/json" }, body: body && JSON.stringify(body) });
  const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
  const ledgerUri = "https://ledger.example/api";
  const auditUri = "https://audit.example/api";
  const ledger = await admin("POST", "/admin/resources", { id: "ledger", scopes: ["ledger:read"], resource_uri: ledgerUri });
  assert.equal(ledger.status, 201, ledger.text);
  assert.equal(ledger.json.resource_uri, ledgerUri);
  const audit = await admin("POST", "/admin/resources", { id: "audit", scopes: ["audit:read"], resource_uri: auditUri });
  assert.equal(audit.status, 201, audit.text);
  // hostile registrations: not an https URL written one way, or another API's identifier
  for (const bad of ["http://ledger.example/api", "https://LEDGER.example/x", "https://ledger.example/x?y=1", "https://ledger.example/x#f", "ledger"]) {
    const r = await admin("POST", "/admin/resources", { id: "bad", scopes: [], resource_uri: bad });
    assert.equal(r.status, 400, `${bad}: ${r.text}`);
  }
  assert.equal((await admin("POST", "/admin/resources", { id: "twin", scopes: [], resource_uri: ledgerUri })).status, 409);
  assert.equal((await admin("PATCH", "/admin/resources/audit", { resource_uri: ledgerUri })).status, 409);
  const allowed = await admin("PATCH", `/admin/clients/${CLIENT}`, { allowed_scopes: ["demo_api:read", "demo_api:write", "ledger:read", "audit:read"] });
  assert.equal(allowed.status, 200, allowed.text);

  const gina = await signIn(srv.url, "gina");
  const p = flow({ resource: ledgerUri, scope: "ledger:read" });
  const r = await authorize(srv.url, gina, authorizeQuery(p));
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.ok(r.text.includes(ledgerUri), "the consent page names the API");
  const { params } = redirectParams(await answer(srv.url, gina, consentForm(r), "approve"));
  const t = await exchange(srv.url, p, params.code, { resource: ledgerUri });
  assert.equal(t.status, 200, t.text);
  assert.equal(t.json.scope, "ledger:read");

  const asLedger = basic("ledger", ledger.json.secret);
  const asAudit = basic("audit", audit.json.secret);
  const i = await introspect(srv.url, t.json.access_token, asLedger);
  assert.equal(i.status, 200, i.text);
  assert.deepEqual([i.json.active, i.json.aud, i.json.scope, i.json.sub, i.json.client_id], [true, ledgerUri, "ledger:read", "gina", CLIENT]);
  // hostile: the ledger's token shown to another API resource, to the gate's, through the gate
  assert.deepEqual((await introspect(srv.url, t.json.access_token, asAudit)).json, { active: false });
  assert.deepEqual((await introspect(srv.url, t.json.access_token)).json, { active: false });
  assert.equal((await through(t.json.access_token)).status, 401);
  // and a token for the gate route is not the ledger's
  const pg = flow();
  const { params: qg } = await approve(srv.url, gina, authorizeQuery(pg));
  const tg = (await exchange(srv.url, pg, qg.code)).json;
  assert.equal((await introspect(srv.url, tg.access_token)).json.active, true);
  assert.deepEqual((await introspect(srv.url, tg.access_token, asLedger)).json, { active: false });

  // refresh keeps the audience; naming the other API is invalid_target
  assertError(await refresh(srv.url, CLIENT, t.json.refresh_token, { resource: auditUri }), 400, "invalid_target", "another API on refresh");
  const r2 = await refresh(srv.url, CLIENT, t.json.refresh_token, { resource: ledgerUri });
  assert.equal(r2.status, 200, r2.text);
  assert.equal((await introspect(srv.url, r2.json.access_token, asLedger)).json.aud, ledgerUri);
  assert.deepEqual((await introspect(srv.url, r2.json.access_token, asAudit)).json, { active: false });

  // near misses of the registered URI and a disabled API: invalid_target, with state and iss
  const ask = async (resourceUri) => {
    const a = await authorize(srv.url, gina, authorizeQuery(flow({ resource: resourceUri, scope: "ledger:read" }), { state: "t1" }));
    assert.equal(a.status, 302, `${resourceUri}: ${a.status} ${a.text.slice(0, 200)}`);
    const { params: q } = redirectParams(a);
    assert.deepEqual([q.error, q.state, q.iss], ["invalid_target", "t1", srv.url], resourceUri);
  };
  for (const near of [`${ledgerUri}/`, "https://ledger.example/ap", "https://ledger.example:8443/api", "http://ledger.example/api"]) await ask(near);
  assert.equal((await admin("PATCH", "/admin/resources/ledger", { enabled: false })).status, 200);
  await ask(ledgerUri);
});

test("an administrator makes a self-registered client confidential: none fails, the secret works", async () => {
  const reg = await call(`${srv.url}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "CLI", redirect_uris: ["http://127.0.0.1/callback"], grant_types: ["authorization_code", "refresh_token"] }),
  });
  assert.equal(reg.status, 201, reg.text);
  const id = reg.json.client_id;
  assert.equal(reg.json.token_endpoint_auth_method, "none", "public unless an administrator says otherwise");
  const henk = await signIn(srv.url, "henk");
  const p = flow({ clientId: id });
  const { params } = await approve(srv.url, henk, authorizeQuery(p));
  const t = await exchange(srv.url, p, params.code);
  assert.equal(t.status, 200, t.text);

  const adminPost = (path, body, headers = {}) =>
    call(`${srv.url}${path}`, { method: "POST", headers: { authorization: ADMIN, "content-type": "application/json", ...headers }, body });
  // hostile first: a forged id, the PAT client, an already confidential client, unknown options
  assertError(await adminPost(`/admin/clients/${id.slice(0, -1)}${id.endsWith("0") ? "1" : "0"}/confidential`), 404, "not_found", "forged");
  assertError(await adminPost("/admin/clients/pat_client/confidential"), 409, "conflict", "the PAT client");
  assertError(await adminPost("/admin/clients/demo_client/confidential"), 409, "conflict", "already confidential");
  assertError(await adminPost(`/admin/clients/${id}/confidential`, JSON.stringify({ token_endpoint_auth_method: "none" })), 400, "invalid_request", "options");
  assertError(await adminPost(`/admin/clients/${id}/confidential`, undefined, { "if-match": '"00"' }), 412, "precondition_failed", "stale If-Match");

  const made = await adminPost(`/admin/clients/${id}/confidential`);
  assert.equal(made.status, 200, made.text);
  assert.deepEqual([made.json.client_id, made.json.source, made.json.token_endpoint_auth_method], [id, "dynamic", "client_secret_basic"]);
  const secret = made.json.client_secret;
  assert.ok(secret.length >= 32);
  const stored = queryLocalD1(srv.dir, `SELECT source, secret_hash FROM clients WHERE id = '${id}'`);
  assert.equal(stored[0].source, "dynamic");
  assert.equal(stored[0].secret_hash, createHash("sha256").update(secret).digest("hex"), "only the hash is stored");
  assertError(await adminPost(`/admin/clients/${id}/confidential`), 409, "conflict", "once");

  // none fails at once; the secret works (HTTP Basic); the refresh token survived the refusal
  assertError(await refresh(srv.url, id, t.json.refresh_token), 401, "invalid_client", "none after");
  const basic = `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
  const r = await form(`${srv.url}/oauth/token`, new URLSearchParams({ grant_type: "refresh_token", refresh_token: t.json.refresh_token }).toString(), { authorization: basic });
  assert.equal(r.status, 200, r.text);
  const p2 = flow({ clientId: id });
  const { params: q2 } = await approve(srv.url, henk, authorizeQuery(p2));
  assertError(await exchange(srv.url, p2, q2.code), 401, "invalid_client", "a code exchange with none");
  // rotate-secret works for it now; the old secret stops without a grace period
  const rot = await adminPost(`/admin/clients/${id}/rotate-secret`, JSON.stringify({ grace_seconds: 0 }));
  assert.equal(rot.status, 200, rot.text);
  const old = await form(`${srv.url}/oauth/token`, new URLSearchParams({ grant_type: "refresh_token", refresh_token: r.json.refresh_token }).toString(), { authorization: basic });
  assertError(old, 401, "invalid_client", "the rotated-away secret");
  const fresh = `Basic ${Buffer.from(`${id}:${rot.json.client_secret}`).toString("base64")}`;
  const r2 = await form(`${srv.url}/oauth/token`, new URLSearchParams({ grant_type: "refresh_token", refresh_token: r.json.refresh_token }).toString(), { authorization: fresh });
  assert.equal(r2.status, 200, r2.text);
  // still not an administrator-made client
  assert.equal((await call(`${srv.url}/admin/clients/${id}`, { headers: { authorization: ADMIN } })).status, 404);
});

test("the cron deletes ended codes, consent requests and grants (with refresh tokens); live ones stay", async () => {
  const ivo = await signIn(srv.url, "ivo");
  const p = flow();
  const { params } = await approve(srv.url, ivo, authorizeQuery(p));
  const t = (await exchange(srv.url, p, params.code)).json;
  const d1 = (sql) => queryLocalD1(srv.dir, sql, { config: `${srv.dir}/wrangler.toml` });
  // `wrangler d1 execute` makes the dev server reload, which drops open connections: after one,
  // wait until it answers again before the next request.
  const up = () => call(`${srv.url}/.well-known/oauth-authorization-server`).then((x) => x.status === 200, () => false);
  const settle = async () => assert.ok(await eventually(async () => (await up()) && (await up())), "the dev server answers again");
  const live = d1("SELECT id FROM app_grants WHERE subject = 'ivo'")[0].id;
  // State that ended long ago (times in 1970), written behind the Worker's back.
  const ap = "'e2e_app', 'u1', 'http://127.0.0.1/cb', 'k', 'ch', 'r', 'demo_api', 'u2', 'demo_api:read'";
  d1([
    "INSERT INTO app_grants (id, subject, client_id, client_uid, redirect_key, resource, api_id, api_uid, scopes, created_at, expires_at, revoked_at, revoked_reason) VALUES ('old_revoked', 'zed', 'e2e_app', 'u1', 'k', 'r', 'demo_api', 'u2', 'demo_api:read', 1000, 99999999999, 2000, 'user')",
    "INSERT INTO app_grants (id, subject, client_id, client_uid, redirect_key, resource, api_id, api_uid, scopes, created_at, expires_at) VALUES ('old_expired', 'zed', 'e2e_app', 'u1', 'k', 'r', 'demo_api', 'u2', 'demo_api:read', 1000, 3000)",
    "INSERT INTO refresh_tokens (token_hash, grant_id, generation, created_at, idle_expires_at) VALUES ('h1', 'old_revoked', 1, 1000, 5000), ('h2', 'old_revoked', 2, 1500, 5000), ('h3', 'old_expired', 1, 1000, 5000)",
    `INSERT INTO authorization_codes (code_hash, grant_id, subject, client_id, client_uid, redirect_uri, redirect_key, code_challenge, resource, api_id, api_uid, scopes, created_at, expires_at) VALUES ('c1', 'g', 'zed', ${ap}, 1000, 1060)`,
    `INSERT INTO consent_requests (handle_hash, subject, client_id, client_uid, redirect_uri, redirect_key, code_challenge, resource, api_id, api_uid, scopes, created_at, expires_at) VALUES ('q1', 'zed', ${ap}, 1000, 1600)`,
  ].join("; "));
  // Every count in one query (each `wrangler d1 execute` takes seconds).
  const counts = () => d1(`SELECT
    (SELECT count(*) FROM app_grants WHERE id IN ('old_revoked', 'old_expired')) AS old_grants,
    (SELECT count(*) FROM refresh_tokens WHERE grant_id IN ('old_revoked', 'old_expired')) AS old_refresh,
    (SELECT count(*) FROM authorization_codes WHERE code_hash = 'c1') AS old_codes,
    (SELECT count(*) FROM consent_requests WHERE handle_hash = 'q1') AS old_consents,
    (SELECT count(*) FROM app_grants WHERE id = '${live}') AS live_grants,
    (SELECT count(*) FROM refresh_tokens WHERE grant_id = '${live}') AS live_refresh,
    (SELECT count(*) FROM authorization_codes WHERE subject = 'ivo') AS ivo_codes,
    (SELECT count(*) FROM consent_requests WHERE subject = 'ivo') AS ivo_consents`)[0];
  assert.deepEqual(Object.values(counts()), [2, 3, 1, 1, 1, 1, 1, 1]);

  await settle();
  const cron = await call(`${srv.url}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(cron.status, 200, cron.text);
  let after;
  assert.ok(await eventually(() => (after = counts()).old_grants === 0), "ended grants deleted");
  // Ended state is gone (grants with their refresh tokens); what has not ended, or ended less
  // than a day ago, stays: the live grant, its refresh token, the code it was exchanged from,
  // the consent just answered.
  assert.deepEqual(after, {
    old_grants: 0, old_refresh: 0, old_codes: 0, old_consents: 0,
    live_grants: 1, live_refresh: 1, ivo_codes: 1, ivo_consents: 1,
  });
  await settle();
  const r = await refresh(srv.url, CLIENT, t.refresh_token);
  assert.equal(r.status, 200, r.text);
});
