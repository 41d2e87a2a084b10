// Revoked means dead, on the real runtime: concurrent introspection while PATs are revoked and
// rotated, rotate/revoke races on one PAT, JWTs exchanged from a PAT dying with it, and a disabled
// PAT client. Loopback only, bounded in requests and time.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, createPat, introspect, userCall, form, call, ADMIN } from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("integrity", 8819); });
after(async () => { await srv?.stop(); });

const INACTIVE = '{"active":false}';
const TE = "urn:ietf:params:oauth:grant-type:token-exchange";
const TT_AT = "urn:ietf:params:oauth:token-type:access_token";
const enc = (o) => new URLSearchParams(o).toString();
const token = (params) => form(`${srv.url}/oauth/token`, enc(params));
const admin = (method, path, body) => call(`${srv.url}${path}`, {
  method, headers: { authorization: ADMIN, "content-type": "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/** A small deterministic PRNG, so a failing round can be replayed. */
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

test("load: introspections racing revocations and rotations; every one started after the change answers inactive", async () => {
  const user = "loaded";
  const n = 24;
  const pats = [];
  for (let i = 0; i < n; i++) pats.push(await createPat(srv.url, user, ["demo_api:read"], { name: `p${i}` }));
  const rand = rng(7);
  const dead = new Map(); // old token -> time its revoke/rotate response arrived
  const live = new Set(pats.map((p) => p.token));
  let introspections = 0;
  const violations = [];
  const deadline = Date.now() + 30_000;

  // 6 workers introspect random tokens (live or dead) concurrently until the changes are done
  let changing = true;
  const all = pats.map((p) => p.token);
  const worker = async () => {
    while ((changing || introspections < 400) && Date.now() < deadline) {
      const t = all[Math.floor(rand() * all.length)];
      const started = Date.now();
      const diedAt = dead.get(t);
      const r = await introspect(srv.url, t);
      introspections++;
      assert.equal(r.status, 200, r.text);
      if (diedAt !== undefined && diedAt <= started && r.text !== INACTIVE) {
        violations.push(`${t.slice(0, 10)}: active ${started - diedAt} ms after its change`);
      }
    }
  };
  const changes = async () => {
    const order = pats.slice().sort(() => rand() - 0.5).slice(0, 16);
    for (const [i, p] of order.entries()) {
      if (i % 2 === 0) {
        const r = await userCall(srv.url, user, "DELETE", `/api/pats/${p.id}`);
        assert.equal(r.status, 204, r.text);
        dead.set(p.token, Date.now());
        live.delete(p.token);
      } else {
        const r = await userCall(srv.url, user, "POST", `/api/pats/${p.id}/rotate`);
        assert.equal(r.status, 201, r.text);
        dead.set(p.token, Date.now());
        live.delete(p.token);
        live.add(r.json.token);
        all.push(r.json.token);
      }
    }
    changing = false;
  };
  await Promise.all([changes(), ...Array.from({ length: 6 }, worker)]);
  assert.deepEqual(violations, [], "no revoked or rotated-away token answered active after its change");
  assert.ok(introspections >= 100, `enough introspections raced the changes (${introspections})`);
  for (const t of live) assert.equal((await introspect(srv.url, t)).json.active, true, "untouched and new tokens stay active");
  for (const t of dead.keys()) assert.equal((await introspect(srv.url, t)).text, INACTIVE);
  console.log(`load: ${introspections} introspections, ${dead.size} revocations/rotations, 0 violations`);
});

test("race: rotate and revoke of the same PAT, 20 rounds: a revoked PAT never has an active token", async () => {
  const user = "racer";
  let bothSucceeded = 0;
  for (let round = 0; round < 20; round++) {
    const pat = await createPat(srv.url, user, ["demo_api:read"]);
    const [rot, del] = await Promise.all([
      userCall(srv.url, user, "POST", `/api/pats/${pat.id}/rotate`),
      userCall(srv.url, user, "DELETE", `/api/pats/${pat.id}`),
    ]);
    assert.ok([201, 409].includes(rot.status), `round ${round}: rotate ${rot.status} ${rot.text}`);
    assert.equal(del.status, 204, `round ${round}: ${del.text}`);
    const view = await userCall(srv.url, user, "GET", `/api/pats/${pat.id}`);
    assert.equal(view.json.status, "revoked");
    assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE, `round ${round}: old token`);
    if (rot.status === 201) {
      bothSucceeded++;
      assert.equal((await introspect(srv.url, rot.json.token)).text, INACTIVE, `round ${round}: the rotation's new token`);
    }
    // a second DELETE is still 204 and changes nothing
    assert.equal((await userCall(srv.url, user, "DELETE", `/api/pats/${pat.id}`)).status, 204);
  }
  console.log(`race: both rotate and revoke succeeded in ${bothSucceeded} of 20 rounds; no live token left`);
});

test("a JWT exchanged from a PAT is refused once the PAT is revoked or rotated; 15 minutes by default", async () => {
  for (const kill of ["revoke", "rotate"]) {
    const pat = await createPat(srv.url, "jay", ["demo_api:read"]);
    const r = await token({ grant_type: TE, client_id: "pat_client", subject_token: pat.token, subject_token_type: TT_AT });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.expires_in, 900);
    const payload = JSON.parse(Buffer.from(r.json.access_token.split(".")[1], "base64url"));
    assert.equal(payload.pat_id, pat.id, "the JWT names its source PAT");
    assert.equal((await introspect(srv.url, r.json.access_token)).json.active, true);
    if (kill === "revoke") {
      assert.equal((await userCall(srv.url, "jay", "DELETE", `/api/pats/${pat.id}`)).status, 204);
    } else {
      assert.equal((await userCall(srv.url, "jay", "POST", `/api/pats/${pat.id}/rotate`)).status, 201);
    }
    assert.equal((await introspect(srv.url, r.json.access_token)).text, INACTIVE, kill);
  }
});

test("disabling pat_client stops PAT creation and exchange; its PATs go inactive; re-enabling restores them", async () => {
  const pat = await createPat(srv.url, "kim", ["demo_api:read"]);
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  assert.equal((await admin("PATCH", "/admin/clients/pat_client", { enabled: false })).status, 200);
  try {
    const c = await userCall(srv.url, "kim", "POST", "/api/pats", { name: "x", scopes: ["demo_api:read"], expires_in_days: 1 });
    assert.equal(c.status, 400, c.text);
    assert.equal(c.json.error, "unauthorized_client");
    // this location forgot its cached client record at once
    assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
    const e = await form(`${srv.url}/oauth/token`, enc({ grant_type: TE, subject_token: pat.token, subject_token_type: TT_AT }), {
      authorization: "Basic " + Buffer.from("demo_client:demo-client-secret").toString("base64"),
    });
    assert.equal(e.status, 400, e.text);
    assert.equal(e.json.error, "invalid_grant");
  } finally {
    assert.equal((await admin("PATCH", "/admin/clients/pat_client", { enabled: true })).status, 200);
  }
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
});

test("a client or resource deleted and created again with the same id does not revive old tokens", async () => {
  const created = async (path, body) => {
    const r = await admin("POST", path, body);
    assert.equal(r.status, 201, r.text);
    return r.json;
  };
  const cc = async (id, secret) => {
    const r = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials", {
      authorization: "Basic " + Buffer.from(`${id}:${secret}`).toString("base64"),
    });
    assert.equal(r.status, 200, r.text);
    return r.json.access_token;
  };
  const asResource = (id, secret) => "Basic " + Buffer.from(`${id}:${secret}`).toString("base64");
  const r1 = await created("/admin/resources", { id: "mv_one", scopes: ["mv:read"] });
  const c1 = await created("/admin/clients", { id: "mv_client", allowed_scopes: ["mv:read"] });
  const old = await cc("mv_client", c1.client_secret);
  assert.equal((await introspect(srv.url, old, asResource("mv_one", r1.secret))).json.active, true);

  // the scope moves to another resource: it does not see the old token
  assert.equal((await admin("DELETE", "/admin/resources/mv_one")).status, 204);
  const r2 = await created("/admin/resources", { id: "mv_two", scopes: ["mv:read"] });
  assert.equal((await introspect(srv.url, old, asResource("mv_two", r2.secret))).text, INACTIVE, "new owner of the scope");
  const fresh = await cc("mv_client", c1.client_secret);
  assert.equal((await introspect(srv.url, fresh, asResource("mv_two", r2.secret))).json.active, true, "a token issued now");

  // the client is deleted and created again: its old tokens stay dead
  assert.equal((await admin("DELETE", "/admin/clients/mv_client")).status, 204);
  const c2 = await created("/admin/clients", { id: "mv_client", allowed_scopes: ["mv:read"] });
  assert.equal((await introspect(srv.url, fresh, asResource("mv_two", r2.secret))).text, INACTIVE, "old client's token");
  const mine = await cc("mv_client", c2.client_secret);
  assert.equal((await introspect(srv.url, mine, asResource("mv_two", r2.secret))).json.active, true);
});
