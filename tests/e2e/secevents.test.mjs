// Revocations pushed to APIs that cache introspection answers, on the real runtime: receivers
// registered through /admin/webhooks with `"format": "secevent"` get one Security Event Token
// (RFC 8417) per revocation, POSTed as `application/secevent+jwt` (RFC 8935) by the Worker's own
// queue consumer. The receiver here verifies every SET with the `jose` library against patgate's
// published JWKS (signature, `typ`, `iss`, `aud`, no `exp`) and checks that no two different SETs
// share a `jti` (a retried delivery repeats the same SET). An app's authorization grant, obtained
// through the real code flow (dev sign-in, consent, code exchange), ends with a CAEP
// `session-revoked` SET.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import * as jose from "jose";
import { startServer, createPat, userCall, call, form, basic, introspect, ADMIN, eventually } from "./helpers.mjs";
import { pkce, signIn, authorizeQuery, approve, exchange, insertClient } from "./authflow.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const RECEIVER_PORT = 8894 + OFFSET;
const RECEIVER = `http://127.0.0.1:${RECEIVER_PORT}`;
const CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const SESSION = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const JWT_CLIENT = basic("demo_jwt_client", "demo-jwt-client-secret");

/** Every POST: { path, contentType, body, status }. */
const posts = [];
/** Per path, statuses to answer next (then 202). */
const script = new Map();
/** Verified SETs by path: [{ jti, payload }]. */
const sets = new Map();
/** jti -> the compact SET first seen with it. */
const seenJti = new Map();
const problems = [];
let receiver;
let srv;
let jwks;

const audienceOf = {
  "/one": "https://api.one.example", "/two": "https://api.two.example", "/strict": "https://api.strict.example",
  "/grants": "https://api.grants.example",
};
const APP = "set_app";

before(async () => {
  srv = await startServer("secevents", 8893);
  // an app and a gate route for the grant test (its resource), made before any request reads them
  await insertClient(srv, APP, { redirectUris: ["http://127.0.0.1/callback"], name: "SET App" });
  const route = await call(`${srv.url}/admin/routes/set`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      path_prefix: "/gw/set/", upstream: "http://127.0.0.1:9", resource: "demo_api",
      rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }],
    }),
  });
  assert.equal(route.status, 201, route.text);
  jwks = jose.createRemoteJWKSet(new URL(`${srv.url}/.well-known/jwks.json`));
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const queued = script.get(req.url) ?? [];
      const status = queued.length ? queued.shift() : 202;
      posts.push({ path: req.url, contentType: req.headers["content-type"], body, status });
      try {
        const { payload, protectedHeader } = await jose.jwtVerify(body, jwks, {
          issuer: srv.url, audience: audienceOf[req.url], typ: "secevent+jwt",
        });
        if (payload.exp !== undefined) throw new Error("a SET has no exp");
        if (!protectedHeader.kid) throw new Error("no kid");
        const first = seenJti.get(payload.jti);
        if (first !== undefined && first !== body) throw new Error(`jti ${payload.jti} reused by another SET`);
        seenJti.set(payload.jti, body);
        if (first === undefined) {
          if (!sets.has(req.url)) sets.set(req.url, []);
          sets.get(req.url).push({ jti: payload.jti, payload });
        }
      } catch (e) {
        problems.push(`${req.url}: ${e.message}`);
      }
      res.writeHead(status, { "content-type": "application/json" });
      res.end(status === 400 ? '{"err":"invalid_audience","description":"not for us"}' : "");
    });
  });
  await new Promise((resolve, reject) => {
    receiver.once("error", reject);
    receiver.listen(RECEIVER_PORT, "127.0.0.1", resolve);
  });
});
after(async () => {
  await srv?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => (receiver ? receiver.close(r) : r()));
});

const admin = (method, path, body) => call(`${srv.url}/admin${path}`, {
  method,
  headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }) },
  body: body === undefined ? undefined : JSON.stringify(body),
});
const sha256 = (t) => createHash("sha256").update(t).digest("hex");
const eventsAt = (path) => (sets.get(path) ?? []).map((s) => s.payload);

/** Waits until `path` has received a SET for which `pred` holds; returns its claims. */
async function setFor(path, pred, what) {
  const found = await eventually(() => eventsAt(path).find(pred), { timeoutMs: 30_000, everyMs: 250 });
  assert.ok(found, `${what}: no SET at ${path}; got ${JSON.stringify(eventsAt(path))}; problems ${problems}`);
  return found;
}

test("every revocation reaches each receiver as one signed SET with the CAEP event it asked for", async () => {
  const one = await admin("POST", "/webhooks", { url: `${RECEIVER}/one`, format: "secevent", audience: audienceOf["/one"], token_hash: true });
  assert.equal(one.status, 201, one.text);
  assert.equal(one.json.format, "secevent");
  assert.equal(one.json.audience, audienceOf["/one"]);
  assert.equal(one.json.token_hash, true);
  // the second receiver fails once (500): the delivery is retried with the same SET
  script.set("/two", [500]);
  const two = await admin("POST", "/webhooks", { url: `${RECEIVER}/two`, format: "secevent", audience: audienceOf["/two"] });
  assert.equal(two.status, 201, two.text);
  assert.equal(two.json.token_hash, false);

  // a PAT revoked by its owner
  const pat = await createPat(srv.url, "sue");
  assert.equal((await userCall(srv.url, "sue", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  const revoked = (p) => p.sub_id.format === "opaque" && p.sub_id.id === pat.id && p.events[CHANGE]?.change_type === "revoke";
  const s1 = await setFor("/one", revoked, "PAT revoked");
  assert.deepEqual(Object.keys(s1.events), [CHANGE]);
  assert.equal(s1.events[CHANGE].credential_type, "bearer-token");
  assert.equal(s1.events[CHANGE].initiating_entity, "user");
  assert.equal(s1.events[CHANGE].token_hash, sha256(pat.token), "the receiver asked for token hashes");
  assert.equal(typeof s1.events[CHANGE].event_timestamp, "number");
  assert.ok(s1.txn, "the revocation's transaction id");
  const s2 = await setFor("/two", revoked, "PAT revoked, after a retry");
  assert.equal(s2.events[CHANGE].token_hash, undefined, "no hash without consent");
  assert.equal(s2.txn, s1.txn, "one revocation, one txn");
  assert.notEqual(s2.jti, s1.jti);

  // a rotation without grace (update: the old token stopped), then the end of a grace
  const pat2 = await createPat(srv.url, "sue");
  const rot = await userCall(srv.url, "sue", "POST", `/api/pats/${pat2.id}/rotate`);
  assert.equal(rot.status, 201, rot.text);
  await setFor("/one", (p) => p.sub_id.id === pat2.id && p.events[CHANGE]?.change_type === "update"
    && p.events[CHANGE].token_hash === sha256(pat2.token), "rotation");
  const rot2 = await userCall(srv.url, "sue", "POST", `/api/pats/${pat2.id}/rotate`, { grace_seconds: 3600 });
  assert.equal(rot2.status, 201, rot2.text);
  const ended = await form(`${srv.url}/oauth/revoke`, new URLSearchParams({ client_id: "pat_client", token: rot.json.token }).toString());
  assert.equal(ended.status, 200);
  const ofOldToken = () => eventsAt("/one").filter((p) => p.sub_id.id === pat2.id
    && p.events[CHANGE]?.token_hash === sha256(rot.json.token));
  // (an empty list is truthy: wait for both)
  await eventually(() => ofOldToken().length >= 2 || undefined, { timeoutMs: 30_000, everyMs: 250 });
  const graceEvents = ofOldToken();
  assert.equal(graceEvents.length, 2, `rotation with grace, then its end: ${JSON.stringify(eventsAt("/one"))}; problems ${problems}`);
  assert.equal(typeof graceEvents.find((p) => p.events[CHANGE].grace_until)?.events[CHANGE].grace_until, "number");

  // a client JWT revoked through RFC 7009: subject by iss and jti
  const t = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials&scope=demo_api:read", { authorization: JWT_CLIENT });
  assert.equal(t.status, 200, t.text);
  const { jti } = jose.decodeJwt(t.json.access_token);
  assert.equal((await form(`${srv.url}/oauth/revoke`, `token=${t.json.access_token}`, { authorization: JWT_CLIENT })).status, 200);
  await setFor("/one", (p) => p.sub_id.format === "jwt_id" && p.sub_id.jti === jti && p.sub_id.iss === srv.url
    && p.events[CHANGE]?.change_type === "revoke", "client JWT revoked");

  // a client disabled by an operator: session-revoked, the application as subject
  const c = await admin("POST", "/clients", { id: "set_job", allowed_scopes: ["demo_api:read"] });
  assert.equal(c.status, 201, c.text);
  assert.equal((await admin("PATCH", "/clients/set_job", { enabled: false })).status, 200);
  const off = await setFor("/one", (p) => p.events[SESSION] && p.sub_id.format === "complex"
    && p.sub_id.application?.id === "set_job", "client disabled");
  assert.equal(off.events[SESSION].initiating_entity, "admin");

  // every POST was a SET; the one answered 500 was sent again, the same SET
  for (const p of posts) assert.equal(p.contentType, "application/secevent+jwt");
  const firstTwo = posts.filter((p) => p.path === "/two");
  assert.equal(firstTwo[0].status, 500);
  // (other SETs may reach /two before the retry, which waits its backoff: 5 s)
  const sameAsFirst = () => posts.filter((p) => p.path === "/two" && p.body === firstTwo[0].body);
  await eventually(() => sameAsFirst().length >= 2 || undefined, { timeoutMs: 30_000, everyMs: 250 });
  const again = sameAsFirst().slice(1);
  assert.equal(again.length, 1, "the retry repeats the same SET, once");
  assert.equal(again[0].status, 202);
  assert.deepEqual(problems, []);
  // nothing but SETs reach a secevent receiver: no revocation, no SET (creating PATs sends none)
  const before = posts.length;
  await createPat(srv.url, "sue");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(posts.length, before);
});

test("a receiver that refuses a SET (400 with err) is not asked again; bad registrations are refused", async () => {
  script.set("/strict", [400, 400, 400]);
  const w = await admin("POST", "/webhooks", { url: `${RECEIVER}/strict`, format: "secevent", audience: audienceOf["/strict"] });
  assert.equal(w.status, 201, w.text);
  const pat = await createPat(srv.url, "ria");
  assert.equal((await userCall(srv.url, "ria", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  await setFor("/strict", (p) => p.sub_id.id === pat.id, "the refused SET");
  await new Promise((r) => setTimeout(r, 4000)); // the first retry would come after 1 s or more
  assert.equal(posts.filter((p) => p.path === "/strict").length, 1, "400 is final (RFC 8935 2.3)");
  assert.equal((await admin("DELETE", `/webhooks/${w.json.id}`)).status, 204);

  for (const bad of [
    { url: `${RECEIVER}/x`, format: "secevent" }, // no audience
    { url: `${RECEIVER}/x`, format: "secevent", audience: "" },
    { url: `${RECEIVER}/x`, format: "secevent", audience: "a", event_types: ["pat.revoked"] },
    { url: `${RECEIVER}/x`, format: "carrier-pigeon", audience: "a" },
    { url: `${RECEIVER}/x`, format: "secevent", audience: "a", token_hash: "yes" },
    { url: `${RECEIVER}/x`, event_types: ["*"], audience: "a" }, // audience only for SETs
    { url: "http://10.0.0.1/hook", format: "secevent", audience: "a" }, // the URL guard (plain http only to loopback, even locally)
  ]) {
    const r = await admin("POST", "/webhooks", bad);
    assert.equal(r.status, 400, `${JSON.stringify(bad)} -> ${r.status} ${r.text}`);
  }
  // a token's introspection is unaffected by all this
  const live = await createPat(srv.url, "ria");
  assert.equal((await introspect(srv.url, live.token)).json.active, true);
});

test("an app's authorization grant ended (RFC 7009 of its refresh token, the admin API): one session-revoked SET naming the grant, its app and its user", async () => {
  const w = await admin("POST", "/webhooks", { url: `${RECEIVER}/grants`, format: "secevent", audience: audienceOf["/grants"] });
  assert.equal(w.status, 201, w.text);
  const resource = `${srv.url.replace("127.0.0.1", "localhost")}/gw/set/`;
  const cookie = await signIn(srv.url, "gus");
  const grant = async () => {
    const p = { clientId: APP, redirectUri: "http://127.0.0.1:4501/callback", resource, scope: "demo_api:read", ...pkce() };
    const { params } = await approve(srv.url, cookie, authorizeQuery(p));
    assert.ok(params.code, JSON.stringify(params));
    const t = await exchange(srv.url, p, params.code);
    assert.equal(t.status, 200, t.text);
    return { at: t.json.access_token, rt: t.json.refresh_token };
  };
  const grantIds = async () => (await admin("GET", "/grants?subject=gus")).json.grants.map((g) => g.id);
  const ofGrant = (id) => (p) => p.events[SESSION] && p.sub_id.format === "complex" && p.sub_id.session?.id === id;

  // ended by its app through RFC 7009 (the refresh token ends the grant)
  const first = await grant();
  const [id1] = await grantIds();
  assert.ok(id1, "the grant is listed");
  assert.equal((await introspect(srv.url, first.at)).json.active, true);
  const r = await form(`${srv.url}/oauth/revoke`, new URLSearchParams({ client_id: APP, token: first.rt }).toString());
  assert.equal(r.status, 200, r.text);
  const s1 = await setFor("/grants", ofGrant(id1), "grant ended by RFC 7009");
  assert.deepEqual(s1.sub_id, {
    format: "complex", session: { format: "opaque", id: id1 },
    application: { format: "opaque", id: APP }, user: { format: "opaque", id: "gus" },
  });
  assert.deepEqual(Object.keys(s1.events), [SESSION]);
  assert.equal(s1.events[SESSION].initiating_entity, "user");
  assert.equal(typeof s1.events[SESSION].event_timestamp, "number");
  assert.equal(s1.events[SESSION].change_type, undefined);
  assert.equal((await introspect(srv.url, first.at)).json.active, false, "its access token died with it");
  // every receiver hears of it, each with its own SET
  const s1one = await setFor("/one", ofGrant(id1), "grant ended, the other receiver");
  assert.equal(s1one.txn, s1.txn);
  assert.notEqual(s1one.jti, s1.jti);

  // ended by an operator
  const second = await grant();
  const id2 = (await grantIds()).find((g) => g !== id1);
  assert.ok(id2, "the second grant is listed");
  assert.equal((await admin("DELETE", `/grants/${id2}`)).status, 204);
  const s2 = await setFor("/grants", ofGrant(id2), "grant ended by an operator");
  assert.equal(s2.events[SESSION].initiating_entity, "admin");
  assert.equal((await introspect(srv.url, second.at)).json.active, false);
  // ending it again tells nobody: one SET per grant
  assert.equal((await admin("DELETE", `/grants/${id2}`)).status, 204);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(eventsAt("/grants").filter(ofGrant(id2)).length, 1);
  assert.equal(eventsAt("/grants").filter(ofGrant(id1)).length, 1);
  assert.deepEqual(problems, []);
});
