// bench/lib/flow.mjs: part of the benchmark runner (bench/run.mjs): the authorization server's
// token requests, authorization code exchange and refresh token rotation.
//
// Both requests are single use (a code is consumed, a refresh token rotated away), so each
// measured request needs its own: the rows are written into the stopped target's local D1 by the
// project's own code (`patgate-tools seed-flow`, src/bin/tools.rs: the Worker's record types and
// D1 columns), and wrk sends each line of the matching body file once (bench/wrk-lines.lua).
// The seeded codes live an hour instead of 60 s: wrk needs them for the whole scenario; the
// exchange does the same work either way.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { queryLocalD1 } from "../../scripts/devserver.mjs";
import { TOOLS_BIN } from "../instructions.mjs";
import { wranglerRun } from "./growth.mjs";
import { log, fmt, SMOKE } from "./settings.mjs";
import { req, FORM } from "./http.mjs";

export const FLOW_CLIENT = "bench_app";
export const FLOW_RESOURCE = "https://api.bench.example/";
const REDIRECT = "http://127.0.0.1/callback";

/** How many codes and refresh tokens to seed: enough for the warm-up and every measured run. */
export const FLOW_ROWS = Number(process.env.BENCH_FLOW_ROWS ?? (SMOKE ? 4000 : 30000));

/**
 * Writes the public client `bench_app` (redirect URI, both grants), names `demo_api` by the
 * resource URI `https://api.bench.example/`, and seeds `n` codes and `n` grants with a refresh
 * token into the stopped target's local D1 in `dir`. Returns the body files, each as the
 * `{ path, next }` the load tool reads.
 */
export function seedFlow(dir, config, n = FLOW_ROWS) {
  const now = Math.floor(Date.now() / 1000);
  const common = ["--local", "--persist-to", dir, "--config", config];
  queryLocalD1(dir,
    `INSERT INTO clients (id, secret_hash, allowed_scopes, token_format, token_lifetime, enabled, created_at, source, display_name, redirect_uris, grant_types, refresh_tokens) ` +
    `VALUES ('${FLOW_CLIENT}', NULL, 'demo_api:read', 'reference', 3600, 1, ${now}, 'admin', 'Bench app', '["${REDIRECT}"]', 'authorization_code refresh_token', 1) ON CONFLICT (id) DO NOTHING`,
    { config });
  queryLocalD1(dir, `UPDATE api_resources SET resource_uri = '${FLOW_RESOURCE}' WHERE id = 'demo_api'`, { config });
  const [client] = queryLocalD1(dir, `SELECT uid FROM clients WHERE id = '${FLOW_CLIENT}'`, { config });
  const [api] = queryLocalD1(dir, `SELECT uid FROM api_resources WHERE id = 'demo_api'`, { config });
  const seedDir = join(dir, "flow");
  mkdirSync(seedDir, { recursive: true });
  const t0 = performance.now();
  const r = spawnSync(TOOLS_BIN, ["seed-flow", String(n), seedDir, String(now), FLOW_CLIENT, client.uid, api.uid, FLOW_RESOURCE, REDIRECT], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`patgate-tools seed-flow failed: ${r.stderr}`);
  for (const f of ["codes.sql", "refresh.sql"]) wranglerRun(["d1", "execute", "DB", ...common, "--yes", "--file", join(seedDir, f)]);
  log(`flow: seeded ${fmt(n)} codes and ${fmt(n)} refresh tokens in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  return { codes: { path: join(seedDir, "codes.txt"), next: 1 }, refresh: { path: join(seedDir, "refresh.txt"), next: 1 } };
}

/** Sends the next line of `lines` once (outside the load) and checks the answer is a token. */
export async function checkLine(url, lines, what) {
  const body = readFileSync(lines.path, "utf8").split("\n")[lines.next - 1];
  lines.next += 1;
  const r = await req(`${url}/oauth/token`, { method: "POST", headers: { "content-type": FORM }, body });
  let tok;
  try { tok = r.json(); } catch { tok = {}; }
  if (r.status !== 200 || !tok.access_token) throw new Error(`${what}: ${r.status} ${r.text}`);
  return tok;
}
