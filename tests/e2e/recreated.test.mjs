// Tokens belong to the client as it existed when they were issued, on the real runtime: deleting a
// client that issues RFC 9068 JWTs and creating it again (same id, another uid) revives none of
// its JWTs, at introspection and at the gate (a real local upstream started here). And every
// leak report of a token patgate issued is a true positive, with every report's URL kept (D1
// `leak_reports`, bounded).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import { generateKeyPairSync, sign } from "node:crypto";
import { startServer, createPat, introspect, call, form, basic, userCall, ADMIN, sleep, devToken } from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 9061 + OFFSET;
const INACTIVE = '{"active":false}';

const KEY_ID = "recreated-test-key";
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const KEYS = JSON.stringify({
  public_keys: [{ key_identifier: KEY_ID, key: publicKey.export({ type: "spki", format: "pem" }), is_current: true }],
});

let srv, gateBase, upstream;

before(async () => {
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(JSON.stringify({ upstream: true, url: req.url })));
  });
  upstream.listen(UPSTREAM_PORT, "127.0.0.1");
  await once(upstream, "listening");
  srv = await startServer("recreated", 8851, { SECRET_SCANNING_KEYS: KEYS });
  gateBase = srv.url.replace("127.0.0.1", "localhost");
  const r = await adminCall("PUT", "/admin/routes/demo", {
    path_prefix: "/gw/demo/", resource: "demo_api", upstream: `http://127.0.0.1:${UPSTREAM_PORT}/base`,
    rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }],
  });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await srv?.stop();
  upstream?.closeAllConnections?.();
  upstream?.close();
});

function adminCall(method, path, body) {
  return call(`${srv.url}${path}`, {
    method,
    headers: { authorization: ADMIN, ...(body ? { "content-type": "application/json" } : {}) },
    body: body && JSON.stringify(body),
  });
}

async function clientJwt(id, secret) {
  const r = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials", { authorization: basic(id, secret) });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.access_token.split(".").length, 3, "a JWT");
  return r.json.access_token;
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
const gate = (token) => call(`${gateBase}/gw/demo/x`, { headers: { authorization: `Bearer ${token}` } });

async function recreate(id, body) {
  assert.equal((await adminCall("DELETE", `/admin/clients/${id}`)).status, 204);
  const r = await adminCall("POST", "/admin/clients", body);
  assert.equal(r.status, 201, r.text);
  return r.json.client_secret;
}

test("a JWT client deleted and created again revives none of its JWTs, at introspection and the gate", async () => {
  const body = { id: "jwt_svc", allowed_scopes: ["demo_api:read"], token_format: "jwt" };
  const created = await adminCall("POST", "/admin/clients", body);
  assert.equal(created.status, 201, created.text);
  const old = await clientJwt("jwt_svc", created.json.client_secret);
  assert.match(claims(old).client_uid, /^[0-9a-f]{32}$/, "the client's uid is carried");
  assert.equal((await introspect(srv.url, old)).json.active, true);
  const ok = await gate(old);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.upstream, true);

  const secret = await recreate("jwt_svc", body);
  assert.equal((await introspect(srv.url, old)).text, INACTIVE);
  const refused = await gate(old);
  assert.equal(refused.status, 401, refused.text);
  assert.match(refused.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
  // the new client's JWTs work, with its own uid
  const fresh = await clientJwt("jwt_svc", secret);
  assert.notEqual(claims(fresh).client_uid, claims(old).client_uid);
  assert.equal((await introspect(srv.url, fresh)).json.active, true);
  assert.equal((await gate(fresh)).status, 200);
  // the new client revoking the old JWT changes nothing (it is no token of this client)
  const rv = await form(`${srv.url}/oauth/revoke`, new URLSearchParams({ token: old }).toString(), {
    authorization: basic("jwt_svc", secret),
  });
  assert.equal(rv.status, 200, rv.text);
  assert.equal((await gate(fresh)).status, 200);
  // the seeded demo_jwt_client's JWTs are untouched by all this
  assert.equal((await gate(await clientJwt("demo_jwt_client", "demo-jwt-client-secret"))).status, 200);
});

test("a JWT exchanged from a PAT dies when the exchanging client or the PAT's client is created again", async () => {
  const pat = await createPat(srv.url, "erin", ["demo_api:read"]);
  const exchange = async (auth, extra = {}) => {
    const r = await form(`${srv.url}/oauth/token`, new URLSearchParams({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: pat.token,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token", ...extra,
    }).toString(), auth ? { authorization: auth } : {});
    assert.equal(r.status, 200, r.text);
    return r.json.access_token;
  };
  const byDemo = await exchange(basic("demo_client", "demo-client-secret"));
  const byPatClient = await exchange(null, { client_id: "pat_client" });
  for (const t of [byDemo, byPatClient]) assert.equal((await gate(t)).status, 200);
  await recreate("demo_client", { id: "demo_client", allowed_scopes: ["demo_api:read", "demo_api:write"] });
  assert.equal((await introspect(srv.url, byDemo)).text, INACTIVE);
  assert.equal((await gate(byDemo)).status, 401);
  assert.equal((await gate(byPatClient)).status, 200, "the PAT and its other JWT live on");
  await recreate("pat_client", { id: "pat_client", public: true, allowed_scopes: ["demo_api:read", "demo_api:write", "other_api:read"] });
  for (const t of [pat.token, byPatClient]) {
    assert.equal((await introspect(srv.url, t)).text, INACTIVE);
    assert.equal((await gate(t)).status, 401);
  }
});

// --- leak reports --------------------------------------------------------------------------------

function report(pairs) {
  const body = JSON.stringify(pairs.map(([token, url]) => ({ token, type: "patgate_personal_access_token", url, source: "commit" })));
  return call(`${srv.url}/secret-scanning/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "github-public-key-identifier": KEY_ID,
      "github-public-key-signature": sign("sha256", Buffer.from(body), privateKey).toString("base64"),
    },
    body,
  });
}
const labels = (r) => r.json.map((m) => m.label);
const url = (i) => `https://github.com/octo/repo/blob/c${i}/deploy.sh#L7`;

test("every token patgate issued is a true positive, whatever its state; every report's URL is kept, bounded", async () => {
  const leaked = await createPat(srv.url, "lena", ["demo_api:read"], { name: "leaked" });
  const first = await report([[leaked.token, url(0)]]);
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(labels(first), ["true_positive"]);
  assert.equal((await introspect(srv.url, leaked.token)).text, INACTIVE);
  // the same report again (GitHub retried it), and the same token found elsewhere (a fork)
  assert.deepEqual(labels(await report([[leaked.token, url(0)]])), ["true_positive"]);
  assert.deepEqual(labels(await report([[leaked.token, url(1)]])), ["true_positive"]);
  let v = (await userCall(srv.url, "lena", "GET", `/api/pats/${leaked.id}`)).json;
  assert.equal(v.status, "revoked");
  assert.equal(v.revoked_reason, "leaked");
  assert.equal(v.revoked_source_url, url(0), "the report that revoked it");
  assert.deepEqual(new Set(v.leak_urls), new Set([url(0), url(1)]), "both places, once each");
  // bounded: many more places, the newest 10 kept, newest first (reports of the same second are
  // ordered by when their URL was first reported)
  for (let i = 2; i < 14; i++) {
    assert.deepEqual(labels(await report([[leaked.token, url(i)]])), ["true_positive"]);
  }
  v = (await userCall(srv.url, "lena", "GET", `/api/pats/${leaked.id}`)).json;
  assert.equal(v.leak_urls.length, 10, JSON.stringify(v.leak_urls));
  assert.deepEqual(v.leak_urls, [13, 12, 11, 10, 9, 8, 7, 6, 5, 4].map(url), "the newest 10, newest first");
  // the page links them too
  const page = await call(`${srv.url}/tokens`, { headers: { "cf-access-jwt-assertion": devToken("lena") } });
  assert.equal(page.status, 200);
  assert.ok(page.text.includes(`href="${url(13)}"`) && page.text.includes(`href="${url(12)}"`), "every URL linked");

  // a token rotated away, one that expired, a revoked client token: all real
  const rotated = await createPat(srv.url, "lena", ["demo_api:read"], { name: "rotated" });
  const rot = await userCall(srv.url, "lena", "POST", `/api/pats/${rotated.id}/rotate`);
  assert.equal(rot.status, 201, rot.text);
  const expiresAt = new Date((Math.floor(Date.now() / 1000) + 3) * 1000).toISOString().replace(".000Z", "Z");
  const short = await createPat(srv.url, "lena", ["demo_api:read"], { name: "short", expires_in_days: undefined, expires_at: expiresAt });
  // a client access token, revoked by its client (RFC 7009)
  const own = await adminCall("POST", "/admin/clients", { id: "leaky_svc", allowed_scopes: ["demo_api:read"] });
  assert.equal(own.status, 201, own.text);
  const access = (await form(`${srv.url}/oauth/token`, "grant_type=client_credentials", {
    authorization: basic("leaky_svc", own.json.client_secret),
  })).json.access_token;
  assert.match(access, /^pga_/);
  const rvk = await form(`${srv.url}/oauth/revoke`, new URLSearchParams({ token: access }).toString(), {
    authorization: basic("leaky_svc", own.json.client_secret),
  });
  assert.equal(rvk.status, 200);
  await sleep(3500);
  assert.equal((await introspect(srv.url, short.token)).text, INACTIVE, "expired");
  const never = "pgp_" + "B".repeat(49);
  const r = await report([[rotated.token, url(20)], [short.token, url(21)], [access, url(22)], [never, url(23)], ["garbage", url(24)]]);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(labels(r), ["true_positive", "true_positive", "true_positive", "false_positive", "false_positive"]);
  const list = (await userCall(srv.url, "lena", "GET", "/api/pats")).json.pats;
  const byName = Object.fromEntries(list.map((p) => [p.name, p]));
  // the rotated PAT keeps working with its current token; the report is kept with it
  assert.equal(byName.rotated.status, "active");
  assert.deepEqual(byName.rotated.leak_urls, [url(20)]);
  assert.equal((await introspect(srv.url, rot.json.token)).json.active, true);
  assert.equal(byName.short.status, "expired");
  assert.deepEqual(byName.short.leak_urls, [url(21)]);
});
