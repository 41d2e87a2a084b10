// State survives a restart of the local server on the same state directory (D1, KV and Durable
// Objects persist): PATs stay listed and active, revocations stay revoked, last use is kept. A
// restart as `npm start` does it (migrations and the demo seed applied again) kills no token:
// PATs, client tokens (reference and JWT) and exchanged JWTs, in the API, the page and
// introspection alike. And the API and the page never call a token active that introspection
// calls inactive.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import {
  startServer, userCall, createPat, introspect, makeToken, eventually, form, basic, call, ADMIN, devToken,
} from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("restart", 8813); });
after(async () => { await srv?.stop(); });

test("PATs, revocations (API and RFC 7009) and last use survive a restart", async () => {
  const kept = await createPat(srv.url, "alice", ["demo_api:read"], { name: "kept" });
  const revoked = await createPat(srv.url, "alice", ["demo_api:read"], { name: "revoked" });
  const revoked7009 = await createPat(srv.url, "alice", ["demo_api:read"], { name: "revoked7009" });
  const bobs = await createPat(srv.url, "bob", ["other_api:read"], { name: "bobs" });
  // introspect everything once so that the KV cache holds each grant before revocation
  for (const p of [kept, revoked, revoked7009]) assert.equal((await introspect(srv.url, p.token)).json.active, true);
  assert.equal((await userCall(srv.url, "alice", "DELETE", `/api/pats/${revoked.id}`)).status, 204);
  const r = await fetch(`${srv.url}/oauth/revoke`, {
    method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: "pat_client", token: revoked7009.token }).toString(),
  });
  assert.equal(r.status, 200);
  const used = await eventually(async () => {
    const v = await userCall(srv.url, "alice", "GET", `/api/pats/${kept.id}`);
    return v.json.last_used_at ? v.json : null;
  }, { timeoutMs: 15_000 });
  assert.ok(used, "last use recorded before the restart");
  const listBefore = (await userCall(srv.url, "alice", "GET", "/api/pats")).json;

  await srv.restart();

  const list = await userCall(srv.url, "alice", "GET", "/api/pats");
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.pats.map((p) => p.id), listBefore.pats.map((p) => p.id), "same PATs, same order");
  const byName = Object.fromEntries(list.json.pats.map((p) => [p.name, p]));
  assert.equal(byName.kept.status, "active");
  assert.equal(byName.kept.last_used_at, used.last_used_at, "last use persisted");
  assert.ok(byName.kept.use_count >= 1);
  assert.equal(byName.revoked.status, "revoked");
  assert.equal(byName.revoked7009.status, "revoked");
  const ki = await introspect(srv.url, kept.token);
  assert.equal(ki.json.active, true);
  assert.equal(ki.json.jti, kept.id);
  assert.equal(ki.json.sub, "alice");
  assert.equal((await introspect(srv.url, revoked.token)).text, '{"active":false}');
  assert.equal((await introspect(srv.url, revoked7009.token)).text, '{"active":false}');
  assert.equal((await introspect(srv.url, makeToken())).text, '{"active":false}');
  const bl = await userCall(srv.url, "bob", "GET", "/api/pats");
  assert.deepEqual(bl.json.pats.map((p) => p.id), [bobs.id]);
  // the restarted server keeps working normally
  assert.equal((await userCall(srv.url, "alice", "POST", `/api/pats/${kept.id}/rotate`)).status, 201);
  assert.equal((await introspect(srv.url, kept.token)).text, '{"active":false}');
});

const TE = "urn:ietf:params:oauth:grant-type:token-exchange";
const TT_AT = "urn:ietf:params:oauth:token-type:access_token";
const INACTIVE = '{"active":false}';

async function clientToken(id, secret) {
  const r = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials", { authorization: basic(id, secret) });
  assert.equal(r.status, 200, r.text);
  return r.json.access_token;
}

async function exchanged(pat) {
  const r = await form(`${srv.url}/oauth/token`, new URLSearchParams({
    grant_type: TE, client_id: "pat_client", subject_token: pat, subject_token_type: TT_AT,
  }).toString());
  assert.equal(r.status, 200, r.text);
  return r.json.access_token;
}

/** The status badge of PAT `id` on the token page (HTML), as `user` sees it. */
async function pageStatus(user, id) {
  const r = await call(`${srv.url}/tokens`, { headers: { "cf-access-jwt-assertion": devToken(user) } });
  assert.equal(r.status, 200, r.text);
  const row = r.text.match(new RegExp(`<tr data-token-id="${id}">([\\s\\S]*?)</tr>`));
  assert.ok(row, `row ${id} on the page`);
  const badge = row[1].match(/class="badge s-([a-z]+)"[^>]*>([^<]+)</);
  assert.ok(badge, `a status badge in ${row[1]}`);
  assert.equal(badge[1], badge[2].toLowerCase(), "class and text agree");
  return badge[2];
}

/** Every view of PAT `id`: GET one, the list, the page, and whether introspection says active. */
async function views(user, id, token) {
  const one = await userCall(srv.url, user, "GET", `/api/pats/${id}`);
  const list = await userCall(srv.url, user, "GET", "/api/pats");
  return {
    api: one.json.status,
    list: list.json.pats.find((p) => p.id === id).status,
    page: await pageStatus(user, id),
    active: (await introspect(srv.url, token)).json.active,
  };
}

const uids = () => queryLocalD1(srv.dir, "SELECT id, uid FROM clients UNION ALL SELECT id, uid FROM api_resources ORDER BY id");

test("restarting as npm start does (migrations and seed again, twice) keeps every token alive everywhere", async () => {
  const pat = await createPat(srv.url, "rita", ["demo_api:read"], { name: "survivor" });
  const reference = await clientToken("demo_client", "demo-client-secret");
  assert.match(reference, /^pga_/);
  const jwt = await clientToken("demo_jwt_client", "demo-jwt-client-secret");
  assert.equal(jwt.split(".").length, 3, "a JWT");
  const fromPat = await exchanged(pat.token);
  const expected = { api: "active", list: "active", page: "Active", active: true };
  assert.deepEqual(await views("rita", pat.id, pat.token), expected);
  for (const t of [reference, jwt, fromPat]) assert.equal((await introspect(srv.url, t)).json.active, true);
  const before = uids();
  assert.ok(before.length >= 5 && before.every((r) => /^[0-9a-f]{32}$/.test(r.uid)), JSON.stringify(before));

  for (let i = 1; i <= 2; i++) {
    await srv.restart({}, { prepare: true });
    assert.deepEqual(uids(), before, `restart ${i}: the seed replaced no client or resource`);
    assert.deepEqual(await views("rita", pat.id, pat.token), expected, `restart ${i}: the PAT`);
    for (const [what, t] of [["reference", reference], ["jwt", jwt], ["exchanged", fromPat]]) {
      assert.equal((await introspect(srv.url, t)).json.active, true, `restart ${i}: the ${what} token`);
    }
  }
  // the seeded secrets still work, and new tokens too
  assert.equal((await introspect(srv.url, await clientToken("demo_client", "demo-client-secret"))).json.active, true);
  const fresh = await createPat(srv.url, "rita", ["demo_api:read"], { name: "after" });
  assert.equal((await introspect(srv.url, fresh.token)).json.active, true);
});

test("the API and the page never call a token active that introspection calls inactive", async () => {
  const pat = await createPat(srv.url, "vera", ["demo_api:read"], { name: "one-status" });
  const fromPat = await exchanged(pat.token);
  assert.deepEqual(await views("vera", pat.id, pat.token), { api: "active", list: "active", page: "Active", active: true });
  const adminCall = (method, path, body) => call(`${srv.url}${path}`, {
    method, headers: { authorization: ADMIN, ...(body ? { "content-type": "application/json" } : {}) },
    body: body && JSON.stringify(body),
  });
  // disabled: inactive everywhere, and back
  assert.equal((await adminCall("PATCH", "/admin/clients/pat_client", { enabled: false })).status, 200);
  assert.deepEqual(await views("vera", pat.id, pat.token), { api: "inactive", list: "inactive", page: "Inactive", active: false });
  assert.equal((await adminCall("PATCH", "/admin/clients/pat_client", { enabled: true })).status, 200);
  assert.deepEqual(await views("vera", pat.id, pat.token), { api: "active", list: "active", page: "Active", active: true });
  // deleted and created again (another uid): inactive for good, its exchanged JWT too
  assert.equal((await adminCall("DELETE", "/admin/clients/pat_client")).status, 204);
  const again = await adminCall("POST", "/admin/clients", {
    id: "pat_client", public: true, allowed_scopes: ["demo_api:read", "demo_api:write", "other_api:read"],
  });
  assert.equal(again.status, 201, again.text);
  assert.deepEqual(await views("vera", pat.id, pat.token), { api: "inactive", list: "inactive", page: "Inactive", active: false });
  assert.equal((await introspect(srv.url, fromPat)).text, INACTIVE);
  // ... also after a restart as npm start does it (the seed does not bring the old client back)
  await srv.restart({}, { prepare: true });
  assert.deepEqual(await views("vera", pat.id, pat.token), { api: "inactive", list: "inactive", page: "Inactive", active: false });
  // the owner can still revoke it; a PAT of the new client is active
  assert.equal((await userCall(srv.url, "vera", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  assert.equal((await views("vera", pat.id, pat.token)).page, "Revoked");
  const fresh = await createPat(srv.url, "vera", ["demo_api:read"]);
  assert.deepEqual(await views("vera", fresh.id, fresh.token), { api: "active", list: "active", page: "Active", active: true });
});
