// The administrators' token inventory on the real runtime: GET /admin/pats over a seeded set
// of PATs of several users (made through the API, then aged, used, leaked or expired in the
// local D1), every filter, sorting, paging to the end; and POST /admin/pats/{id}/revoke with a
// reason its owner sees, through the one revocation path (dead at once, events logged).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import { startServer, createPat, introspect, call, userCall, ADMIN, form, basic, assertError, RFC3339_RE } from "./helpers.mjs";

let srv;
const ids = {};
const DAY = 86_400;

before(async () => {
  srv = await startServer("admin-pats", 8856, {}, { logLevel: "log" });
  const now = Math.floor(Date.now() / 1000);
  const make = async (name, user, scopes, extra = {}) => {
    const p = await createPat(srv.url, user, scopes, { name, ...extra });
    ids[name] = p.id;
    return p;
  };
  await make("a-used", "alice", ["demo_api:read"]);
  await make("a-old", "alice", ["demo_api:read", "demo_api:write"]);
  await make("b-soon", "bob", ["other_api:read"], { expires_in_days: 3 });
  const revoked = await make("b-revoked", "bob", ["demo_api:read"]);
  assert.equal((await userCall(srv.url, "bob", "DELETE", `/api/pats/${revoked.id}`)).status, 204);
  await make("c-leaked", "carol", ["demo_api:read"]);
  await make("c-expired", "carol", ["demo_api:read"]);
  const tok = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials&scope=demo_api:read", {
    authorization: basic("demo_client", "demo-client-secret"),
  });
  assert.equal(tok.status, 200, tok.text);
  // Age, use, leak and expire some of them where only D1 can (the seeded state of an instance).
  const sql = [
    `UPDATE tokens SET last_used_at = ${now - DAY}, use_count = 50, created_at = ${now - 10 * DAY} WHERE id = '${ids["a-used"]}'`,
    `UPDATE tokens SET created_at = ${now - 100 * DAY} WHERE id = '${ids["a-old"]}'`,
    `UPDATE tokens SET use_count = 5, created_at = ${now - 5 * DAY} WHERE id = '${ids["b-soon"]}'`,
    `UPDATE tokens SET revoked_at = ${now - 60}, revoked_reason = 'leaked', revoked_url = 'https://example.com/leak' WHERE id = '${ids["c-leaked"]}'`,
    `UPDATE tokens SET expires_at = ${now - 10} WHERE id = '${ids["c-expired"]}'`,
  ];
  // Written by another process: the server starts again on the changed state (a request right
  // after such a write could hang on workerd's local database).
  queryLocalD1(srv.dir, sql.join("; "), { config: `${srv.dir}/wrangler.toml` });
  await srv.restart();
});
after(async () => { await srv?.stop(); });

const admin = (method, path, body) =>
  call(`${srv.url}${path}`, {
    method,
    headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
const names = (pats) => pats.map((p) => Object.keys(ids).find((k) => ids[k] === p.id) ?? p.id).sort();
const list = async (query) => {
  const r = await admin("GET", `/admin/pats${query}`);
  assert.equal(r.status, 200, `${query}: ${r.text}`);
  return r.json;
};

test("inventory: every filter over the seeded set", async () => {
  const all = await list("");
  assert.equal(all.total, 6);
  assert.deepEqual(names(all.pats), ["a-old", "a-used", "b-revoked", "b-soon", "c-expired", "c-leaked"]);
  const cases = [
    ["?status=active", ["a-old", "a-used", "b-soon"]],
    ["?status=revoked", ["b-revoked", "c-leaked"]],
    ["?status=expired", ["c-expired"]],
    ["?expiring_within_days=7", ["b-soon"]],
    ["?unused_for_days=60", ["a-old"]],
    ["?leaked=true", ["c-leaked"]],
    ["?leaked=false&user=carol", ["c-expired"]],
    ["?scope=demo_api:write", ["a-old"]],
    ["?scope=demo_api", []],
    ["?user=bob", ["b-revoked", "b-soon"]],
    ["?client=pat_client&status=active&user=alice", ["a-old", "a-used"]],
    ["?client=demo_client", []],
  ];
  for (const [q, want] of cases) {
    const r = await list(q);
    assert.deepEqual(names(r.pats), want, q);
    assert.equal(r.total, want.length, `${q}: total`);
  }
  const clients = await list("?kind=access");
  assert.equal(clients.total, 1);
  assert.equal(clients.pats[0].kind, "access");
  assert.equal(clients.pats[0].client_id, "demo_client");
  assert.equal((await list("?kind=any")).total, 7);
});

test("inventory: the view of a token, with its owner, usage and status", async () => {
  const r = await list("?user=alice&sort=uses");
  const used = r.pats[0];
  assert.equal(used.id, ids["a-used"]);
  assert.equal(used.user, "alice");
  assert.equal(used.kind, "pat");
  assert.equal(used.client_id, "pat_client");
  assert.equal(used.status, "active");
  assert.equal(used.use_count, 50);
  assert.match(used.last_used_at, RFC3339_RE);
  assert.match(used.created_at, RFC3339_RE);
  assert.deepEqual(Object.keys(used.usage).sort(), ["last_30_days", "last_7_days", "last_90_days", "today"]);
  assert.ok(!JSON.stringify(r).includes("token_hash") && !JSON.stringify(r).includes("pgp_"), "no token or hash");
  const leaked = (await list("?leaked=true")).pats[0];
  assert.equal(leaked.revoked_reason, "leaked");
  const one = await admin("GET", `/admin/pats/${ids["a-used"]}`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.json, used);
  assertError(await admin("GET", "/admin/pats/nope"), 404, "not_found");
});

test("inventory: sorted both ways and paged to the end with a stable total", async () => {
  const byUses = await list("?sort=uses&order=desc");
  assert.deepEqual(byUses.pats.slice(0, 2).map((p) => p.id), [ids["a-used"], ids["b-soon"]]);
  const byCreated = await list("?sort=created&order=asc");
  assert.equal(byCreated.pats[0].id, ids["a-old"], "the oldest first");
  const byLastUse = await list("?sort=last_used&order=desc");
  assert.equal(byLastUse.pats[0].id, ids["a-used"]);
  const byExpiry = await list("?sort=expires&order=asc");
  assert.equal(byExpiry.pats[0].id, ids["c-expired"]);
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const page = await list(`?limit=2&sort=created&order=asc${cursor ? `&cursor=${cursor}` : ""}`);
    assert.equal(page.total, 6, "the total is the whole set's on every page");
    assert.ok(page.pats.length <= 2);
    seen.push(...page.pats.map((p) => p.id));
    cursor = page.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  assert.deepEqual(seen, byCreated.pats.map((p) => p.id), "pages in order, nothing twice, nothing missed");
});

test("inventory: bad filters are 400, no admin token 401", async () => {
  for (const q of [
    "?status=bogus", "?limit=0", "?limit=101", "?cursor=%21%21", "?expiring_within_days=-1",
    "?unused_for_days=abc", "?leaked=maybe", "?sort=name", "?order=up", "?kind=jwt", "?colour=red",
    "?status=active&status=revoked", `?user=${"x".repeat(300)}`,
  ]) {
    assertError(await admin("GET", `/admin/pats${q}`), 400, "invalid_request", q);
  }
  const anon = await call(`${srv.url}/admin/pats`);
  assert.equal(anon.status, 401);
  assertError(await admin("DELETE", "/admin/pats"), 405, "method_not_allowed");
});

test("admin revoke: a reason its owner sees, dead at once, events as for every revocation", async () => {
  const pat = await createPat(srv.url, "dave", ["demo_api:read"], { name: "laptop" });
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  for (const [body, what] of [
    [{}, "no reason"], [{ reason: "" }, "empty"], [{ reason: "x".repeat(501) }, "too long"],
    [{ reason: "line\nbreak" }, "control character"], [{ reason: 5 }, "not a string"], ["[1]", "not an object"],
    [{ reason: "ok", extra: 1 }, "unknown field"],
  ]) {
    assertError(await admin("POST", `/admin/pats/${pat.id}/revoke`, body), 400, "invalid_request", what);
  }
  assert.equal((await introspect(srv.url, pat.token)).json.active, true, "refused requests changed nothing");
  const r = await admin("POST", `/admin/pats/${pat.id}/revoke`, { reason: "Left the team — rotate <CI> keys" });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, "revoked");
  assert.equal(r.json.revoked_reason, "admin");
  assert.equal(r.json.revoked_message, "Left the team — rotate <CI> keys");
  assert.equal((await introspect(srv.url, pat.token)).text, '{"active":false}', "dead at once");
  const owner = (await userCall(srv.url, "dave", "GET", `/api/pats/${pat.id}`)).json;
  assert.equal(owner.status, "revoked");
  assert.equal(owner.revoked_reason, "admin");
  assert.equal(owner.revoked_message, "Left the team — rotate <CI> keys");
  // again: already revoked, the first reason stays
  const again = await admin("POST", `/admin/pats/${pat.id}/revoke`, { reason: "second" });
  assert.equal(again.status, 200);
  assert.equal(again.json.revoked_message, "Left the team — rotate <CI> keys");
  assertError(await admin("POST", "/admin/pats/nope/revoke", { reason: "x" }), 404, "not_found");
  const events = srv.log().split("\n").flatMap((line) => {
    const at = line.indexOf('{"event":');
    try {
      return at < 0 ? [] : [JSON.parse(line.slice(at))];
    } catch {
      return [];
    }
  });
  const revoked = events.filter((e) => e.event === "pat.revoked" && e.pat_id === pat.id);
  assert.deepEqual(revoked.map((e) => [e.via, e.newly]), [["admin", true], ["admin", false]]);
  assert.ok(events.some((e) => e.event === "admin.change" && e.target === `pats/${pat.id}/revoke` && e.status === 200));
});
