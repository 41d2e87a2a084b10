// Usage on the real runtime: a burst of introspections and gated requests on one PAT, counted by
// the isolate, reported to the PAT's Durable Object at most once per coalescing window, written
// to the local D1 by the object's alarm, and read back exactly: per day and per (via, resource
// or route, outcome) from GET /api/pats/{id}/usage, totals in the PAT's view, the places it was
// used from, the same for a client reference token through the admin inventory.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import {
  startServer, createPat, introspect, call, userCall, ADMIN, OTHER_API, eventually, form, basic, assertError, sleep,
} from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 8855 + OFFSET;
const WINDOW_S = 2;

let srv, gateBase, upstream;

before(async () => {
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  upstream.listen(UPSTREAM_PORT, "127.0.0.1");
  await once(upstream, "listening");
  srv = await startServer("usage", 8857, { LAST_USED_COALESCE_SECONDS: String(WINDOW_S) });
  gateBase = srv.url.replace("127.0.0.1", "localhost");
  const r = await call(`${srv.url}/admin/routes/demo`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      path_prefix: "/gw/demo/",
      upstream: `http://127.0.0.1:${UPSTREAM_PORT}/base`,
      resource: "demo_api",
      rules: [
        { methods: ["GET"], scopes: ["demo_api:read"] },
        { methods: ["POST"], scopes: ["demo_api:write"] },
      ],
    }),
  });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await srv?.stop();
  upstream?.closeAllConnections?.();
  upstream?.close();
});

const counters = async () => (await call(`${srv.url}/_dev/counters`)).json;
const gate = (method, path, token, headers = {}) =>
  call(`${gateBase}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...headers } });
const utcDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const admin = (method, path, body) =>
  call(`${srv.url}${path}`, {
    method,
    headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

test("a burst of introspections and gated requests shows its exact counts per resource, outcome and day", async () => {
  const pat = await createPat(srv.url, "ursula", ["demo_api:read"]);
  const plan = [
    ...Array(25).fill(async () => assert.equal((await introspect(srv.url, pat.token)).json.active, true)),
    // other_api sees none of the token's scopes: inactive for it
    ...Array(7).fill(async () => assert.equal((await introspect(srv.url, pat.token, OTHER_API)).text, '{"active":false}')),
    ...Array(9).fill(async () => assert.equal((await gate("GET", "/gw/demo/x", pat.token)).status, 200)),
    ...Array(4).fill(async () => assertError(await gate("POST", "/gw/demo/x", pat.token), 403, "insufficient_scope")),
    ...Array(3).fill(async () => assert.equal((await gate("DELETE", "/gw/demo/x", pat.token)).status, 405)),
  ];
  const before = await counters();
  const t0 = Date.now();
  // interleaved, a few at a time, spread over more than two windows
  for (let i = 0; i < plan.length; i += 4) {
    await Promise.all(plan.slice(i, i + 4).map((f) => f()));
    await sleep(120);
  }
  const t1 = Date.now();
  const expected = {
    "introspection/demo_api/active": 25,
    "introspection/other_api/no_scope": 7,
    "gate/demo/active": 9,
    "gate/demo/insufficient_scope": 4,
    "gate/demo/method_not_allowed": 3,
  };
  const total = Object.values(expected).reduce((a, b) => a + b, 0);
  // No further request: the last window's uses go out with the flush at the window's end.
  const usage = await eventually(async () => {
    const r = await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}/usage?days=30`);
    assert.equal(r.status, 200, r.text);
    return r.json.total === total ? r.json : null;
  }, { timeoutMs: 30_000 });
  assert.ok(usage, `all ${total} uses counted`);
  const tDone = Date.now();
  const byKey = Object.fromEntries(usage.per_resource.map((c) => [`${c.via}/${c.name}/${c.outcome}`, c.uses]));
  assert.deepEqual(byKey, expected);
  assert.equal(usage.days, 30);
  assert.equal(usage.per_day.length, 30, "every day, zeros included");
  assert.equal(usage.to, utcDate(tDone));
  const used = usage.per_day.filter((d) => d.uses > 0);
  assert.ok(used.every((d) => [utcDate(t0), utcDate(t1)].includes(d.date)), JSON.stringify(used));
  assert.equal(used.reduce((a, d) => a + d.uses, 0), total);
  for (const d of used) {
    assert.equal(d.resources.reduce((a, c) => a + c.uses, 0), d.uses, "a day's resources add up to the day");
  }
  // the view's totals
  const v = (await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}`)).json;
  assert.equal(v.use_count, total);
  assert.equal(v.usage.last_7_days, total);
  assert.equal(v.usage.last_30_days, total);
  assert.ok(v.last_used_at, "last use recorded");
  // Durable Object calls: at most one per token per coalescing window (one isolate here)
  const after = await counters();
  const calls = after.do_call - before.do_call;
  const windows = Math.ceil((tDone - t0) / 1000 / WINDOW_S) + 1;
  assert.ok(calls >= 1 && calls <= windows, `${calls} DO calls over ${(tDone - t0) / 1000} s (at most ${windows})`);
  assert.ok(calls < plan.length / 4, `${plan.length} uses made only ${calls} DO calls`);
});

test("where a PAT was used from: the caller's IP and country through the gate, the API for introspection", async () => {
  const pat = await createPat(srv.url, "ursula", ["demo_api:read"]);
  assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  for (const ip of ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) {
    await sleep(WINDOW_S * 1000 + 200); // each the first use of a window: where it came from is kept
    assert.equal((await gate("GET", "/gw/demo/x", pat.token, { "cf-connecting-ip": ip })).status, 200);
  }
  const v = await eventually(async () => {
    const r = (await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}`)).json;
    return r.last_used_from?.length === 4 ? r : null;
  }, { timeoutMs: 30_000 });
  assert.ok(v, "four places");
  const from = v.last_used_from;
  assert.deepEqual(from.map((f) => f.ip ?? null), ["203.0.113.3", "203.0.113.2", "203.0.113.1", null], "most recent first");
  for (const f of from.slice(0, 3)) {
    assert.equal(f.via, "gate");
    assert.equal(f.name, "demo");
    assert.match(f.country, /^[A-Z0-9]{2}$/, JSON.stringify(f));
    assert.match(f.colo, /^[A-Z0-9]{2,8}$/, JSON.stringify(f));
  }
  const api = from[3];
  assert.equal(api.via, "introspection");
  assert.equal(api.name, "demo_api", "the API that asked, not a client IP");
  assert.equal(api.ip, undefined);
  assert.equal(api.country, undefined);
  assert.equal(api.colo, undefined);
  assert.ok(Date.parse(from[0].last_at) >= Date.parse(from[0].first_at));
});

test("usage API: bad input is 400, another user's PAT 404, no identity 401", async () => {
  const pat = await createPat(srv.url, "ursula", ["demo_api:read"]);
  for (const days of ["0", "91", "-1", "abc", "1e2", "%2B5"]) {
    assertError(await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}/usage?days=${days}`), 400, "invalid_request", days);
  }
  const one = await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}/usage?days=1`);
  assert.equal(one.status, 200);
  assert.equal(one.json.per_day.length, 1);
  assert.equal(one.json.total, 0);
  const ninety = await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}/usage?days=90`);
  assert.equal(ninety.json.per_day.length, 90);
  assert.equal((await userCall(srv.url, "ursula", "GET", `/api/pats/${pat.id}/usage`)).json.days, 30, "default 30");
  assertError(await userCall(srv.url, "mallory", "GET", `/api/pats/${pat.id}/usage`), 404, "not_found");
  assertError(await userCall(srv.url, "ursula", "GET", `/api/pats/nope/usage`), 404, "not_found");
  const anon = await call(`${srv.url}/api/pats/${pat.id}/usage`);
  assert.equal(anon.status, 401);
  assertError(await userCall(srv.url, "ursula", "POST", `/api/pats/${pat.id}/usage`, {}), 405, "method_not_allowed");
});

test("client reference tokens are counted per token and seen in the admin inventory", async () => {
  const tok = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials&scope=demo_api:read", {
    authorization: basic("demo_client", "demo-client-secret"),
  });
  assert.equal(tok.status, 200, tok.text);
  const token = tok.json.access_token;
  for (let i = 0; i < 6; i++) assert.equal((await introspect(srv.url, token)).json.active, true);
  const row = await eventually(async () => {
    const r = await admin("GET", "/admin/pats?kind=access&client=demo_client");
    assert.equal(r.status, 200, r.text);
    return r.json.pats.find((p) => p.use_count === 6) ?? null;
  }, { timeoutMs: 30_000 });
  assert.ok(row, "the client token's 6 uses");
  assert.equal(row.kind, "access");
  const u = await admin("GET", `/admin/pats/${row.id}/usage?days=7`);
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(u.json.per_resource, [{ via: "introspection", name: "demo_api", outcome: "active", uses: 6 }]);
});
