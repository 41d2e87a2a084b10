// State survives a restart of the local server on the same state directory (D1, KV, DOs persist).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, userCall, createPat, introspect } from "./helpers.mjs";

let srv;
before(async () => { srv = await startServer("restart", 8813); });
after(async () => { await srv?.stop(); });

test("PATs, revocations and last use survive a restart", async () => {
  const kept = await createPat(srv.url, "alice", ["demo_api:read"], { name: "kept" });
  const revoked = await createPat(srv.url, "alice", ["demo_api:read"], { name: "revoked" });
  assert.equal((await introspect(srv.url, kept.token)).json.active, true);
  assert.equal((await userCall(srv.url, "alice", "DELETE", `/api/pats/${revoked.id}`)).status, 204);
  // let the last-used alarm (1 s here) write to D1 before stopping
  await new Promise((r) => setTimeout(r, 2500));

  await srv.restart();

  const list = await userCall(srv.url, "alice", "GET", "/api/pats");
  assert.equal(list.status, 200);
  const byName = Object.fromEntries(list.json.pats.map((p) => [p.name, p]));
  assert.equal(byName.kept.status, "active");
  assert.ok(byName.kept.last_used_at, "last use persisted");
  assert.equal(byName.revoked.status, "revoked");
  assert.equal((await introspect(srv.url, kept.token)).json.active, true);
  assert.deepEqual((await introspect(srv.url, revoked.token)).json, { active: false });
});
