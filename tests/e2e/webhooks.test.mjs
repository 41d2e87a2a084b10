// Signed webhooks on the real runtime: endpoints registered through /admin/webhooks, security
// events queued after the response and delivered by the Worker's own queue consumer (local
// Queues under `wrangler dev`) to a real HTTP receiver started here, which verifies every
// delivery with node:crypto (an implementation independent of patgate's), including a retry
// after the receiver first answers 500, and each endpoint's event filter.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareState, startDevServer, writeConfig, queryLocalD1, NO_RATE_LIMITS } from "../../scripts/devserver.mjs";
import { ROOT } from "../../scripts/tools.mjs";
import { startServer, createPat, userCall, call, ADMIN, eventually, TEST_VARS } from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const RECEIVER_PORT = 8842 + OFFSET;
const RECEIVER = `http://127.0.0.1:${RECEIVER_PORT}`;

/** Every request the receiver got: { path, headers, body, status }. */
const received = [];
/** Per path, the statuses to answer next (then 200). */
const script = new Map();
let receiver;
let srv;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const queued = script.get(req.url) ?? [];
      const status = queued.length ? queued.shift() : 200;
      const entry = { path: req.url, method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), status, aborted: false };
      received.push(entry);
      // "hang": never answer; the sender has to give up (its timeout) and close the connection.
      if (status === "hang") {
        res.on("close", () => (entry.aborted = true));
        return;
      }
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status === 200 ? "ok" : "try again");
    });
  });
  await new Promise((resolve, reject) => {
    receiver.once("error", reject);
    receiver.listen(RECEIVER_PORT, "127.0.0.1", resolve);
  });
  // A short delivery timeout, so that the hanging endpoint below is given up on quickly.
  srv = await startServer("webhooks", 8841, { WEBHOOK_TIMEOUT_SECONDS: "2" });
});
after(async () => {
  await srv?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => (receiver ? receiver.close(r) : r()));
});

/** Standard Webhooks verification as a receiver would write it (README "Webhooks"). */
function verify(secret, headers, body, { toleranceSecs = 300 } = {}) {
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  const sigs = headers["webhook-signature"];
  if (!id || !ts || !sigs) return false;
  if (Math.abs(Date.now() / 1000 - Number(ts)) > toleranceSecs) return false;
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest();
  return sigs.split(" ").some((s) => {
    const [version, b64] = s.split(",");
    const got = Buffer.from(b64 ?? "", "base64");
    return version === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

function admin(method, path, body, headers = {}) {
  return call(`${srv.url}${path}`, {
    method,
    headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function register(path, eventTypes) {
  const r = await admin("POST", "/admin/webhooks", { url: `${RECEIVER}${path}`, event_types: eventTypes });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(r.headers.get("location"), `/admin/webhooks/${r.json.id}`);
  return r.json;
}

const at = (path) => received.filter((r) => r.path === path);
const typesAt = (path) => at(path).filter((r) => r.status === 200).map((r) => JSON.parse(r.body).type);

test("deliveries are signed, filtered per endpoint, and retried after a failure", async () => {
  const all = await register("/all", ["pat.created", "pat.revoked"]);
  const flaky = await register("/flaky", ["pat.revoked"]);
  const lifecycle = await register("/lifecycle", ["pat.rotated", "pat.expiring"]);
  script.set("/flaky", [500]);

  // The secret is never shown again.
  const list = await admin("GET", "/admin/webhooks");
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.webhooks.map((w) => w.id).sort(), [all.id, flaky.id, lifecycle.id].sort());
  const one = await admin("GET", `/admin/webhooks/${all.id}`);
  assert.equal(one.status, 200);
  assert.deepEqual(Object.keys(one.json).sort(), ["created_at", "enabled", "event_types", "id", "url"]);
  for (const r of [list, one]) for (const s of [all, flaky, lifecycle]) assert.ok(!r.text.includes(s.secret.slice(6)), r.text);

  const pat = await createPat(srv.url, "hooked", ["demo_api:read"]);
  const del = await userCall(srv.url, "hooked", "DELETE", `/api/pats/${pat.id}`);
  assert.equal(del.status, 204, del.text);
  const rotating = await createPat(srv.url, "hooked", ["demo_api:read"], { name: "rotating", expires_in_days: 5 });
  const rot = await userCall(srv.url, "hooked", "POST", `/api/pats/${rotating.id}/rotate`, {});
  assert.equal(rot.status, 201, rot.text);
  // The expiry scan (Cron Trigger; `--test-scheduled`): its events are delivered too.
  const cron = await call(`${srv.url}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(cron.status, 200, cron.text);

  // /all: pat.created twice and pat.revoked once, each signed with its secret.
  const allDone = await eventually(() => typesAt("/all").length >= 3, { timeoutMs: 30_000 });
  assert.ok(allDone, `deliveries to /all: ${JSON.stringify(at("/all").map((r) => r.body))}`);
  for (const r of at("/all")) {
    assert.equal(r.method, "POST");
    assert.match(r.headers["content-type"], /^application\/json/);
    assert.match(r.headers["webhook-id"], /^msg_[A-Za-z0-9_-]{22}$/);
    assert.ok(verify(all.secret, r.headers, r.body), `signature of ${r.body}`);
    assert.ok(!verify(flaky.secret, r.headers, r.body), "signed with another endpoint's secret");
    assert.ok(!verify(all.secret, r.headers, r.body + " "), "a changed body does not verify");
  }
  const revoked = at("/all").map((r) => JSON.parse(r.body)).find((p) => p.type === "pat.revoked");
  assert.equal(revoked.data.pat_id, pat.id);
  assert.equal(revoked.data.reason, "user");
  assert.match(revoked.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const created = at("/all").map((r) => JSON.parse(r.body)).filter((p) => p.type === "pat.created");
  assert.deepEqual(created.map((p) => p.data.pat_id).sort(), [pat.id, rotating.id].sort());
  assert.ok(!at("/all").some((r) => r.body.includes(pat.token) || r.body.includes(rotating.token)), "no token in a payload");

  // /flaky answered 500 first: the same message came again (same webhook-id), signed again.
  const retried = await eventually(() => typesAt("/flaky").length >= 1, { timeoutMs: 40_000 });
  assert.ok(retried, `deliveries to /flaky: ${JSON.stringify(at("/flaky").map((r) => [r.status, r.body]))}`);
  const attempts = at("/flaky");
  assert.equal(attempts.length, 2, JSON.stringify(attempts.map((r) => r.status)));
  assert.deepEqual(attempts.map((r) => r.status), [500, 200]);
  assert.equal(attempts[0].headers["webhook-id"], attempts[1].headers["webhook-id"]);
  assert.equal(attempts[0].body, attempts[1].body);
  assert.ok(Number(attempts[1].headers["webhook-timestamp"]) >= Number(attempts[0].headers["webhook-timestamp"]));
  for (const r of attempts) assert.ok(verify(flaky.secret, r.headers, r.body));
  assert.equal(JSON.parse(attempts[1].body).data.pat_id, pat.id);

  // /lifecycle: only the rotation and the 7-day expiry notice.
  const lifeDone = await eventually(() => typesAt("/lifecycle").length >= 2, { timeoutMs: 30_000 });
  assert.ok(lifeDone, `deliveries to /lifecycle: ${JSON.stringify(at("/lifecycle").map((r) => r.body))}`);
  assert.deepEqual(typesAt("/lifecycle").sort(), ["pat.expiring", "pat.rotated"]);
  for (const r of at("/lifecycle")) assert.ok(verify(lifecycle.secret, r.headers, r.body));
  const expiring = at("/lifecycle").map((r) => JSON.parse(r.body)).find((p) => p.type === "pat.expiring");
  assert.equal(expiring.data.pat_id, rotating.id);
  assert.equal(expiring.data.threshold_days, 7);

  // Filters: a sentinel event queued after everything above has reached /all, so (the local
  // queue is first in, first out) anything else meant for /all has arrived too: nothing did.
  const sentinel = await createPat(srv.url, "hooked", ["demo_api:read"], { name: "sentinel" });
  assert.ok(await eventually(() => at("/all").some((r) => r.body.includes(sentinel.id)), { timeoutMs: 30_000 }));
  assert.deepEqual(typesAt("/all").sort(), ["pat.created", "pat.created", "pat.created", "pat.revoked"]);
  assert.deepEqual(typesAt("/flaky"), ["pat.revoked"]);
  assert.equal(at("/unknown").length, 0);

  // Deleted: no more deliveries to it.
  assert.equal((await admin("DELETE", `/admin/webhooks/${all.id}`)).status, 204);
  assert.equal((await admin("GET", `/admin/webhooks/${all.id}`)).status, 404);
});

test("hostile registrations and forged admin calls change nothing", async () => {
  const before = (await admin("GET", "/admin/webhooks")).json.webhooks.length;
  const post = (body, headers) => admin("POST", "/admin/webhooks", body, headers);
  for (const url of [
    "http://hooks.example.com/h",
    "https://user:pw@hooks.example.com/h",
    "https://hooks.example.com/h#frag",
    "ftp://hooks.example.com/h",
    `https://hooks.example.com/${"a".repeat(3000)}`,
  ]) {
    const r = await post({ url, event_types: ["pat.revoked"] });
    assert.equal(r.status, 400, `${url.slice(0, 60)}: ${r.text}`);
    assert.equal(r.json.error, "invalid_request");
  }
  for (const types of [[], ["pat.nope"], ["webhook.failed"], "pat.revoked"]) {
    const r = await post({ url: "https://hooks.example.com/h", event_types: types });
    assert.equal(r.status, 400, `${JSON.stringify(types)}: ${r.text}`);
  }
  // Oversized: refused before it is read (the JSON body limit, 16 KiB).
  const big = await post({ url: "https://hooks.example.com/h", event_types: ["*"], pad: "x".repeat(20_000) });
  assert.equal(big.status, 413, big.text);
  // Forged or missing admin authentication.
  for (const authorization of ["Bearer wrong", "Bearer dev-admin-tokenx", "Basic ZGV2LWFkbWluLXRva2Vu", ""]) {
    const r = await call(`${srv.url}/admin/webhooks`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ url: "https://attacker.example/h", event_types: ["*"] }),
    });
    assert.equal(r.status, 401, `${authorization}: ${r.text}`);
    assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
  }
  const unauth = await call(`${srv.url}/admin/webhooks`);
  assert.equal(unauth.status, 401);
  const after = await admin("GET", "/admin/webhooks");
  assert.equal(after.json.webhooks.length, before);
  assert.ok(!after.text.includes("attacker.example"));
});

test("without the queue the request's outcome is unchanged (enqueue fails after the response)", async () => {
  // The same Worker with its queue producer binding removed: every enqueue fails.
  const port = 8843 + OFFSET;
  const dir = join(ROOT, "tests", ".state", `webhooks-noqueue-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const config = writeConfig(join(dir, "wrangler.toml"), { limits: NO_RATE_LIMITS });
  const toml = readFileSync(config, "utf8");
  const stripped = toml.replace(/\[\[queues\.producers\]\][^[]*/, "");
  assert.notEqual(stripped, toml);
  writeFileSync(config, stripped);
  let server;
  try {
    prepareState(dir, { config });
    const url = `http://127.0.0.1:${port}`;
    server = await startDevServer({ port, persistDir: dir, config, vars: { ...TEST_VARS, ISSUER: url } });
    const r = await call(`${url}/admin/webhooks`, {
      method: "POST",
      headers: { authorization: ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ url: `${RECEIVER}/noqueue`, event_types: ["*"] }),
    });
    assert.equal(r.status, 201, r.text);
    const pat = await createPat(url, "noqueue", ["demo_api:read"]);
    const del = await userCall(url, "noqueue", "DELETE", `/api/pats/${pat.id}`);
    assert.equal(del.status, 204, del.text);
    const got = await userCall(url, "noqueue", "GET", `/api/pats/${pat.id}`);
    assert.equal(got.status, 200, got.text);
    assert.ok(got.json.revoked_at, got.text);
    // The lost deliveries are a warning in the log, naming their message ids.
    assert.ok(
      await eventually(() => /webhooks: \d+ deliveries not queued \(msg_/.test(server.log()), { timeoutMs: 15_000 }),
      server.log().slice(-3000),
    );
    assert.equal(at("/noqueue").length, 0);
    // An expiry notice that could not be queued is released (real D1), so the next scan
    // claims it again instead of losing it.
    const expiring = await createPat(url, "noqueue", ["demo_api:read"], { name: "expiring", expires_in_days: 5 });
    const notices = () =>
      queryLocalD1(dir, `SELECT threshold_days FROM expiry_notices WHERE token_id = '${expiring.id}'`, { config });
    const lost = () => (server.log().match(/deliveries not queued/g) ?? []).length;
    for (let run = 1; run <= 2; run++) {
      const before = lost();
      // queryLocalD1 blocks this process for seconds: let the HTTP client see the server's close
      // of the idle keep-alive connection before it sends on it.
      await new Promise((r) => setTimeout(r, 500));
      const cron = await call(`${url}/__scheduled?cron=17+*+*+*+*`);
      assert.equal(cron.status, 200, cron.text);
      assert.ok(await eventually(() => lost() > before, { timeoutMs: 15_000 }), server.log().slice(-3000));
      // claimed (its deliveries failed just now), then released
      assert.ok(await eventually(() => notices().length === 0, { timeoutMs: 10_000 }), `run ${run}: ${JSON.stringify(notices())}`);
    }
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an endpoint that never answers is given up on after the timeout and retried; requests go on", async () => {
  const slow = await register("/slow", ["pat.created"]);
  script.set("/slow", ["hang"]);
  const first = await createPat(srv.url, "slowpoke", ["demo_api:read"]);
  // While (or after) its delivery hangs, requests are answered as usual.
  const second = await createPat(srv.url, "slowpoke", ["demo_api:read"], { name: "second" });
  const list = await userCall(srv.url, "slowpoke", "GET", "/api/pats");
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.pats.length, 2, list.text);

  const firstId = () => at("/slow").find((r) => r.body.includes(first.id))?.headers["webhook-id"];
  const done = await eventually(
    () => at("/slow").some((r) => r.status === 200 && r.headers["webhook-id"] === firstId()),
    { timeoutMs: 40_000 },
  );
  assert.ok(done, JSON.stringify(at("/slow").map((r) => [r.status, r.aborted, r.body])));
  const attempts = at("/slow").filter((r) => r.headers["webhook-id"] === firstId());
  assert.deepEqual(attempts.map((r) => r.status), ["hang", 200]);
  assert.equal(attempts[0].aborted, true, "the hanging attempt was abandoned by the sender");
  for (const r of attempts) assert.ok(verify(slow.secret, r.headers, r.body));
  assert.ok(await eventually(() => at("/slow").some((r) => r.body.includes(second.id)), { timeoutMs: 30_000 }));
  assert.match(srv.log(), /"event":"webhook.retrying"[^\n]*"error":"no answer within 2 s"/);
  assert.equal((await admin("DELETE", `/admin/webhooks/${slow.id}`)).status, 204);
});

test("a message the consumer keeps failing on ends in the dead-letter queue as webhook.failed", async () => {
  // The same Worker with max_retries = 1 on the delivery consumer: an endpoint that always
  // answers 500 is retried once (5 s), then the queue moves the message to the dead-letter queue,
  // whose consumer (this Worker) logs it as webhook.failed and acks it.
  const port = 8844 + OFFSET;
  const dir = join(ROOT, "tests", ".state", `webhooks-dlq-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const config = writeConfig(join(dir, "wrangler.toml"), { limits: NO_RATE_LIMITS });
  const toml = readFileSync(config, "utf8");
  const lowered = toml.replace(/(queue = "patgate-webhooks"\n(?:[^\n[]*\n)*?)max_retries = \d+/, "$1max_retries = 1");
  assert.notEqual(lowered, toml);
  assert.match(lowered, /dead_letter_queue = "patgate-webhooks-dlq"/);
  writeFileSync(config, lowered);
  script.set("/dead", Array(10).fill(500));
  let server;
  try {
    prepareState(dir, { config });
    const url = `http://127.0.0.1:${port}`;
    server = await startDevServer({ port, persistDir: dir, config, vars: { ...TEST_VARS, ISSUER: url } });
    const r = await call(`${url}/admin/webhooks`, {
      method: "POST",
      headers: { authorization: ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ url: `${RECEIVER}/dead`, event_types: ["pat.created"] }),
    });
    assert.equal(r.status, 201, r.text);
    const pat = await createPat(url, "deadletter", ["demo_api:read"]);
    const attempts = () => at("/dead").filter((x) => x.body.includes(pat.id));
    assert.ok(await eventually(() => attempts().length >= 2, { timeoutMs: 30_000 }), JSON.stringify(attempts().map((x) => x.status)));
    const msgId = attempts()[0].headers["webhook-id"];
    const line = () => server.log().split("\n").find((l) => l.includes('"event":"webhook.failed"') && l.includes(msgId));
    assert.ok(await eventually(() => line() !== undefined, { timeoutMs: 30_000 }), server.log().slice(-3000));
    const failed = JSON.parse(line().slice(line().indexOf("{"), line().lastIndexOf("}") + 1));
    assert.equal(failed.type, "pat.created");
    assert.match(failed.error, /dead-letter/);
    // Not delivered again from the dead-letter queue.
    await new Promise((res) => setTimeout(res, 2000));
    assert.equal(attempts().length, 2, JSON.stringify(attempts().map((x) => x.status)));
  } finally {
    script.delete("/dead");
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
