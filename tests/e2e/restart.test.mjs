// State survives a restart of the local server on the same state directory (D1, KV and Durable
// Objects persist): PATs stay listed and active, revocations stay revoked, last use is kept.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, userCall, createPat, introspect, makeToken, eventually } from "./helpers.mjs";

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
