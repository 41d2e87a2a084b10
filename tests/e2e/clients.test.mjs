// Clients of the authorization server on the real runtime: administrator-made clients with the
// authorization code side (admin API, public and confidential, hostile input), RFC 7591
// registration (on in the local dev settings, off otherwise, rate limited, public, oversized
// bodies refused, unused registrations expire), client ID metadata documents fetched through the
// network guard (a private address, too large, malformed, a mismatched client_id, a redirect to
// elsewhere, a slow server), forged dynamic ids costing no D1 read, and the development setting
// for loopback documents refused with a public issuer.
//
// The authorization endpoint identifies a client through `app::clients::client_for`; the dev
// route `GET /_dev/client?client_id=` answers with that same lookup (JSON), so metadata
// documents are fetched here exactly as `/authorize` fetches them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, call, form, ADMIN, assertError, sleep, eventually } from "./helpers.mjs";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import { startDocumentServer } from "../fixtures/metadata-documents.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const DOCS_PORT = 8867 + OFFSET;
const CALLBACK = "http://127.0.0.1:8869/callback";

let srv, docs;

before(async () => {
  // Registration and loopback metadata documents come from the local dev settings (DEV_VARS),
  // as with `npm start`: nothing is set here but the expiry.
  srv = await startServer("clients", 8866, { DYNAMIC_CLIENT_UNUSED_DAYS: "0" }, { logLevel: "log", limits: { RL_REGISTER_IP: 12 } });
  // patgate gives up on a document after 3 s; this one answers after 6.
  docs = await startDocumentServer({ port: DOCS_PORT, redirectUris: [CALLBACK], slowMs: 6000 });
});

after(async () => {
  await docs?.close();
  await srv?.stop();
});

const admin = (method, path, body, headers = {}) =>
  call(`${srv.url}${path}`, {
    method,
    headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });

const register = (body, headers = {}) =>
  call(`${srv.url}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** The client `id` as the authorization endpoint identifies it. */
async function lookup(id) {
  const r = await call(`${srv.url}/_dev/client?client_id=${encodeURIComponent(id)}`);
  assert.equal(r.status, 200, `${id}: ${r.status} ${r.text}`);
  return r.json;
}

const counters = async () => (await call(`${srv.url}/_dev/counters`)).json;

test("discovery with the local dev settings: none, registration_endpoint, client_id_metadata_document_supported", async () => {
  const m = (await call(`${srv.url}/.well-known/oauth-authorization-server`)).json;
  assert.ok(m.token_endpoint_auth_methods_supported.includes("none"));
  assert.ok(m.revocation_endpoint_auth_methods_supported.includes("none"));
  assert.equal(m.registration_endpoint, `${srv.url}/oauth/register`);
  assert.equal(m.client_id_metadata_document_supported, true);
});

test("admin API: public and confidential clients with redirect URIs, grant types, display name, logo", async () => {
  const made = await admin("POST", "/admin/clients", {
    id: "desk_app", public: true, allowed_scopes: ["demo_api:read"],
    redirect_uris: ["http://127.0.0.1/callback", "https://desk.example/cb"], grant_types: ["authorization_code", "refresh_token"],
    display_name: "Desk <App>", logo_uri: "https://desk.example/logo.png",
  });
  assert.equal(made.status, 201, made.text);
  assert.equal(made.json.client_secret, undefined, "a public client has no secret");
  assert.deepEqual(
    { public: made.json.public, redirect_uris: made.json.redirect_uris, grant_types: made.json.grant_types, display_name: made.json.display_name, logo_uri: made.json.logo_uri },
    { public: true, redirect_uris: ["http://127.0.0.1/callback", "https://desk.example/cb"], grant_types: ["authorization_code", "refresh_token"], display_name: "Desk <App>", logo_uri: "https://desk.example/logo.png" },
  );
  const conf = await admin("POST", "/admin/clients", { id: "web_app", allowed_scopes: ["demo_api:read"], redirect_uris: ["https://web.example/cb"], grant_types: ["authorization_code"] });
  assert.equal(conf.status, 201, conf.text);
  assert.match(conf.json.client_secret, /^\S{20,}$/, "a confidential client gets its secret once");
  // an older-style client: no grant types (client credentials and exchange only)
  const legacy = await admin("GET", "/admin/clients/demo_client");
  assert.equal(legacy.json.grant_types, null);
  assert.deepEqual(legacy.json.redirect_uris, []);

  // The public client authenticates by client_id alone; a secret it sends is refused.
  assert.equal((await form(`${srv.url}/oauth/revoke`, "client_id=desk_app&token=garbage")).status, 200);
  assertError(await form(`${srv.url}/oauth/revoke`, "client_id=desk_app&client_secret=x&token=garbage"), 401, "invalid_client");
  // The confidential one needs its secret.
  assertError(await form(`${srv.url}/oauth/revoke`, "client_id=web_app&token=garbage"), 401, "invalid_client");
  const basic = "Basic " + Buffer.from(`web_app:${conf.json.client_secret}`).toString("base64");
  assert.equal((await form(`${srv.url}/oauth/revoke`, "token=garbage", { authorization: basic })).status, 200);

  // As the authorization endpoint sees it.
  const seen = await lookup("desk_app");
  assert.deepEqual(
    { found: seen.found, source: seen.source, display_name: seen.display_name, public: seen.public },
    { found: true, source: "admin", display_name: "Desk <App>", public: true },
  );

  // PATCH changes the profile, conditional on the ETag; null clears a member.
  const got = await admin("GET", "/admin/clients/desk_app");
  const tag = got.headers.get("etag");
  const patched = await admin("PATCH", "/admin/clients/desk_app", { display_name: null, redirect_uris: ["http://127.0.0.1/other"] }, { "if-match": tag });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.json.display_name, null);
  assert.deepEqual(patched.json.redirect_uris, ["http://127.0.0.1/other"]);
  assert.notEqual(patched.headers.get("etag"), tag, "the profile is part of the entity tag");
  const stale = await admin("PATCH", "/admin/clients/desk_app", { logo_uri: null }, { "if-match": tag });
  assertError(stale, 412, "precondition_failed");
  const now = await lookup("desk_app");
  assert.deepEqual(now.redirect_uris, ["http://127.0.0.1/other"], "the change shows at once in this isolate");
  assert.equal(now.display_name, null);
});

test("admin API: hostile client profiles are refused", async () => {
  const base = { public: true, allowed_scopes: ["demo_api:read"] };
  for (const [body, what] of [
    [{ redirect_uris: ["http://evil.example/cb"], grant_types: ["authorization_code"] }, "http to a non-loopback host"],
    [{ redirect_uris: ["https://a.example/cb#frag"], grant_types: ["authorization_code"] }, "a fragment"],
    [{ redirect_uris: ["https://a.example/cb?code=1"], grant_types: ["authorization_code"] }, "a reserved query parameter"],
    [{ redirect_uris: ["https://user@a.example/cb"], grant_types: ["authorization_code"] }, "userinfo"],
    [{ redirect_uris: ["cursor://cb"], grant_types: ["authorization_code"] }, "a private-use scheme (not allowed here)"],
    [{ redirect_uris: [], grant_types: ["authorization_code"] }, "authorization_code without redirect URIs"],
    [{ redirect_uris: ["https://a.example/cb"], grant_types: ["refresh_token"] }, "refresh_token alone"],
    [{ redirect_uris: ["https://a.example/cb"], grant_types: ["client_credentials"] }, "an unknown grant type here"],
    [{ redirect_uris: ["https://a.example/cb"], grant_types: ["authorization_code", "authorization_code"] }, "a repeated grant type"],
    [{ redirect_uris: "https://a.example/cb" }, "redirect_uris not a list"],
    [{ display_name: "Bank\u202eppA" }, "a bidirectional override in the name"],
    [{ display_name: "   " }, "a blank name"],
    [{ display_name: "x".repeat(101) }, "a name too long"],
    [{ logo_uri: "http://a.example/l.png" }, "a logo over http"],
    [{ logo_uri: "javascript:alert(1)" }, "a logo that is script"],
    [{ unknown_member: 1 }, "an unknown member"],
  ]) {
    const r = await admin("POST", "/admin/clients", { id: "hostile_app", ...base, ...body });
    assertError(r, 400, "invalid_request", what);
  }
  for (const id of ["pgd_0123456789ABCDEFGHIJKL0123456789ABCDEFGHIJ", "https://x.example/c.json"]) {
    const r = await admin("POST", "/admin/clients", { id, ...base });
    assertError(r, 400, "invalid_request", `reserved id ${id}`);
  }
  assert.equal((await admin("GET", "/admin/clients/hostile_app")).status, 404, "nothing was created");
});

test("RFC 7591: public registration, used at the token endpoint by client_id alone; forged ids; hostile registrations; rate limit", async () => {
  const r = await register({ client_name: "CLI", redirect_uris: [CALLBACK], grant_types: ["authorization_code", "refresh_token"], token_endpoint_auth_method: "client_secret_post" });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.match(r.json.client_id, /^pgd_[0-9A-Za-z]{44}$/);
  assert.equal(r.json.token_endpoint_auth_method, "none", "registered clients are public (the method is replaced)");
  assert.equal(r.json.client_secret, undefined);
  assert.deepEqual(r.json.redirect_uris, [CALLBACK]);
  const id = r.json.client_id;
  assert.ok(await eventually(() => srv.log().includes(`"client_id":"${id}"`) && /"event":"client\.registered"/.test(srv.log()), { timeoutMs: 10_000, everyMs: 200 }));
  // listed nowhere in the admin API, and never read whole
  assert.ok(!(await admin("GET", "/admin/clients")).json.clients.some((c) => c.id === id));
  assert.equal((await admin("GET", `/admin/clients/${id}`)).status, 404);
  const stored = queryLocalD1(srv.dir, `SELECT source, secret_hash FROM clients WHERE id = '${id}'`);
  assert.deepEqual(stored.map((s) => s.source), ["dynamic"]);
  // It authenticates by client_id alone (RFC 7009 of a garbage token: 200), but may not use
  // client_credentials, and a secret it presents is refused.
  assert.equal((await form(`${srv.url}/oauth/revoke`, `client_id=${id}&token=garbage`)).status, 200);
  assertError(await form(`${srv.url}/oauth/token`, `grant_type=client_credentials&client_id=${id}`), 400, "unauthorized_client");
  assertError(await form(`${srv.url}/oauth/revoke`, `client_id=${id}&client_secret=x&token=garbage`), 401, "invalid_client");
  const seen = await lookup(id);
  assert.deepEqual({ found: seen.found, source: seen.source, display_name: seen.display_name, public: seen.public }, { found: true, source: "dynamic", display_name: "CLI", public: true });
  // A forged id (the tag changed) is unknown without any storage read.
  const forged = id.slice(0, -1) + (id.at(-1) === "0" ? "1" : "0");
  const before = await counters();
  assertError(await form(`${srv.url}/oauth/revoke`, `client_id=${forged}&token=garbage`), 401, "invalid_client");
  assert.equal((await lookup(forged)).found, false);
  const after = await counters();
  assert.equal(after.d1_query - before.d1_query, 0, "no D1 read for a forged pgd_ id");

  for (const [body, code, what] of [
    [{ redirect_uris: ["http://evil.example/cb"] }, "invalid_redirect_uri", "http to a public host"],
    [{ redirect_uris: [] }, "invalid_redirect_uri", "no redirect URI"],
    [{ redirect_uris: [CALLBACK], token_endpoint_auth_method: "private_key_jwt" }, "invalid_client_metadata", "an unverifiable method"],
    [{ redirect_uris: [CALLBACK], software_statement: "eyJ.x.y" }, "invalid_software_statement", "a software statement"],
    [{ redirect_uris: [CALLBACK], client_id: "demo_client" }, "invalid_client_metadata", "choosing its own id"],
    ["[1]", "invalid_client_metadata", "not an object"],
    ['{"redirect_uris":[', "invalid_client_metadata", "malformed JSON"],
  ]) {
    const x = await register(body);
    assert.equal(x.status, 400, `${what}: ${x.status} ${x.text}`);
    assert.equal(x.json.error, code, what);
  }
  // An oversized body is refused before it is parsed; the wrong media type too.
  const big = await register({ client_name: "x", redirect_uris: [CALLBACK], padding: "x".repeat(20_000) });
  assert.equal(big.status, 413, big.text);
  assertError(await register({ redirect_uris: [CALLBACK] }, { "content-type": "text/plain" }), 415, "invalid_request");
  // RL_REGISTER_IP is 12 per minute here, and every attempt counts (the refused ones above
  // too): a flood from this IP is refused within the limit.
  const statuses = [];
  for (let i = 0; i < 13; i++) {
    const x = await register({ redirect_uris: [CALLBACK] });
    statuses.push(x.status);
    if (x.status === 429) {
      assertError(x, 429, "rate_limited");
      assert.equal(x.headers.get("retry-after"), "60");
      break;
    }
  }
  assert.equal(statuses.at(-1), 429, `the flood was stopped: ${statuses}`);
  assert.ok(statuses.slice(0, -1).every((s) => s === 201), `${statuses}`);
  const n = queryLocalD1(srv.dir, "SELECT count(*) AS n FROM clients WHERE source = 'dynamic'")[0].n;
  assert.ok(n <= 12, `at most the allowed registrations were stored: ${n}`);
});

test("unused registrations expire (the hourly cron)", async () => {
  await sleep(1100);
  const before = queryLocalD1(srv.dir, "SELECT count(*) AS n FROM clients WHERE source = 'dynamic'")[0].n;
  assert.ok(before > 0);
  const cron = await call(`${srv.url}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(cron.status, 200, cron.text);
  const left = await eventually(() => queryLocalD1(srv.dir, "SELECT count(*) AS n FROM clients WHERE source = 'dynamic'")[0].n === 0);
  assert.ok(left, "DYNAMIC_CLIENT_UNUSED_DAYS=0: every unused registration is gone");
  assert.ok(await eventually(() => /"event":"client\.expired"/.test(srv.log()), { timeoutMs: 10_000, everyMs: 200 }));
  assert.equal(queryLocalD1(srv.dir, "SELECT count(*) AS n FROM clients WHERE source = 'admin'")[0].n > 0, true, "administrator-made clients stay");
});

test("metadata documents: fetched through the guard; private, large, malformed, mismatched, redirecting and slow documents are refused with why", async () => {
  for (const [id, pattern, what] of [
    ["https://10.0.0.1/client.json", /could not be identified/i, "a private address"],
    ["https://169.254.169.254/latest/meta-data/client.json", /could not be identified/i, "the cloud metadata address"],
    ["https://localhost/client.json", /could not be identified/i, "localhost over https"],
    [`${docs.base}/large.json`, /larger than 5120 bytes/i, "too large"],
    [`${docs.base}/malformed.json`, /could not be identified: .*JSON/i, "malformed JSON"],
    [`${docs.base}/mismatch.json`, /client_id is not the URL it was fetched from/i, "a mismatched client_id"],
    [`${docs.base}/redirect.json`, /redirect \(302\); redirects are not followed/i, "a redirect to elsewhere"],
    [`${docs.base}/secret.json`, /secret/i, "a document with a secret"],
    [`${docs.base}/status/404.json`, /HTTP 404/i, "not found"],
  ]) {
    const r = await lookup(id);
    assert.equal(r.found, false, what);
    assert.match(r.why, pattern, `${what}: ${r.why}`);
  }
  assert.equal(docs.count("/good/elsewhere.json"), 0, "the redirect was not followed");
  assert.equal(docs.count("/large.json"), 1);
  assert.equal(queryLocalD1(srv.dir, "SELECT count(*) AS n FROM clients WHERE source = 'metadata'")[0].n, 0, "none stored");
  // A refusal is remembered for a minute: no second fetch.
  assert.match((await lookup(`${docs.base}/large.json`)).why, /larger than/i);
  assert.equal(docs.count("/large.json"), 1, "negative cache");
  // A slow server: given up after 3 s.
  const t0 = Date.now();
  const slow = await lookup(`${docs.base}/slow.json`);
  assert.match(slow.why, /did not answer within 3 s/i);
  assert.ok(Date.now() - t0 < 5500, `gave up in ${Date.now() - t0} ms`);
  // A good document is a public client, stored, then served from the cache (max-age=300).
  const id = `${docs.base}/good/desk.json`;
  const good = await lookup(id);
  assert.deepEqual(
    { found: good.found, source: good.source, display_name: good.display_name, redirect_uris: good.redirect_uris, public: good.public },
    { found: true, source: "metadata", display_name: "Test MCP client", redirect_uris: [CALLBACK], public: true },
  );
  assert.equal((await lookup(id)).found, true);
  assert.equal(docs.count("/good/desk.json"), 1, "fetched once");
  const row = queryLocalD1(srv.dir, `SELECT source, metadata_expires_at FROM clients WHERE id = '${id}'`);
  assert.equal(row.length, 1);
  assert.equal(row[0].source, "metadata");
  const ttl = row[0].metadata_expires_at - Math.floor(Date.now() / 1000);
  assert.ok(ttl > 280 && ttl <= 300, `cached per its max-age: ${ttl}`);
  // The token endpoint knows it by client_id alone (no fetch there).
  assert.equal((await form(`${srv.url}/oauth/revoke`, `client_id=${encodeURIComponent(id)}&token=garbage`)).status, 200);
  assert.equal(docs.count("/good/desk.json"), 1);
});

test("loopback metadata documents and RFC 7591 are off with the production settings; CIMD_ALLOW_HTTP_LOOPBACK with a public issuer refuses to serve", async () => {
  await srv.restart({ DYNAMIC_REGISTRATION: "", CIMD_ALLOW_HTTP_LOOPBACK: "" });
  assert.equal((await register({ redirect_uris: [CALLBACK] })).status, 404, "registration off");
  const meta = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(meta.json.registration_endpoint, undefined);
  assert.equal(meta.json.client_id_metadata_document_supported, true, "https documents still work");
  const prod = await lookup(`${docs.base}/good/prod.json`);
  assert.deepEqual({ found: prod.found, why: prod.why }, { found: false, why: "unknown client" });
  assert.equal(docs.count("/good/prod.json"), 0, "never fetched");
  await srv.restart({ ISSUER: "https://patgate.example.com", DEV_SIGN_IN: "", CIMD_ALLOW_HTTP_LOOPBACK: "true" });
  const r = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(r.status, 500);
  assert.equal(r.json?.error, "server_error");
  assert.ok(await eventually(() => srv.log().includes("CIMD_ALLOW_HTTP_LOOPBACK is for local development only"), { timeoutMs: 10_000, everyMs: 200 }));
  await srv.restart({ ISSUER: srv.url, DEV_SIGN_IN: "true", DYNAMIC_REGISTRATION: "true", CLIENT_ID_KEYS: "" });
  const noKeys = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(noKeys.status, 500, "registration without CLIENT_ID_KEYS refuses to serve");
});
