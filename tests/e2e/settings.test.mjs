// Settings the Worker refuses to run with, on the real runtime: a configuration error answers every
// request `500 server_error` (the cause in the log), never a half-configured service. The local
// sign-in form (`DEV_SIGN_IN`) or the dev stale-KV layer (`DEV_STALE_KV_SECONDS`) with an issuer
// that is not a loopback URL, and an invalid
// `LAST_USED_FLUSH_SECONDS` (which the last-used Durable Object used to replace with 10).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, call, form, DEMO_API, createPat, eventually } from "./helpers.mjs";

let srv;
before(async () => {
  // DEV_SIGN_IN is "true" on every local server (scripts/devserver.mjs DEV_VARS)
  srv = await startServer("settings", 8852, { ISSUER: "https://patgate.example.com" }, { logLevel: "log" });
});
after(async () => { await srv?.stop(); });

async function assertRefusesEverything(what, cause) {
  for (const [path, init] of [
    ["/.well-known/oauth-authorization-server", {}],
    ["/tokens/sign-in", {}],
    ["/api/pats", { headers: { authorization: "Bearer x" } }],
  ]) {
    const r = await call(`${srv.url}${path}`, init);
    assert.equal(r.status, 500, `${what}: ${path} -> ${r.status} ${r.text}`);
    assert.equal(r.json?.error, "server_error", `${what}: ${path}`);
    assert.ok(!r.text.includes(cause), "the cause is logged, not sent");
  }
  const i = await form(`${srv.url}/oauth/introspect`, "token=x", { authorization: DEMO_API });
  assert.equal(i.status, 500, `${what}: introspection`);
  // (the runtime's log reaches us through a pipe: a moment later)
  const logged = await eventually(() => srv.log().includes(cause), { timeoutMs: 10_000, everyMs: 200 });
  assert.ok(logged, `${what}: the cause is in the log:\n${srv.log()}`);
}

test("DEV_SIGN_IN with a non-loopback issuer, then an invalid LAST_USED_FLUSH_SECONDS, refuse to serve", async () => {
  await assertRefusesEverything("DEV_SIGN_IN on a public issuer", "DEV_SIGN_IN is for local development only");
  // the dev stale-KV layer of the revocation tests, likewise
  await srv.restart({ ISSUER: "https://patgate.example.com", DEV_SIGN_IN: "false", DEV_STALE_KV_SECONDS: "30" });
  await assertRefusesEverything("DEV_STALE_KV_SECONDS on a public issuer", "DEV_STALE_KV_SECONDS is for local tests only");
  await srv.restart({ ISSUER: srv.url, LAST_USED_FLUSH_SECONDS: "ten" });
  await assertRefusesEverything("LAST_USED_FLUSH_SECONDS=ten", "LAST_USED_FLUSH_SECONDS must be an integer");
  // the same server with valid settings serves
  await srv.restart({ ISSUER: srv.url, LAST_USED_FLUSH_SECONDS: "1" });
  const d = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.issuer, srv.url);
  assert.equal((await call(`${srv.url}/tokens/sign-in`)).status, 200, "the local sign-in form on a loopback issuer");
  const pat = await createPat(srv.url, "sam", ["demo_api:read"]);
  const i = await form(`${srv.url}/oauth/introspect`, `token=${pat.token}`, { authorization: DEMO_API });
  assert.equal(i.json.active, true);
});
