// Token lifecycle on the real runtime: GitHub secret scanning reports (signed here with a P-256
// key generated for this run, configured inline as SECRET_SCANNING_KEYS), rotation with grace,
// self-rotation and the expiry fields of the PAT views.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { join } from "node:path";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import { startServer, createPat, introspect, userCall, call, form, assertError, eventually, sleep } from "./helpers.mjs";

const KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const { privateKey: forger } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const KEYS = JSON.stringify({
  public_keys: [{ key_identifier: KEY_ID, key: publicKey.export({ type: "spki", format: "pem" }), is_current: true }],
});

let srv;
before(async () => { srv = await startServer("lifecycle", 8820, { SECRET_SCANNING_KEYS: KEYS }); });
after(async () => { await srv?.stop(); });

const PATH = "/secret-scanning/github";
const INACTIVE = '{"active":false}';
/** base64 DER ECDSA P-256 SHA-256 signature, as GitHub sends it. */
const signature = (body, key = privateKey) => sign("sha256", Buffer.from(body), key).toString("base64");

function report(body, headers) {
  return call(`${srv.url}${PATH}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}
function signedReport(body, key = privateKey, keyId = KEY_ID) {
  return report(body, { "github-public-key-identifier": keyId, "github-public-key-signature": signature(body, key) });
}
const matches = (tokens) => JSON.stringify(tokens.map((token) => ({
  token, type: "patgate_personal_access_token", url: "https://github.com/octo/repo/blob/abc123/deploy.sh#L7", source: "content",
})));

test("a signed report revokes live PATs and access tokens at once, and says which were real", async () => {
  const pat = await createPat(srv.url, "leaky", ["demo_api:read"]);
  const keep = await createPat(srv.url, "leaky", ["demo_api:read"], { name: "kept" });
  const cc = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials", {
    authorization: "Basic " + Buffer.from("demo_client:demo-client-secret").toString("base64"),
  });
  assert.equal(cc.status, 200, cc.text);
  const access = cc.json.access_token;
  assert.match(access, /^pga_/);
  for (const t of [pat.token, access]) assert.equal((await introspect(srv.url, t)).json.active, true);

  const unknown = "pgp_" + "A".repeat(49);
  const r = await signedReport(matches([pat.token, access, unknown, "not-a-token"]));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(r.json, [
    { token_raw: pat.token, token_type: "patgate_personal_access_token", label: "true_positive" },
    { token_raw: access, token_type: "patgate_personal_access_token", label: "true_positive" },
    { token_raw: unknown, token_type: "patgate_personal_access_token", label: "false_positive" },
    { token_raw: "not-a-token", token_type: "patgate_personal_access_token", label: "false_positive" },
  ]);
  // dead at once (same location) ...
  assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
  assert.equal((await introspect(srv.url, access)).text, INACTIVE);
  // ... the owner sees why and where ...
  const view = await userCall(srv.url, "leaky", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.status, 200);
  assert.equal(view.json.status, "revoked");
  assert.equal(view.json.revoked_reason, "leaked");
  assert.equal(view.json.revoked_source_url, "https://github.com/octo/repo/blob/abc123/deploy.sh#L7");
  const list = await userCall(srv.url, "leaky", "GET", "/api/pats");
  const listed = list.json.pats.find((p) => p.id === pat.id);
  assert.equal(listed.revoked_reason, "leaked");
  // ... and nothing else changed
  assert.equal((await introspect(srv.url, keep.token)).json.active, true);
  assert.equal(list.json.pats.find((p) => p.id === keep.id).revoked_reason, null);
});

test("unsigned, forged, unknown-key, replayed-onto-another-body, oversized and malformed reports are refused and change nothing", async () => {
  const pat = await createPat(srv.url, "victim", ["demo_api:read"]);
  const body = matches([pat.token]);
  const sig = signature(body);
  const cases = [
    ["unsigned", () => report(body, {}), 401, "invalid_signature"],
    ["key id only", () => report(body, { "github-public-key-identifier": KEY_ID }), 401, "invalid_signature"],
    ["forged", () => signedReport(body, forger), 401, "invalid_signature"],
    ["unknown key id", () => report(body, { "github-public-key-identifier": "f".repeat(64), "github-public-key-signature": sig }), 401, "invalid_signature"],
    ["signature replayed onto another body", () => report(matches([pat.token, pat.token]), { "github-public-key-identifier": KEY_ID, "github-public-key-signature": sig }), 401, "invalid_signature"],
    ["garbage signature", () => report(body, { "github-public-key-identifier": KEY_ID, "github-public-key-signature": "%%%" }), 401, "invalid_signature"],
    ["oversized", () => signedReport(body + " ".repeat(70 * 1024)), 413, "invalid_request"],
    ["signed, not JSON", () => signedReport("token=" + pat.token), 400, "invalid_request"],
    ["signed, not an array", () => signedReport(JSON.stringify({ token: pat.token, type: "x" })), 400, "invalid_request"],
  ];
  for (const [what, send, status, error] of cases) {
    const r = await send();
    assertError(r, status, error, what);
    if (status === 401) assert.ok(r.headers.get("www-authenticate"), `${what}: a challenge`);
    assert.equal((await introspect(srv.url, pat.token)).json.active, true, `${what}: still active`);
  }
  const view = await userCall(srv.url, "victim", "GET", `/api/pats/${pat.id}`);
  assert.equal(view.json.status, "active");
  assert.equal(view.json.revoked_reason, null);
  // GET is not the endpoint's method
  assert.equal((await call(`${srv.url}${PATH}`)).status, 405);
  // the genuine report, sent after all that, still works
  assert.equal((await signedReport(body)).status, 200);
  assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
});

test("rotation with grace: the old token works until grace_until, says so, then stops", async () => {
  const pat = await createPat(srv.url, "rotator", ["demo_api:read"]);
  const grace = 8;
  const r = await userCall(srv.url, "rotator", "POST", `/api/pats/${pat.id}/rotate`, { grace_seconds: grace });
  assert.equal(r.status, 201, r.text);
  const next = r.json.token;
  const until = Date.parse(r.json.previous_token_valid_until) / 1000;
  assert.ok(Number.isFinite(until), r.text);
  assert.equal((await introspect(srv.url, next)).json.active, true);
  // poll the old token until it stops: every answer before grace_until is active with the claims,
  // and the first inactive answer comes at or after grace_until
  let sawActive = false;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const started = Date.now() / 1000;
    const got = await introspect(srv.url, pat.token);
    assert.equal(got.status, 200);
    if (got.json.active) {
      sawActive = true;
      assert.equal(got.json.grace_until, until, got.text);
      assert.equal(got.json.exp, until, got.text);
      assert.equal(typeof got.json.rotated_at, "number", got.text);
      assert.ok(got.json.rotated_at <= until - grace + 1, got.text);
    } else {
      assert.equal(got.text, INACTIVE);
      assert.ok(Date.now() / 1000 >= until - 1, `inactive before grace_until (asked at ${started}, until ${until})`);
      break;
    }
    assert.ok(Date.now() < deadline, "the old token never stopped");
    await sleep(500);
  }
  assert.ok(sawActive, "the old token was active during its grace");
  assert.equal((await introspect(srv.url, next)).json.active, true);
  // bounds
  for (const bad of [{ grace_seconds: -1 }, { grace_seconds: 604801 }, { grace: 5 }]) {
    assertError(await userCall(srv.url, "rotator", "POST", `/api/pats/${pat.id}/rotate`, bad), 400, "invalid_request", JSON.stringify(bad));
  }
});

test("revoking a PAT kills its old token during the grace too", async () => {
  const pat = await createPat(srv.url, "graceful", ["demo_api:read"]);
  const r = await userCall(srv.url, "graceful", "POST", `/api/pats/${pat.id}/rotate`, { grace_seconds: 3600 });
  assert.equal(r.status, 201, r.text);
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  assert.equal((await userCall(srv.url, "graceful", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
  assert.equal((await introspect(srv.url, r.json.token)).text, INACTIVE);
});

test("RFC 7009 with the old token ends its grace; the current token keeps working", async () => {
  const pat = await createPat(srv.url, "holder", ["demo_api:read"]);
  const r = await userCall(srv.url, "holder", "POST", `/api/pats/${pat.id}/rotate`, { grace_seconds: 3600 });
  assert.equal(r.status, 201, r.text);
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const rv = await form(`${srv.url}/oauth/revoke`, new URLSearchParams({ client_id: "pat_client", token: pat.token }).toString());
  assert.equal(rv.status, 200, rv.text);
  assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
  assert.equal((await introspect(srv.url, r.json.token)).json.active, true);
  assert.equal((await userCall(srv.url, "holder", "GET", `/api/pats/${pat.id}`)).json.status, "active");
});

test("self-rotation: only a PAT created with allow_self_rotation, only with itself as the bearer", async () => {
  const selfRotate = (token, body) => call(`${srv.url}/api/pats/self/rotate`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const plain = await createPat(srv.url, "robot", ["demo_api:read"]);
  assert.equal(plain.allow_self_rotation, false);
  const r403 = await selfRotate(plain.token);
  assertError(r403, 403, "insufficient_scope", "without the permission");
  assert.match(r403.headers.get("www-authenticate") ?? "", /insufficient_scope/);
  assert.equal((await introspect(srv.url, plain.token)).json.active, true);

  const bot = await createPat(srv.url, "robot", ["demo_api:read"], { name: "ci", allow_self_rotation: true });
  assert.equal(bot.allow_self_rotation, true);
  const r = await selfRotate(bot.token, { grace_seconds: 60 });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.id, bot.id);
  assert.notEqual(r.json.token, bot.token);
  assert.equal((await introspect(srv.url, r.json.token)).json.active, true);
  const old = await introspect(srv.url, bot.token);
  assert.equal(old.json.active, true, "in its grace");
  assert.equal(typeof old.json.grace_until, "number");
  // the old token, though still working, cannot rotate again
  assertError(await selfRotate(bot.token), 401, "invalid_token", "a rotated-away token");
  // neither can garbage or a user JWT
  assertError(await selfRotate("pgp_nope"), 401, "invalid_token", "garbage");
  const view = await userCall(srv.url, "robot", "GET", `/api/pats/${bot.id}`);
  assert.equal(view.json.allow_self_rotation, true);
  assert.equal(view.json.status, "active");
});

test("PAT views carry days_left and expiring_soon", async () => {
  const far = await createPat(srv.url, "expiry", ["demo_api:read"], { expires_in_days: 30 });
  const soon = await createPat(srv.url, "expiry", ["demo_api:read"], { name: "soon", expires_in_days: 7 });
  const list = await userCall(srv.url, "expiry", "GET", "/api/pats");
  const by = (id) => list.json.pats.find((p) => p.id === id);
  assert.equal(by(far.id).days_left, 30);
  assert.equal(by(far.id).expiring_soon, false);
  assert.equal(by(soon.id).days_left, 7);
  assert.equal(by(soon.id).expiring_soon, true);
});

test("the Cron expiry scan notes each PAT once per threshold (tightest window), never revoked ones", async () => {
  const mk = async (name, days) => (await createPat(srv.url, "expiring", ["demo_api:read"], { name, expires_in_days: days })).id;
  const d1 = await mk("d1", 1);
  const d5 = await mk("d5", 5);
  const d20 = await mk("d20", 20);
  const d40 = await mk("d40", 40);
  const gone = await mk("gone", 3);
  assert.equal((await userCall(srv.url, "expiring", "DELETE", `/api/pats/${gone}`)).status, 204);
  const notices = () => queryLocalD1(srv.dir, "SELECT token_id, threshold_days FROM expiry_notices ORDER BY token_id, threshold_days", {
    config: join(srv.dir, "wrangler.toml"),
  }).filter((r) => [d1, d5, d20, d40, gone].includes(r.token_id));
  // the scheduled handler, as a Cron Trigger runs it (wrangler dev --test-scheduled)
  for (let i = 0; i < 2; i++) {
    const r = await call(`${srv.url}/__scheduled?cron=17+*+*+*+*`);
    assert.equal(r.status, 200, r.text);
  }
  const want = [
    { token_id: d1, threshold_days: 1 },
    { token_id: d5, threshold_days: 7 },
    { token_id: d20, threshold_days: 30 },
  ].sort((a, b) => (a.token_id < b.token_id ? -1 : 1));
  const got = await eventually(() => {
    const n = notices();
    return n.length >= want.length ? n : null;
  });
  assert.deepEqual(got, want, "one notice per PAT and threshold, after two runs");
});
