// Reuse detection on the real runtime: a token rotated away and used after it stopped
// working is inactive, recorded on its PAT with where the request came from (CF-Connecting-IP,
// request.cf colo and country), logged as a pat.reuse_detected event, and, for a PAT created with
// revoke_on_reuse, kills the whole PAT: the current token and the JWTs exchanged from it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, createPat, introspect, userCall, form, eventually, sleep, makeToken, RFC3339_RE } from "./helpers.mjs";

let srv;
// logLevel log: the Worker's console.log lines (its security events) reach `srv.log()`
before(async () => { srv = await startServer("reuse", 8831, {}, { logLevel: "log" }); });
after(async () => { await srv?.stop(); });

const INACTIVE = '{"active":false}';
const rotate = (user, id, body) => userCall(srv.url, user, "POST", `/api/pats/${id}/rotate`, body);
const view = async (user, id) => {
  const r = await userCall(srv.url, user, "GET", `/api/pats/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
};
/** The security events of this server's log, parsed (one JSON line each). */
const events = (name) => srv.log().split("\n").flatMap((line) => {
  const at = line.indexOf('{"event":');
  if (at < 0) return [];
  try {
    const e = JSON.parse(line.slice(at));
    return e.event === name ? [e] : [];
  } catch {
    return [];
  }
});

test("a token rotated away without grace and used again: inactive, recorded with its origin, an event", async () => {
  const pat = await createPat(srv.url, "reuse-a", ["demo_api:read"]);
  assert.equal(pat.revoke_on_reuse, false, "off by default");
  const r = await rotate("reuse-a", pat.id);
  assert.equal(r.status, 201, r.text);
  const current = r.json.token;
  assert.equal((await view("reuse-a", pat.id)).reuse_count, 0);

  const used = await introspect(srv.url, pat.token, undefined, { "cf-connecting-ip": "203.0.113.9" });
  assert.equal(used.text, INACTIVE);
  const v = await view("reuse-a", pat.id);
  assert.equal(v.status, "active");
  assert.equal(v.reuse_count, 1, JSON.stringify(v));
  assert.match(v.first_reuse_at, RFC3339_RE);
  assert.equal(v.last_reuse.at, v.first_reuse_at);
  assert.equal(v.last_reuse.ip, "203.0.113.9");
  assert.match(v.last_reuse.token_rotated_at, RFC3339_RE);
  const t = (s) => Date.parse(s);
  assert.ok(t(pat.created_at) <= t(v.last_reuse.token_rotated_at), JSON.stringify(v));
  assert.ok(t(v.last_reuse.token_rotated_at) <= t(v.last_reuse.at), JSON.stringify(v));
  // colo and country come from request.cf (wrangler dev serves a stand-in object offline)
  assert.match(v.last_reuse.colo, /^[A-Z0-9]{2,8}$/, JSON.stringify(v.last_reuse));
  assert.match(v.last_reuse.country, /^[A-Z0-9]{2}$/, JSON.stringify(v.last_reuse));
  // the owner's current token keeps working
  assert.equal((await introspect(srv.url, current)).json.active, true);
  // the event, without the token
  const seen = await eventually(() => events("pat.reuse_detected").find((e) => e.pat_id === pat.id));
  assert.ok(seen, "a pat.reuse_detected line");
  assert.equal(seen.ip, "203.0.113.9");
  assert.equal(seen.sub, "reuse-a");
  assert.equal(seen.family_revoked, false);
  assert.equal(seen.colo, v.last_reuse.colo);
  assert.ok(!srv.log().includes(pat.token), "no token in the log");

  // used again at once: still inactive, not recorded again (the marker answers for a while)
  for (let i = 0; i < 3; i++) assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
  assert.equal((await view("reuse-a", pat.id)).reuse_count, 1);
  // the list carries the same fields
  const list = await userCall(srv.url, "reuse-a", "GET", "/api/pats");
  const listed = list.json.pats.find((p) => p.id === pat.id);
  assert.equal(listed.reuse_count, 1);
  assert.deepEqual(listed.last_reuse, v.last_reuse);
});

test("with grace: active with the claims during the grace, detected after it", async () => {
  const pat = await createPat(srv.url, "reuse-b", ["demo_api:read"]);
  const grace = 3;
  const r = await rotate("reuse-b", pat.id, { grace_seconds: grace });
  assert.equal(r.status, 201, r.text);
  const until = Date.parse(r.json.previous_token_valid_until) / 1000;
  let sawActive = false;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = await introspect(srv.url, pat.token);
    assert.equal(got.status, 200);
    if (!got.json.active) break;
    sawActive = true;
    assert.equal(got.json.grace_until, until, got.text);
    assert.equal(typeof got.json.rotated_at, "number", got.text);
    assert.equal((await view("reuse-b", pat.id)).reuse_count, 0, "nothing detected during the grace");
    assert.ok(Date.now() < deadline, "the old token never stopped");
    await sleep(300);
  }
  assert.ok(sawActive, "the old token worked during its grace");
  // the first inactive answer was the detection
  const v = await view("reuse-b", pat.id);
  assert.equal(v.reuse_count, 1, JSON.stringify(v));
  assert.ok(Date.parse(v.last_reuse.at) / 1000 >= until - 1, JSON.stringify(v));
  assert.equal(v.status, "active");
  assert.equal((await introspect(srv.url, r.json.token)).json.active, true);
});

test("revoke_on_reuse: a reuse kills the current token and the JWTs exchanged from it", async () => {
  const pat = await createPat(srv.url, "reuse-c", ["demo_api:read"], { revoke_on_reuse: true });
  assert.equal(pat.revoke_on_reuse, true);
  assert.equal((await view("reuse-c", pat.id)).revoke_on_reuse, true);
  const r = await rotate("reuse-c", pat.id);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.revoke_on_reuse, true);
  const current = r.json.token;
  const x = await form(`${srv.url}/oauth/token`, new URLSearchParams({
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    client_id: "pat_client",
    subject_token: current,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
  }).toString());
  assert.equal(x.status, 200, x.text);
  const jwt = x.json.access_token;
  assert.equal((await introspect(srv.url, jwt)).json.active, true);
  assert.equal((await introspect(srv.url, current)).json.active, true);

  assert.equal((await introspect(srv.url, pat.token)).text, INACTIVE);
  for (const [what, t] of [["current token", current], ["exchanged JWT", jwt], ["old token", pat.token]]) {
    assert.equal((await introspect(srv.url, t)).text, INACTIVE, what);
  }
  const v = await view("reuse-c", pat.id);
  assert.equal(v.status, "revoked");
  assert.equal(v.revoked_reason, "reuse");
  assert.equal(v.reuse_count, 1);
  const revoked = await eventually(() => events("pat.revoked").find((e) => e.pat_id === pat.id));
  assert.ok(revoked, "a pat.revoked line");
  assert.equal(revoked.via, "reuse");
  const seen = await eventually(() => events("pat.reuse_detected").find((e) => e.pat_id === pat.id));
  assert.equal(seen?.family_revoked, true);
  // a PAT without the option, same steps: its current token stays active
  const plain = await createPat(srv.url, "reuse-c", ["demo_api:read"], { name: "plain" });
  const r2 = await rotate("reuse-c", plain.id);
  assert.equal((await introspect(srv.url, plain.token)).text, INACTIVE);
  assert.equal((await introspect(srv.url, r2.json.token)).json.active, true);
  assert.equal((await view("reuse-c", plain.id)).status, "active");
});

test("the option is strict: only a boolean", async () => {
  for (const bad of ["yes", 1, null]) {
    const r = await userCall(srv.url, "reuse-d", "POST", "/api/pats", {
      name: "x", scopes: ["demo_api:read"], expires_in_days: 1, revoke_on_reuse: bad,
    });
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
    assert.equal(r.json.error, "invalid_request");
  }
  assert.equal((await userCall(srv.url, "reuse-d", "GET", "/api/pats")).json.pats.length, 0);
});

test("a CF-Connecting-IP that is no IP is not stored; a forged token records nothing", async () => {
  const pat = await createPat(srv.url, "reuse-e", ["demo_api:read"]);
  assert.equal((await rotate("reuse-e", pat.id)).status, 201);
  for (const junk of ["not-an-ip", "203.0.113.9, 10.0.0.1", "<script>alert(1)</script>", "1".repeat(300)]) {
    const r = await introspect(srv.url, pat.token, undefined, { "cf-connecting-ip": junk });
    assert.equal(r.text, INACTIVE, junk);
  }
  const v = await view("reuse-e", pat.id);
  assert.equal(v.reuse_count, 1, "the first use was recorded, the next ones answered by the marker");
  assert.equal(v.last_reuse.ip, null, JSON.stringify(v.last_reuse));
  // a well-formed token (valid checksum) that was never issued: inactive, nothing recorded
  const forged = makeToken();
  assert.equal((await introspect(srv.url, forged)).text, INACTIVE);
  assert.equal((await view("reuse-e", pat.id)).reuse_count, 1);
});
