// Webhook deliveries you can inspect and replay, on the real runtime: every attempt of the
// Worker's queue consumer is logged in D1 and listed per endpoint (event, time, attempt, status,
// latency, error); one is sent again on request with the same webhook-id; a test ping; an
// endpoint that keeps failing is disabled with a `webhook_endpoint.disabled` event delivered to
// another endpoint, and enabled again by an operator. The receiver is a Node server started
// here that verifies every signature with node:crypto.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import { startServer, createPat, call, ADMIN, eventually, assertError } from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const RECEIVER_PORT = 8853 + OFFSET;
const RECEIVER = `http://127.0.0.1:${RECEIVER_PORT}`;

const received = [];
/** Per path: the statuses to answer next (then `fallback`, default 200). */
const script = new Map();
const fallback = new Map();
let receiver, srv;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const queued = script.get(req.url) ?? [];
      const status = queued.length ? queued.shift() : fallback.get(req.url) ?? 200;
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), status });
      res.writeHead(status, { "content-type": "text/plain" });
      res.end("-");
    });
  });
  await new Promise((resolve, reject) => {
    receiver.once("error", reject);
    receiver.listen(RECEIVER_PORT, "127.0.0.1", resolve);
  });
  srv = await startServer("deliveries", 8858, { WEBHOOK_DISABLE_AFTER_SECONDS: "3" });
});
after(async () => {
  await srv?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => (receiver ? receiver.close(r) : r()));
});

function verify(secret, headers, body) {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const want = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`).digest();
  return (headers["webhook-signature"] ?? "").split(" ").some((s) => {
    const got = Buffer.from(s.split(",")[1] ?? "", "base64");
    return s.startsWith("v1,") && got.length === want.length && timingSafeEqual(got, want);
  });
}

const admin = (method, path, body) =>
  call(`${srv.url}${path}`, {
    method,
    headers: { authorization: ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function register(path, event_types) {
  const r = await admin("POST", "/admin/webhooks", { url: `${RECEIVER}${path}`, event_types });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const deliveries = async (id) => {
  const r = await admin("GET", `/admin/webhooks/${id}/deliveries`);
  assert.equal(r.status, 200, r.text);
  return r.json.deliveries;
};
const at = (path) => received.filter((r) => r.path === path);

test("a test ping is delivered, signed, and its attempt is listed with status and latency", async () => {
  const ep = await register("/ping", ["pat.revoked"]);
  const ping = await admin("POST", `/admin/webhooks/${ep.id}/ping`);
  assert.equal(ping.status, 202, ping.text);
  assert.match(ping.json.msg_id, /^msg_/);
  const got = await eventually(() => at("/ping")[0]);
  assert.ok(got, "the ping arrived");
  assert.equal(got.headers["webhook-id"], ping.json.msg_id);
  assert.ok(verify(ep.secret, got.headers, got.body), "signed with the endpoint's secret");
  const body = JSON.parse(got.body);
  assert.equal(body.type, "webhook.ping");
  assert.equal(body.data.endpoint, ep.id);
  const list = await eventually(async () => ((await deliveries(ep.id)).length ? deliveries(ep.id) : null));
  assert.equal(list.length, 1);
  const d = list[0];
  assert.equal(d.msg_id, ping.json.msg_id);
  assert.equal(d.type, "webhook.ping");
  assert.equal(d.attempt, 1);
  assert.equal(d.outcome, "delivered");
  assert.equal(d.status, 200);
  assert.equal(typeof d.latency_ms, "number");
  assert.ok(Number.isInteger(d.at) && Math.abs(d.at - Date.now() / 1000) < 120, "unix seconds, like the endpoint views");
  assert.equal(d.redelivery, false);
  assert.equal(d.payload, undefined, "the list leaves payloads out");
  const one = await admin("GET", `/admin/webhooks/${ep.id}/deliveries/${d.id}`);
  assert.equal(one.status, 200);
  assert.equal(one.json.payload, got.body, "the exact bytes sent");
  assertError(await admin("POST", "/admin/webhooks/wh_0000000000000000/ping"), 404, "not_found");
});

test("a failed attempt and its retry are both listed; a redelivery sends the same message again", async () => {
  const ep = await register("/flaky", ["pat.created"]);
  script.set("/flaky", [500]);
  await createPat(srv.url, "walt");
  const list = await eventually(async () => {
    const l = await deliveries(ep.id);
    return l.length >= 2 ? l : null;
  }, { timeoutMs: 30_000 });
  assert.ok(list, "two attempts");
  const [second, first] = list; // newest first
  assert.equal(first.attempt, 1);
  assert.equal(first.outcome, "retrying");
  assert.equal(first.status, 500);
  assert.equal(second.attempt, 2);
  assert.equal(second.outcome, "delivered");
  assert.equal(second.msg_id, first.msg_id);
  // the retry came after the schedule's 5 s, spread by at most a fifth
  const gap = second.at - first.at;
  assert.ok(gap >= 3 && gap <= 9, `retry after ${gap} s`);
  const n = at("/flaky").length;
  const again = await admin("POST", `/admin/webhooks/${ep.id}/deliveries/${second.id}/redeliver`);
  assert.equal(again.status, 202, again.text);
  assert.equal(again.json.msg_id, second.msg_id);
  const resent = await eventually(() => at("/flaky")[n]);
  assert.ok(resent, "sent again");
  assert.equal(resent.headers["webhook-id"], second.msg_id, "the same webhook-id: receivers dedupe by it");
  assert.equal(resent.body, at("/flaky")[n - 1].body, "the same payload");
  assert.ok(verify(ep.secret, resent.headers, resent.body));
  const after = await eventually(async () => {
    const l = await deliveries(ep.id);
    return l.length >= 3 ? l : null;
  });
  assert.equal(after[0].redelivery, true);
  assert.equal(after[0].attempt, 1);
  assert.equal(after[0].outcome, "delivered");
});

test("an endpoint failing for WEBHOOK_DISABLE_AFTER_SECONDS is disabled with an event, then enabled again", async () => {
  const watcher = await register("/watch", ["webhook_endpoint.disabled"]);
  const ep = await register("/down", ["pat.created"]);
  fallback.set("/down", 500);
  const ping = await admin("POST", `/admin/webhooks/${ep.id}/ping`);
  assert.equal(ping.status, 202);
  const disabled = await eventually(async () => {
    const v = (await admin("GET", `/admin/webhooks/${ep.id}`)).json;
    return v.enabled === false ? v : null;
  }, { timeoutMs: 40_000 });
  assert.ok(disabled, "disabled after its failures");
  assert.ok(Number.isInteger(disabled.disabled_at), JSON.stringify(disabled));
  assert.match(disabled.disabled_reason, /failed/);
  const note = await eventually(() => at("/watch").find((r) => JSON.parse(r.body).type === "webhook_endpoint.disabled"));
  assert.ok(note, "the watcher heard of it");
  assert.ok(verify(watcher.secret, note.headers, note.body));
  assert.equal(JSON.parse(note.body).data.endpoint, ep.id);
  // disabled: events are no longer queued for it, a ping is refused
  const before = at("/down").length;
  await createPat(srv.url, "walt");
  assertError(await admin("POST", `/admin/webhooks/${ep.id}/ping`), 409, "conflict");
  // enable it again (the receiver is back)
  fallback.set("/down", 200);
  const on = await admin("POST", `/admin/webhooks/${ep.id}/enable`);
  assert.equal(on.status, 200, on.text);
  assert.equal(on.json.enabled, true);
  assert.equal(on.json.disabled_at, undefined);
  assert.equal((await admin("POST", `/admin/webhooks/${ep.id}/ping`)).status, 202);
  const back = await eventually(() => at("/down").slice(before).find((r) => JSON.parse(r.body).type === "webhook.ping"));
  assert.ok(back, "delivered again once enabled");
  assert.ok(!at("/down").slice(before).some((r) => JSON.parse(r.body).type === "pat.created"), "nothing queued while disabled");
});

test("deliveries: unknown ids are 404, wrong methods 405, old attempts pruned by the hourly scan", async () => {
  const ep = await register("/misc", ["pat.created"]);
  for (const p of ["/deliveries/999999", "/deliveries/abc", "/deliveries/-1", "/deliveries/1e3"]) {
    assertError(await admin("GET", `/admin/webhooks/${ep.id}${p}`), 404, "not_found", p);
  }
  assertError(await admin("GET", `/admin/webhooks/${ep.id}/deliveries/1/redeliver`), 405, "method_not_allowed");
  assertError(await admin("POST", `/admin/webhooks/${ep.id}/deliveries`), 405, "method_not_allowed");
  assertError(await admin("GET", "/admin/webhooks/wh_0000000000000000/deliveries"), 404, "not_found");
  for (const q of ["?limit=0", "?limit=101", "?before=x"]) {
    assertError(await admin("GET", `/admin/webhooks/${ep.id}/deliveries${q}`), 400, "invalid_request", q);
  }
  // another endpoint's attempt is not this one's
  const other = (await deliveries((await admin("GET", "/admin/webhooks")).json.webhooks.find((w) => w.url.endsWith("/ping")).id))[0];
  assertError(await admin("GET", `/admin/webhooks/${ep.id}/deliveries/${other.id}`), 404, "not_found");
  // retention: attempts older than WEBHOOK_DELIVERY_RETENTION_DAYS go with the hourly scan
  const old = Math.floor(Date.now() / 1000) - 30 * 86_400;
  queryLocalD1(srv.dir, `UPDATE webhook_deliveries SET at = ${old} WHERE id = ${other.id}`, { config: `${srv.dir}/wrangler.toml` });
  const cron = await call(`${srv.url}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(cron.status, 200, cron.text);
  const left = await eventually(async () => {
    const rows = queryLocalD1(srv.dir, `SELECT COUNT(*) AS n FROM webhook_deliveries WHERE id = ${other.id}`, { config: `${srv.dir}/wrangler.toml` });
    return rows[0].n === 0;
  });
  assert.ok(left, "the old attempt is gone");
});
