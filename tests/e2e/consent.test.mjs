// The consent page and "Authorized applications" in a real headless Chromium (Debian's
// `chromium`, driven by puppeteer-core) against the built worker on workerd: an authorization
// request as a signed-in dev user, what the page shows (escaped), Approve and Deny, the code
// exchanged, the app listed on the token page and revoked there, axe-core, phone width, no
// JavaScript, and no request leaving the origin but the redirect to the app. Saves screenshots
// into tests/.state/screenshots/ (look at them), or, with UPDATE_SCREENSHOTS=1, into
// docs/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { startServer, introspect, ADMIN, call } from "./helpers.mjs";
import { pkce, authorizeQuery, exchange, insertClient } from "./authflow.mjs";
import { CHROMIUM, ROOT } from "../../scripts/tools.mjs";

const haveBrowser = existsSync(CHROMIUM);
const skip = haveBrowser ? false : `Debian's chromium is not installed (${CHROMIUM})`;
const SHOTS = process.env.UPDATE_SCREENSHOTS === "1"
  ? join(ROOT, "docs", "screenshots")
  : join(ROOT, "tests", ".state", "screenshots");
const AXE = readFileSync(join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");
const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const CALLBACK = `http://127.0.0.1:${9072 + OFFSET}/callback`;
const CLIENT = "desk_agent";

let srv, browser, resource;

before(async () => {
  srv = await startServer("consent", 8862);
  mkdirSync(SHOTS, { recursive: true });
  await insertClient(srv, CLIENT, { redirectUris: ["http://127.0.0.1/callback"], name: "Desk Agent <script>alert(1)</script>" });
  resource = `${srv.url.replace("127.0.0.1", "localhost")}/gw/notes/`;
  const route = await call(`${srv.url}/admin/routes/notes`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ path_prefix: "/gw/notes/", upstream: "http://127.0.0.1:9", resource: "demo_api", rules: [{ methods: ["*"], scopes: ["demo_api:read"] }] }),
  });
  assert.equal(route.status, 201, route.text);
  if (!haveBrowser) return;
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
  });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
});

/** A fresh context and page; the app's callback is answered by the test (and recorded). */
async function newPage({ js = true, width = 1000, height = 760 } = {}) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const offsite = (page.offsite = []);
  const problems = (page.problems = []);
  page.callbacks = [];
  await page.setViewport({ width, height, deviceScaleFactor: 1 });
  await page.setJavaScriptEnabled(js);
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    const url = r.url();
    if (url.startsWith(srv.url + "/") || url.startsWith("data:")) return r.continue();
    if (url.startsWith(CALLBACK)) {
      page.callbacks.push(new URL(url));
      return r.respond({ status: 200, contentType: "text/plain", body: "the app received its answer" });
    }
    // the browser's own request for the app's icon, once on the app's page: not patgate's
    if (url === `${new URL(CALLBACK).origin}/favicon.ico`) return r.respond({ status: 404, body: "" });
    offsite.push(url);
    return r.abort();
  });
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded with a status of")) problems.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${page.url()}: ${e.message}`));
  page.on("dialog", async (d) => {
    problems.push(`dialog: ${d.message()}`);
    await d.dismiss();
  });
  page.close = async () => ctx.close();
  return page;
}

async function signIn(page, user) {
  await page.goto(`${srv.url}/tokens/sign-in`);
  await page.type("#user", user);
  await Promise.all([page.waitForNavigation(), page.click("main button[type=submit]")]);
}

async function axeCheck(page, what) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.html).slice(0, 3) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `${what}: axe-core serious/critical violations: ${JSON.stringify(bad, null, 1)}`);
}

function assertClean(page, what) {
  assert.deepEqual(page.offsite, [], `${what}: requests left the origin`);
  assert.deepEqual(page.problems, [], `${what}: console errors, page errors or dialogs`);
}

const flow = (over = {}) => ({ clientId: CLIENT, redirectUri: CALLBACK, resource, scope: "demo_api:read", ...pkce(), ...over });

test("consent in the browser: what it shows, Approve, the app listed and revoked on the token page", { skip }, async () => {
  const page = await newPage();
  await page.setBypassCSP(true); // only to inject axe-core
  await signIn(page, "grace");
  const p = flow({ state: "browser-1" });
  const r = await page.goto(`${srv.url}/authorize?${authorizeQuery(p)}`);
  assert.equal(r.status(), 200);
  const shown = await page.evaluate(() => document.querySelector("main").innerText);
  assert.match(shown, /Desk Agent <script>alert\(1\)<\/script>/, "the name as text");
  assert.match(shown, /registered by an administrator/i);
  assert.match(shown, new RegExp(`127\\.0\\.0\\.1:${9072 + OFFSET}`));
  assert.match(shown, /this device/i, "the local-redirect warning");
  assert.ok(shown.includes(resource), "the resource");
  assert.match(shown, /demo_api:read/);
  assert.match(shown, /Read the demo API/);
  assert.equal(await page.$$eval("script:not([src])", (s) => s.filter((x) => x.textContent.includes("alert(1)")).length), 0, "no injected script");
  await axeCheck(page, "consent page");
  await page.screenshot({ path: join(SHOTS, "consent.png"), fullPage: true });
  await page.setViewport({ width: 375, height: 740, deviceScaleFactor: 1 });
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w <= 375, `the consent page is ${w}px wide at 375px`);
  await page.screenshot({ path: join(SHOTS, "consent-phone.png"), fullPage: true });
  await page.setViewport({ width: 1000, height: 760, deviceScaleFactor: 1 });

  await Promise.all([page.waitForNavigation(), page.click("button[value=approve]")]);
  assert.equal(page.callbacks.length, 1, "redirected to the app");
  const cb = page.callbacks[0];
  assert.equal(cb.searchParams.get("state"), "browser-1");
  assert.equal(cb.searchParams.get("iss"), srv.url);
  const t = await exchange(srv.url, p, cb.searchParams.get("code"));
  assert.equal(t.status, 200, t.text);
  assert.equal((await introspect(srv.url, t.json.access_token)).json.active, true);

  await page.goto(`${srv.url}/tokens/apps`);
  const apps = await page.evaluate(() => document.querySelector("main").innerText);
  assert.match(apps, /Desk Agent <script>alert\(1\)<\/script>/);
  assert.ok(apps.includes(resource));
  assert.match(apps, /demo_api:read/);
  await axeCheck(page, "authorized applications");
  await page.screenshot({ path: join(SHOTS, "authorized-apps.png"), fullPage: true });
  await page.setViewport({ width: 375, height: 740, deviceScaleFactor: 1 });
  const w2 = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w2 <= 375, `the apps list is ${w2}px wide at 375px`);
  await page.screenshot({ path: join(SHOTS, "authorized-apps-phone.png"), fullPage: true });
  await page.setViewport({ width: 1000, height: 760, deviceScaleFactor: 1 });

  await Promise.all([page.waitForNavigation(), page.click('a[href$="/revoke"]')]);
  await axeCheck(page, "revoke confirmation");
  await Promise.all([page.waitForNavigation(), page.click("main button[type=submit]")]);
  assert.equal(new URL(page.url()).pathname, "/tokens/apps");
  assert.equal(await page.$$eval('a[href$="/revoke"]', (l) => l.length), 0, "no app left");
  assert.equal((await introspect(srv.url, t.json.access_token)).json.active, false, "its access token died at once");
  assertClean(page, "consent and apps");
  await page.close();
});

test("consent without JavaScript: Deny returns access_denied with state and iss", { skip }, async () => {
  const page = await newPage({ js: false });
  await signIn(page, "heidi");
  const p = flow({ state: "no-js" });
  await page.goto(`${srv.url}/authorize?${authorizeQuery(p)}`);
  await Promise.all([page.waitForNavigation(), page.click("button[value=deny]")]);
  const cb = page.callbacks[0];
  assert.ok(cb, "redirected to the app");
  assert.equal(cb.searchParams.get("error"), "access_denied");
  assert.equal(cb.searchParams.get("state"), "no-js");
  assert.equal(cb.searchParams.get("iss"), srv.url);
  assert.equal(cb.searchParams.get("code"), null);
  // an error before the client is known is a page, in the page's style, never a redirect
  const bad = await page.goto(`${srv.url}/authorize?${authorizeQuery(flow({ clientId: "nobody" }))}`);
  assert.equal(bad.status(), 400);
  assert.equal(page.callbacks.length, 1);
  assert.match(await page.evaluate(() => document.querySelector("main").innerText), /nobody|not known|unknown/i);
  assertClean(page, "no javascript");
  await page.close();
});
