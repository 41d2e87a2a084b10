// bench/lib/http.mjs: part of the benchmark runner (bench/run.mjs).
import { checksum, makeToken } from "../../scripts/token-format.mjs";
import { sleep } from "./settings.mjs";

// ---------------------------------------------------------------------------------------------
// HTTP helpers (setup requests, not load)

export async function req(url, init = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url, { ...init, headers: { connection: "close", ...(init.headers ?? {}) }, redirect: "manual", signal: AbortSignal.timeout(30_000) });
      const text = await r.text();
      return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) };
    } catch (e) {
      if (attempt >= 2) throw e;
      await sleep(300);
    }
  }
}
export async function json(url, init, expect = [200, 201]) {
  const r = await req(url, init);
  if (!expect.includes(r.status)) throw new Error(`${init?.method ?? "GET"} ${url}: ${r.status} ${r.text}`);
  return r.text ? r.json() : null;
}

export const basic = (id, secret) => "Basic " + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64");
export const FORM = "application/x-www-form-urlencoded";
export const DEMO_API = basic("demo_api", "demo-api-secret");

// ---------------------------------------------------------------------------------------------
// Token format: pgp_ + 43 base62 + 6 base62 of CRC32 (IEEE) of the first 47 characters.

/** A well-formed (right prefix, length, alphabet and checksum) token that was never issued. */
export const forgeToken = () => makeToken("pgp_");

