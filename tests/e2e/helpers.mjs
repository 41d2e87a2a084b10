// Shared helpers for the end-to-end suite: each test file starts the built worker on workerd
// (`wrangler dev`) with its own fresh local KV, D1 and Durable Object state under
// tests/.state/<unique>, removed when the file's server stops.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { prepareState, startDevServer, writeConfig, NO_RATE_LIMITS } from "../../scripts/devserver.mjs";
import { devToken } from "../../scripts/dev-token.mjs";
import { ROOT } from "../../scripts/tools.mjs";

export { devToken };

/** Variables every test server gets (fast last-used flush, dev operation counters). */
export const TEST_VARS = { LAST_USED_FLUSH_SECONDS: "1", DEV_COUNTERS: "true" };

/**
 * Starts a server on fresh state. `vars` override the defaults; `logLevel: "log"` puts the
 * Worker's security events (console.log lines) into `log()`. ISSUER is set to the server's own
 * base URL (the default in wrangler.toml names port 8787), so `iss` and discovery are checkable.
 */
export async function startServer(name, port, vars = {}, { limits = {}, logLevel } = {}) {
  // E2E_PORT_OFFSET lets several checkouts run their suites side by side on one machine.
  port += Number(process.env.E2E_PORT_OFFSET ?? 0);
  const dir = join(ROOT, "tests", ".state", `${name}-${process.pid}-${Date.now()}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const url = `http://127.0.0.1:${port}`;
  const allVars = { ...TEST_VARS, ISSUER: url, ...vars };
  // wrangler.toml with the rate limits out of the way (a test that checks a limit lowers it)
  const config = writeConfig(join(dir, "wrangler.toml"), { limits: { ...NO_RATE_LIMITS, ...limits } });
  let server;
  try {
    prepareState(dir);
    server = await startDevServer({ port, persistDir: dir, vars: allVars, config, logLevel });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url,
    dir,
    log: () => server.log(),
    /** The wrangler process id (its process group holds workerd). */
    pid: () => server.proc.pid,
    /**
     * Stops the server (keeping its state) and starts a new one on the same state directory.
     * `prepare: true` first applies the migrations and the demo seed again, as `npm start` does.
     */
    async restart(moreVars = {}, { prepare = false } = {}) {
      await server.stop();
      if (prepare) prepareState(dir);
      server = await startDevServer({ port, persistDir: dir, vars: { ...allVars, ...moreVars }, config, logLevel });
    },
    async stop({ keepState = false } = {}) {
      try {
        await server.stop();
      } finally {
        if (!keepState) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Starts a second `wrangler dev` on the state directory of `first` (a server from `startServer`):
 * another workerd process with its own isolate and caches over the same local D1 and KV, which
 * the revocation tests use as a second Cloudflare location. It has `first`'s ISSUER (tokens and
 * JWTs are the same service's) and config; `vars` are added. Stop it before `first`.
 */
export async function startSecondServer(first, port, vars = {}, { logLevel } = {}) {
  port += Number(process.env.E2E_PORT_OFFSET ?? 0);
  const server = await startDevServer({
    port,
    persistDir: first.dir,
    vars: { ...TEST_VARS, ISSUER: first.url, ...vars },
    config: join(first.dir, "wrangler.toml"),
    logLevel,
  });
  return { url: server.url, log: () => server.log(), stop: () => server.stop() };
}

// ---------------------------------------------------------------------------------------------
// The token format: prefix + 43 base62 + 6 base62 of CRC32(prefix + random part).

export { ALPHABET, crc32, checksum, makeToken } from "../../scripts/token-format.mjs";

/** The token with its last character replaced by another base62 character (checksum now wrong). */
export function flipLast(token) {
  const last = token.at(-1);
  return token.slice(0, -1) + (last === "0" ? "1" : "0");
}

export const TOKEN_RE = /^pgp_[0-9A-Za-z]{49}$/;

// ---------------------------------------------------------------------------------------------
// HTTP

export const basic = (id, secret) =>
  "Basic " + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64");

export const DEMO_API = basic("demo_api", "demo-api-secret");
export const OTHER_API = basic("other_api", "other-api-secret");
export const FORM = "application/x-www-form-urlencoded";
export const ADMIN = "Bearer dev-admin-token";

/** fetch that returns { status, headers, text, json } (json undefined if the body is not JSON). */
export async function call(url, init = {}) {
  const r = await fetch(url, { redirect: "manual", ...init });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

export function form(url, body, headers = {}) {
  return call(url, { method: "POST", headers: { "content-type": FORM, ...headers }, body });
}

export function introspect(base, token, auth = DEMO_API, extraHeaders = {}) {
  return form(`${base}/oauth/introspect`, new URLSearchParams({ token }).toString(), {
    authorization: auth,
    ...extraHeaders,
  });
}

export function userCall(base, user, method, path, body, extraHeaders = {}) {
  const headers = { authorization: `Bearer ${devToken(user)}`, ...extraHeaders };
  if (body !== undefined && !("content-type" in headers)) headers["content-type"] = "application/json";
  return call(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

export async function createPat(base, user, scopes = ["demo_api:read"], extra = {}) {
  const body = { name: "ci", scopes, expires_in_days: 30, ...extra };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const r = await userCall(base, user, "POST", "/api/pats", body);
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${r.text}`);
  return r.json;
}

/** Asserts an RFC 6749 section 5.2 style error: exact status, JSON body with `error`. */
export function assertError(r, status, error, what = "") {
  const ctx = `${what} -> ${r.status} ${r.text}`;
  assert.equal(r.status, status, ctx);
  assert.ok(r.json && typeof r.json === "object" && !Array.isArray(r.json), `JSON object body: ${ctx}`);
  assert.equal(r.json.error, error, ctx);
  for (const k of Object.keys(r.json)) assert.ok(["error", "error_description", "error_uri"].includes(k), `field ${k}: ${ctx}`);
  if ("error_description" in r.json) assert.equal(typeof r.json.error_description, "string", ctx);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/, ctx);
}

export const PAT_VIEW_KEYS = [
  "created_at", "expires_at", "id", "last_used_at", "name", "revoked_at", "scopes", "status", "use_count",
  "revoked_reason", "revoked_source_url", "leak_urls", "days_left", "expiring_soon", "allow_self_rotation",
  "revoke_on_reuse", "reuse_count", "first_reuse_at", "last_reuse", "revoked_message", "usage", "last_used_from",
].sort();

export const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or the deadline passes; returns the last value. */
export async function eventually(fn, { timeoutMs = 15_000, everyMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return v;
    await sleep(everyMs);
  }
}

/** RFC 3339 seconds-precision UTC string `ms` milliseconds from now (rounded down to a second). */
export function isoIn(ms) {
  const d = new Date(Date.now() + ms);
  d.setUTCMilliseconds(0);
  return d.toISOString().replace(".000Z", "Z");
}
