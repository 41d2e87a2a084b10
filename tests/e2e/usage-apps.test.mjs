// The uses of an app's grant on the real runtime: the access tokens of an authorization-code
// grant (and the one its refresh gives) used N times through introspection and the gate, each
// counted by its own Durable Object like a PAT and written to the local D1 by the object's
// alarm; "Authorized applications" and GET /admin/grants then show N in the last 30 days, the
// last use and where it came from. The page is also looked at in headless Chromium (axe-core,
// phone width); its screenshots go to tests/.state/screenshots/ (apps-usage*.png); with
// UPDATE_SCREENSHOTS=1 the desktop one (the README's) goes to docs/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { startServer, call, introspect, ADMIN, devToken, eventually, sleep } from "./helpers.mjs";
import { pkce, signIn, authorizeQuery, approve, exchange, refresh, insertClient } from "./authflow.mjs";
import { CHROMIUM, ROOT } from "../../scripts/tools.mjs";

const haveBrowser = existsSync(CHROMIUM);
const LOCAL_SHOTS = join(ROOT, "tests", ".state", "screenshots");
const SHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? join(ROOT, "docs", "screenshots") : LOCAL_SHOTS;
const AXE = readFileSync(join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");
const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 8898 + OFFSET;
const CLIENT = "notes_app";
const REDIRECT = "http://127.0.0.1:4501/callback";

let srv, gate, upstream, resource;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  mkdirSync(LOCAL_SHOTS, { recursive: true });
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  upstream.listen(UPSTREAM_PORT, "127.0.0.1");
  await once(upstream, "listening");
  srv = await startServer("usage-apps", 8897, { LAST_USED_COALESCE_SECONDS: "1" });
  gate = srv.url.replace("127.0.0.1", "localhost");
  resource = `${gate}/gw/notes/`;
  await insertClient(srv, CLIENT, { redirectUris: ["http://127.0.0.1/callback"], name: "Notes Sync" });
  const route = await call(`${srv.url}/admin/routes/notes`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      path_prefix: "/gw/notes/", upstream: `http://127.0.0.1:${UPSTREAM_PORT}`, resource: "demo_api",
      rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }],
    }),
  });
  assert.equal(route.status, 201, route.text);
});

after(async () => {
  await srv?.stop();
  upstream?.closeAllConnections?.();
  upstream?.close();
});

/** A grant of the app for `user`: its tokens. */
async function grantFor(user) {
  const cookie = await signIn(srv.url, user);
  const p = { clientId: CLIENT, redirectUri: REDIRECT, resource, scope: "demo_api:read", ...pkce() };
  const { params } = await approve(srv.url, cookie, authorizeQuery(p));
  const t = await exchange(srv.url, p, params.code);
  assert.equal(t.status, 200, t.text);
  return { cookie, access: t.json.access_token, refresh: t.json.refresh_token };
}

const through = (tok, ip) =>
  call(`${gate}/gw/notes/list`, { headers: { authorization: `Bearer ${tok}`, "cf-connecting-ip": ip } });
const grants = async (user) => {
  const r = await call(`${srv.url}/admin/grants?subject=${user}`, { headers: { authorization: ADMIN } });
  assert.equal(r.status, 200, r.text);
  return r.json.grants;
};

test("a grant's access tokens used N times show N on the page and in the admin API after the write", async () => {
  const ivy = await grantFor("ivy");
  const other = await grantFor("jules");
  const before = await grants("ivy");
  assert.equal(before.length, 1);
  assert.deepEqual(before[0].usage, { last_used_at: null, use_count: 0, last_30_days: 0, last_used_from: [] });

  // 3 introspections and 2 gated calls with the first access token, then, after a refresh, 2
  // gated calls with the new one from another address: 7 uses of the app's grant
  for (let i = 0; i < 3; i++) assert.equal((await introspect(srv.url, ivy.access)).json.active, true);
  for (let i = 0; i < 2; i++) assert.equal((await through(ivy.access, "198.51.100.4")).status, 200);
  // a second later: the refreshed token is the newer one, and the one used last
  await sleep(1100);
  const r = await refresh(srv.url, CLIENT, ivy.refresh);
  assert.equal(r.status, 200, r.text);
  for (let i = 0; i < 2; i++) assert.equal((await through(r.json.access_token, "203.0.113.77")).status, 200);
  // another user's grant of the same app, used once: not ivy's
  assert.equal((await through(other.access, "192.0.2.1")).status, 200);

  let last;
  const g = await eventually(async () => {
    last = (await grants("ivy"))[0];
    return last.usage.last_30_days === 7 ? last : null;
  }, { timeoutMs: 30_000 });
  assert.ok(g, `7 uses counted: ${JSON.stringify(last)}`);
  assert.equal(g.usage.use_count, 7);
  assert.equal(typeof g.usage.last_used_at, "number");
  assert.ok(Math.abs(g.usage.last_used_at - Date.now() / 1000) < 120, "last used just now");
  assert.equal(g.usage.last_used_from[0].via, "gate");
  assert.equal(g.usage.last_used_from[0].ip, "203.0.113.77", "where the most recently used token was used from");
  const j = await eventually(async () => ((await grants("jules"))[0].usage.use_count === 1 ? true : null), { timeoutMs: 30_000 });
  assert.ok(j, "jules's grant counts its own use only");

  // the page: the row of the app says 7, when and where from
  const page = await call(`${srv.url}/tokens/apps`, { headers: { cookie: ivy.cookie } });
  assert.equal(page.status, 200);
  const row = page.text.split("<tbody>")[1].split("</tbody>")[0].replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");
  assert.match(row, /Notes Sync/);
  assert.match(row, /from Gate route notes · .*203\.0\.113\.77/);
  assert.match(row, / 7 Revoke/, row);
});

test("the page in Chromium: readable at desktop and phone width, axe-core clean", { skip: haveBrowser ? false : `no chromium (${CHROMIUM})` }, async () => {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
  });
  try {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(e.message));
    await page.setBypassCSP(true); // only to inject axe-core
    await page.setExtraHTTPHeaders({ "cf-access-jwt-assertion": devToken("ivy") });
    await page.setViewport({ width: 1000, height: 600, deviceScaleFactor: 1 });
    await page.goto(`${srv.url}/tokens/apps`);
    const cells = await page.$$eval("tbody td", (tds) => Object.fromEntries(tds.map((t) => [t.dataset.label ?? "actions", t.innerText.trim()])));
    assert.equal(cells["Uses, last 30 days"], "7");
    assert.match(cells["Last used"], /from Gate route notes/);
    await page.addScriptTag({ content: AXE });
    const bad = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id);
    });
    assert.deepEqual(bad, []);
    await page.screenshot({ path: join(SHOTS, "apps-usage.png"), fullPage: true });
    await page.setViewport({ width: 375, height: 740, deviceScaleFactor: 2 });
    await page.goto(`${srv.url}/tokens/apps`);
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375, "no sideways scroll at phone width");
    await page.screenshot({ path: join(LOCAL_SHOTS, "apps-usage-phone.png"), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
