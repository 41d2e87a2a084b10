// A consumer Worker calls patgate's introspection through a service binding: both run
// together under one `wrangler dev` (two configs). The consumer is served on the port; patgate is
// reachable only through the binding.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareState, startDevServer, DEV_VARS } from "../../scripts/devserver.mjs";
import { ROOT } from "../../scripts/tools.mjs";
import { TEST_VARS, call, devToken } from "./helpers.mjs";

const PORT = 9030 + Number(process.env.E2E_PORT_OFFSET ?? 0);
const PATGATE_URL = "http://patgate.internal"; // the consumer's PATGATE_URL

/** patgate's wrangler.toml with absolute paths and the test's vars in [vars] (`--var` only
 * reaches the first Worker of a multi-config `wrangler dev`). */
function patgateConfig(dir) {
  // Not the page's local sign-in form nor loopback metadata documents: patgate refuses them with
  // an issuer that is not loopback.
  const { DEV_SIGN_IN: _, CIMD_ALLOW_HTTP_LOOPBACK: __, ...devVars } = DEV_VARS;
  const vars = { ...devVars, ...TEST_VARS, ISSUER: PATGATE_URL };
  const out = [];
  let inVars = false;
  for (const line of readFileSync(join(ROOT, "wrangler.toml"), "utf8").split("\n")) {
    if (/^\[/.test(line)) inVars = line.trim() === "[vars]";
    const key = /^([A-Z_]+)\s*=/.exec(line)?.[1];
    if (inVars && key && key in vars) continue;
    out.push(
      line
        .replace(/^main = "(.*)"/, (_, p) => `main = ${JSON.stringify(join(ROOT, p))}`)
        .replace(/^migrations_dir = "(.*)"/, (_, p) => `migrations_dir = ${JSON.stringify(join(ROOT, p))}`),
    );
    if (line.trim() === "[vars]") {
      for (const [k, v] of Object.entries(vars)) out.push(`${k} = ${JSON.stringify(v)}`);
    }
  }
  const file = join(dir, "patgate.toml");
  writeFileSync(file, out.join("\n"));
  return file;
}

let server, dir;
const base = `http://127.0.0.1:${PORT}`;

before(async () => {
  dir = join(ROOT, "tests", ".state", `binding-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const config = patgateConfig(dir);
  prepareState(dir, { config });
  server = await startDevServer({
    port: PORT,
    persistDir: dir,
    config: [join(ROOT, "tests/fixtures/consumer/wrangler.toml"), config],
  });
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function pat(user, scopes) {
  const r = await call(`${base}/patgate/api/pats`, {
    method: "POST",
    headers: { authorization: `Bearer ${devToken(user)}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "binding", scopes, expires_in_days: 1 }),
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const ask = (token) => call(base, { headers: token ? { authorization: `Bearer ${token}` } : {} });

test("active, inactive and insufficient-scope decisions through the service binding", async () => {
  // patgate answers through the binding at its issuer URL
  const meta = await call(`${base}/patgate/.well-known/oauth-authorization-server`);
  assert.equal(meta.status, 200, meta.text);
  assert.equal(meta.json.issuer, PATGATE_URL);

  const writer = await pat("alice", ["demo_api:read", "demo_api:write"]);
  const active = await ask(writer.token);
  assert.equal(active.status, 200, active.text);
  assert.deepEqual(active.json, {
    decision: "active", sub: "alice", scope: "demo_api:read demo_api:write", client_id: "pat_client",
  });

  const reader = await pat("bob", ["demo_api:read"]);
  const insufficient = await ask(reader.token);
  assert.equal(insufficient.status, 403, insufficient.text);
  assert.deepEqual(insufficient.json, { decision: "insufficient_scope", scope: "demo_api:read" });

  for (const t of ["garbage", `${writer.token.slice(0, -1)}${writer.token.endsWith("0") ? "1" : "0"}`]) {
    const r = await ask(t);
    assert.equal(r.status, 401, r.text);
    assert.deepEqual(r.json, { decision: "inactive" });
  }
  const other = await pat("carol", ["other_api:read"]);
  assert.deepEqual((await ask(other.token)).json, { decision: "inactive" }, "not visible to demo_api");

  // revoked through the binding: inactive at once
  const del = await call(`${base}/patgate/api/pats/${writer.id}`, {
    method: "DELETE", headers: { authorization: `Bearer ${devToken("alice")}` },
  });
  assert.equal(del.status, 204, del.text);
  const revoked = await ask(writer.token);
  assert.equal(revoked.status, 401);
  assert.deepEqual(revoked.json, { decision: "inactive" });
});
