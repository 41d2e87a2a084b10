// Storage operation counts on the hot path, measured with the dev-only counters (DEV_COUNTERS).
//
// The counters are global to the worker, so the measuring window is fenced against background
// work: this file has its own server (no deferred work of other tests can land in it), the
// registry cache and the last-use coalescing window are longer than any run of this file (no
// refresh and no Durable Object call inside the window), and the window starts only after the
// last-use flush of the warm-up is visible in D1 (polled, not slept).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, createPat, introspect, call, flipLast, eventually, userCall, form, makeToken } from "./helpers.mjs";

let srv;
before(async () => {
  srv = await startServer("counters", 8818, { REGISTRY_CACHE_SECONDS: "3600", LAST_USED_COALESCE_SECONDS: "3600" });
});
after(async () => { await srv?.stop(); });

const KEYS = ["kv_get", "kv_put", "kv_delete", "d1_query", "do_call"];
const counters = async () => (await call(`${srv.url}/_dev/counters`)).json;
const diff = (a, b) => Object.fromEntries(KEYS.map((k) => [k, b[k] - a[k]]));

test("dev counters: an active PAT costs 1 KV read and 0 D1 queries; rejected inputs cost nothing", async () => {
  const probe = await call(`${srv.url}/_dev/counters`);
  assert.equal(probe.status, 200, `/_dev/counters answered ${probe.status}`);
  for (const k of KEYS) assert.equal(typeof probe.json[k], "number", `counter ${k}`);

  const pat = await createPat(srv.url, "counted");
  for (let i = 0; i < 3; i++) assert.equal((await introspect(srv.url, pat.token)).json.active, true); // warm-up
  // fence: the warm-up's last-use report has been flushed to D1 (nothing of it is still pending)
  const flushed = await eventually(async () => {
    const v = await userCall(srv.url, "counted", "GET", `/api/pats/${pat.id}`);
    return v.json?.last_used_at ? v.json : null;
  }, { timeoutMs: 30_000 });
  assert.ok(flushed, "the warm-up's last use reached D1");

  const n = 20;
  const a = await counters();
  for (let i = 0; i < n; i++) assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  const b = await counters();
  assert.deepEqual(diff(a, b), { kv_get: n, kv_put: 0, kv_delete: 0, d1_query: 0, do_call: 0 }, `${n} introspections`);

  const rejected = ["garbage", flipLast(pat.token), `${"x".repeat(96)}--${pat.token}`, "pgp_", "a.b"];
  for (let i = 0; i < n; i++) {
    const r = await introspect(srv.url, rejected[i % rejected.length]);
    assert.equal(r.text, '{"active":false}', "rejected input");
  }
  const c = await counters();
  assert.deepEqual(diff(b, c), { kv_get: 0, kv_put: 0, kv_delete: 0, d1_query: 0, do_call: 0 }, "rejected inputs");
});

test("dev counters: forged well-formed tokens cost one KV read and no D1 query on every endpoint", async () => {
  const enc = (o) => new URLSearchParams(o).toString();
  const round = async (t) => {
    assert.equal((await introspect(srv.url, t)).text, '{"active":false}');
    const r = await form(`${srv.url}/oauth/revoke`, enc({ client_id: "pat_client", token: t }));
    assert.equal(r.status, 200, r.text);
    const x = await form(`${srv.url}/oauth/token`, enc({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", client_id: "pat_client", subject_token: t,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    }));
    assert.equal(x.json?.error, "invalid_grant", x.text);
  };
  await round(makeToken()); // warms the registry cache
  const n = 10;
  const a = await counters();
  for (let i = 0; i < n; i++) await round(makeToken());
  const d = diff(a, await counters());
  assert.equal(d.d1_query, 0, `no D1 query for ${n} forged tokens on three endpoints: ${JSON.stringify(d)}`);
  assert.ok(d.kv_get <= n, `at most one KV read per forged token: ${JSON.stringify(d)}`);
  assert.equal(d.kv_put + d.kv_delete + d.do_call, 0, JSON.stringify(d));
});

test("dev floor (the benchmark's floor W): one KV read per request, no D1, no patgate logic", async () => {
  const value = JSON.stringify({ kind: "pat", sub: "floor" });
  const put = await call(`${srv.url}/_dev/floor`, { method: "PUT", body: value });
  assert.equal(put.status, 204);
  const a = await counters();
  const n = 5;
  for (let i = 0; i < n; i++) {
    const r = await call(`${srv.url}/_dev/floor`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "token=anything" });
    assert.equal(r.status, 200);
    assert.equal(r.text, value, "the stored value, as is");
  }
  const b = await counters();
  assert.deepEqual(diff(a, b), { kv_get: n, kv_put: 0, kv_delete: 0, d1_query: 0, do_call: 0 }, "one KV read each, nothing else");
});
