// A token's usage page in a real headless Chromium against the built worker on workerd: real uses
// (introspection and the gate) reach the chart through the token's Durable Object and D1, earlier
// days are seeded in the local D1 (as the object would have written them), and the page is looked
// at at phone and desktop width: the chart's bars, its numbers on keyboard focus, the text
// alternative, where the token was used from, the list's hint and link, axe-core, no script
// needed. Screenshots go to tests/.state/screenshots/ (usage-desktop.png, usage-phone.png).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import { startServer, devToken, introspect, eventually, call, userCall, ADMIN, sleep } from "./helpers.mjs";
import { CHROMIUM, ROOT } from "../../scripts/tools.mjs";

const haveBrowser = existsSync(CHROMIUM);
const skip = haveBrowser ? false : `Debian's chromium is not installed (${CHROMIUM})`;
const SHOTS = join(ROOT, "tests", ".state", "screenshots");
const AXE = readFileSync(join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");
const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 8854 + OFFSET;
const DAY = 86_400;

let srv, browser, upstream, pat, seeded;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  upstream.listen(UPSTREAM_PORT, "127.0.0.1");
  await once(upstream, "listening");
  srv = await startServer("usage-page", 8859, { LAST_USED_COALESCE_SECONDS: "1" });
  const r = await call(`${srv.url}/admin/routes/demo`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      path_prefix: "/gw/demo/",
      upstream: `http://127.0.0.1:${UPSTREAM_PORT}/base`,
      resource: "demo_api",
      rules: [{ methods: ["GET"], scopes: ["demo_api:read"] }],
    }),
  });
  assert.equal(r.status, 201, r.text);
  pat = (await userCall(srv.url, "una", "POST", "/api/pats", {
    name: "ci", scopes: ["demo_api:read"], expires_in_days: 30,
  })).json;
  seeded = (await userCall(srv.url, "una", "POST", "/api/pats", {
    name: "nightly deploy", scopes: ["demo_api:read"], expires_in_days: 30,
  })).json;
  const quiet = (await userCall(srv.url, "una", "POST", "/api/pats", {
    name: "spare", scopes: ["demo_api:read"], expires_in_days: 30,
  })).json;
  // Earlier days of a token not used since, as its object wrote them (uses per UTC day, the last
  // places used from), and a token last used 61 days ago: seeded in D1, then the server starts
  // again on that state. (A token used now would have them overwritten by its object, which
  // keeps its own days.)
  const today = Math.floor(Date.now() / 1000 / DAY);
  const days = [[today - 27, 4], [today - 20, 11], [today - 13, 2], [today - 9, 30], [today - 6, 7], [today - 3, 18], [today - 1, 5], [today, 3]];
  const now = Math.floor(Date.now() / 1000);
  const from = [
    { via: "gate", name: "demo", ip: "198.51.100.23", country: "NL", colo: "AMS", first_at: now - 9 * DAY, last_at: now - 600 },
    { via: "introspection", name: "demo_api", first_at: now - 27 * DAY, last_at: now - 3 * DAY },
  ];
  queryLocalD1(srv.dir, [
    `UPDATE tokens SET daily_uses = '${JSON.stringify({ days })}', last_used_from = '${JSON.stringify(from)}', use_count = 80, last_used_at = ${now - 600} WHERE id = '${seeded.id}'`,
    `UPDATE tokens SET last_used_at = ${now - 61 * DAY}, use_count = 1 WHERE id = '${quiet.id}'`,
  ].join("; "), { config: `${srv.dir}/wrangler.toml` });
  await srv.restart();
  if (haveBrowser) {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
    });
  }
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  upstream?.closeAllConnections?.();
  upstream?.close();
});

async function newPage({ js = true, width = 1000, height = 900 } = {}) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const problems = (page.problems = []);
  await page.setViewport({ width, height, deviceScaleFactor: 1 });
  await page.setJavaScriptEnabled(js);
  await page.setExtraHTTPHeaders({ "cf-access-jwt-assertion": devToken("una") });
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(e.message));
  page.close = async () => ctx.close();
  return page;
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

test("today's uses reach the list's hint and the token's usage page, with the places used from", { skip }, async () => {
  for (let i = 0; i < 6; i++) assert.equal((await introspect(srv.url, pat.token)).json.active, true);
  // where a token was used from is sampled once per window (the first use): the gate's uses in
  // the next one
  await sleep(1500);
  for (const ip of ["198.51.100.4", "198.51.100.4", "198.51.100.4"]) {
    const r = await call(`${srv.url.replace("127.0.0.1", "localhost")}/gw/demo/x`, {
      headers: { authorization: `Bearer ${pat.token}`, "cf-connecting-ip": ip },
    });
    assert.equal(r.status, 200);
  }
  let last;
  const v = await eventually(async () => {
    last = (await userCall(srv.url, "una", "GET", `/api/pats/${pat.id}`)).json;
    return last.usage.today === 9 && last.last_used_from.length === 2 ? last : null;
  }, { timeoutMs: 30_000 });
  assert.ok(v, `today's 9 uses and two places counted: ${JSON.stringify(last)}`);
  assert.equal(v.usage.last_30_days, 9);

  const page = await newPage();
  await page.goto(`${srv.url}/tokens`);
  const row = `tr[data-token-id="${pat.id}"]`;
  assert.equal(await page.$eval(`${row} .use-hint`, (e) => e.textContent), "Used today");
  assert.match(await page.$eval("main", (e) => e.textContent), /Unused for 61 days/);
  await Promise.all([page.waitForNavigation(), page.click(`${row} a.usage-link`)]);
  assert.equal(new URL(page.url()).pathname, `/tokens/${pat.id}/usage`);
  const live = await readPage(page);
  assert.match(live.caption, /Uses per day, last 30 days \(UTC\): 9 in all/);
  assert.equal(live.bars.length, 1);
  assert.ok(live.bars[0].endsWith(": 9 uses"), JSON.stringify(live.bars));
  assert.equal(live.totals.Today, "9");
  assert.equal(live.from.length, 2);
  assert.match(live.from.join("|"), /Gate route demo.*198\.51\.100\.4/);
  assert.match(live.from.join("|"), /API demo_api/);
  assert.deepEqual(page.problems, []);
  await page.close();
});

async function readPage(page) {
  return page.evaluate(() => ({
    caption: document.querySelector(".usage figcaption").textContent,
    bars: [...document.querySelectorAll(".usage g.day[tabindex] title")].map((t) => t.textContent),
    rows: [...document.querySelectorAll(".usage tbody tr")].map((r) => r.textContent),
    totals: Object.fromEntries([...document.querySelectorAll("dl dt")].map((d) => [d.textContent, d.nextElementSibling.textContent])),
    from: [...document.querySelectorAll("table.from tbody tr")].map((r) => r.textContent),
  }));
}

test("a month of uses at desktop and phone width: bars, numbers on focus, text alternative", { skip }, async () => {
  const page = await newPage();
  await page.setBypassCSP(true); // only to inject axe-core
  const r = await page.goto(`${srv.url}/tokens/${seeded.id}/usage`);
  assert.equal(r.status(), 200);
  const chart = await readPage(page);
  assert.match(chart.caption, /Uses per day, last 30 days \(UTC\): 80 in all, most on .* \(30 uses\)/);
  assert.equal(chart.bars.length, 8, JSON.stringify(chart.bars));
  assert.ok(chart.bars.at(-1).endsWith(": 3 uses"), "today's bar last");
  assert.equal(chart.rows.length, 8, "the text alternative lists every day with uses");
  assert.equal(chart.totals.Today, "3");
  assert.equal(chart.totals["Last 30 days"], "80");
  assert.equal(chart.from.length, 2);
  assert.match(chart.from[0], /Gate route demo.*AMS.*NL.*198\.51\.100\.23/);
  assert.match(chart.from[1], /API demo_api/);
  // the keyboard reaches the bars, and a focused bar shows its number
  let focused = null;
  for (let i = 0; i < 20 && !focused; i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => {
      const a = document.activeElement;
      return a?.matches?.("g.day") ? { label: a.getAttribute("aria-label"), shown: getComputedStyle(a.querySelector(".v")).opacity } : null;
    });
  }
  assert.ok(focused, "a bar takes keyboard focus");
  assert.equal(focused.shown, "1", "its number shows on focus");
  await axeCheck(page, "usage page");
  await page.screenshot({ path: join(SHOTS, "usage-desktop.png"), fullPage: true });
  await page.setViewport({ width: 375, height: 800, deviceScaleFactor: 2 });
  await page.goto(`${srv.url}/tokens/${seeded.id}/usage`);
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375, "no sideways scroll at phone width");
  await page.screenshot({ path: join(SHOTS, "usage-phone.png"), fullPage: true });
  await axeCheck(page, "usage page, phone");
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("without JavaScript the chart and its table are all there; other users get 404", { skip }, async () => {
  const page = await newPage({ js: false });
  const r = await page.goto(`${srv.url}/tokens/${seeded.id}/usage`);
  assert.equal(r.status(), 200);
  assert.equal((await page.$$(".usage rect.b")).length, 8);
  assert.equal((await page.$$(".usage details tbody tr")).length, 8);
  await page.close();
  const other = await call(`${srv.url}/tokens/${pat.id}/usage`, {
    headers: { "cf-access-jwt-assertion": devToken("mallory") },
  });
  assert.equal(other.status, 404);
});

// Every PAT of "una" in order `sort` through the API, `limit` a page.
async function walkApi(sort, limit) {
  const ids = [];
  let cursor = null;
  do {
    const q = `sort=${sort}&limit=${limit}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const r = await userCall(srv.url, "una", "GET", `/api/pats?${q}`);
    assert.equal(r.status, 200, r.text);
    ids.push(...r.json.pats.map((p) => p.id));
    cursor = r.json.next_cursor;
  } while (cursor);
  return ids;
}

test("the list sorts by last use: API pages and the page's sort links, without JavaScript", { skip }, async () => {
  const fresh = (await userCall(srv.url, "una", "POST", "/api/pats", {
    name: "never used", scopes: ["demo_api:read"], expires_in_days: 30,
  })).json;
  const all = (await userCall(srv.url, "una", "GET", "/api/pats")).json.pats;
  const used = (p) => (p.last_used_at ? Date.parse(p.last_used_at) : 0);
  // what the orders mean, from the values the API shows (ties by id, with the order)
  const by = (dir) => [...all].sort((a, b) => dir * (used(a) - used(b)) || dir * (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((p) => p.id);
  const recent = by(-1);
  const least = by(1);
  assert.equal(least[0], fresh.id, "never used first");
  assert.equal(recent.at(-1), fresh.id, "never used last");
  assert.ok(recent.indexOf(seeded.id) < least.indexOf(seeded.id) || all.length === 1);
  for (const limit of [1, 2, 100]) {
    assert.deepEqual(await walkApi("last_used", limit), recent, `last_used, ${limit} a page`);
    assert.deepEqual(await walkApi("least_recently_used", limit), least, `least_recently_used, ${limit} a page`);
  }
  // a cursor of one order used with another: refused with a clear error
  const first = (await userCall(srv.url, "una", "GET", "/api/pats?sort=last_used&limit=1")).json;
  const wrong = await userCall(srv.url, "una", "GET", `/api/pats?sort=least_recently_used&cursor=${encodeURIComponent(first.next_cursor)}`);
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error, "invalid_request");
  assert.match(wrong.json.error_description, /^cursor belongs to another sort order: repeat sort=last_used/);
  const bad = await userCall(srv.url, "una", "GET", "/api/pats?sort=popular");
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error_description, "sort must be one of newest, last_used, least_recently_used");

  // the page, no JavaScript: follow the sort links
  const page = await newPage({ js: false });
  await page.goto(`${srv.url}/tokens`);
  const rowIds = () => page.$$eval("tbody tr[data-token-id]", (rs) => rs.map((r) => r.dataset.tokenId));
  const current = () => page.$$eval("nav.sort a[aria-current]", (as) => as.map((a) => a.textContent));
  assert.deepEqual(await current(), ["Newest"]);
  await Promise.all([page.waitForNavigation(), page.click("nav.sort a[href='/tokens?sort=least_recently_used']")]);
  assert.equal(new URL(page.url()).search, "?sort=least_recently_used");
  assert.deepEqual(await current(), ["Least recently used"]);
  assert.deepEqual(await rowIds(), least);
  await Promise.all([page.waitForNavigation(), page.click("nav.sort a[href='/tokens?sort=last_used']")]);
  assert.deepEqual(await current(), ["Recently used"]);
  assert.deepEqual(await rowIds(), recent);
  await page.close();

  // with JavaScript: axe-core and screenshots at desktop and phone width
  const shown = await newPage();
  await shown.setBypassCSP(true); // only to inject axe-core
  await shown.goto(`${srv.url}/tokens?sort=least_recently_used`);
  assert.deepEqual(await shown.$$eval("tbody tr[data-token-id]", (rs) => rs.map((r) => r.dataset.tokenId)), least);
  await axeCheck(shown, "token list sorted by least recent use");
  await shown.screenshot({ path: join(SHOTS, "tokens-sorted-desktop.png"), fullPage: true });
  await shown.setViewport({ width: 375, height: 800, deviceScaleFactor: 2 });
  await shown.goto(`${srv.url}/tokens?sort=least_recently_used`);
  assert.ok((await shown.evaluate(() => document.documentElement.scrollWidth)) <= 375, "no sideways scroll at phone width");
  await axeCheck(shown, "token list sorted, phone");
  await shown.screenshot({ path: join(SHOTS, "tokens-sorted-phone.png"), fullPage: true });
  assert.deepEqual(shown.problems, []);
  await shown.close();
});
