// Shared helpers for the end-to-end suite: each test file starts the built worker on workerd
// (`wrangler dev`) with its own fresh local KV, D1 and Durable Object state.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { randomInt } from "node:crypto";
import { prepareState, startDevServer } from "../../scripts/devserver.mjs";
import { devToken } from "../../scripts/dev-token.mjs";
import { ROOT } from "../../scripts/tools.mjs";

export { devToken };

/** Starts a server on fresh state. `vars` override the defaults. */
export async function startServer(name, port, vars = {}) {
  const dir = join(ROOT, "tests", ".state", `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  prepareState(dir);
  const url = `http://127.0.0.1:${port}`;
  const allVars = { LAST_USED_FLUSH_SECONDS: "1", DEV_COUNTERS: "true", ISSUER: url, ...vars };
  let server = await startDevServer({ port, persistDir: dir, vars: allVars });
  return {
    url,
    dir,
    /** Stops and starts the server again on the same state directory. */
    async restart(moreVars = {}) {
      await server.stop();
      server = await startDevServer({ port, persistDir: dir, vars: { ...allVars, ...moreVars } });
    },
    async stop({ keepState = false } = {}) {
      await server.stop();
      if (!keepState) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A token in patgate's format (valid checksum) that the server never issued. */
export function makeToken(prefix = "pgp_") {
  let s = prefix;
  for (let i = 0; i < 43; i++) s += ALPHABET[randomInt(62)];
  let crc = crc32(Buffer.from(s));
  let sum = "";
  for (let i = 0; i < 6; i++) {
    sum = ALPHABET[crc % 62] + sum;
    crc = Math.floor(crc / 62);
  }
  return s + sum;
}

export const basic = (id, secret) =>
  "Basic " + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64");

export const DEMO_API = basic("demo_api", "demo-api-secret");
export const OTHER_API = basic("other_api", "other-api-secret");
export const FORM = "application/x-www-form-urlencoded";

/** fetch that returns { status, headers, text, json } */
export async function call(url, init = {}) {
  const r = await fetch(url, init);
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

export function userCall(base, user, method, path, body) {
  const headers = { authorization: `Bearer ${devToken(user)}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  return call(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

export async function createPat(base, user, scopes = ["demo_api:read"], extra = {}) {
  const r = await userCall(base, user, "POST", "/api/pats", {
    name: "ci",
    scopes,
    expires_in_days: 30,
    ...extra,
  });
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${r.text}`);
  return r.json;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function eventually(fn, { timeoutMs = 20_000, everyMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return v;
    await sleep(everyMs);
  }
}
