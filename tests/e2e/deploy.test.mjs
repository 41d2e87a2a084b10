// `npm run deploy` against a mock of the Cloudflare API (tests/e2e/cfmock.mjs, on loopback through
// CLOUDFLARE_API_BASE_URL): nothing here reaches Cloudflare. The mock stands in for the deployed
// Worker too: each Worker upload (re)starts `wrangler dev` on exactly the uploaded modules, vars
// and secrets (the issuer mapped to its local URL, as the edge maps the issuer's host to the
// Worker), and the deploy's registry step talks to that Worker's admin API (PATGATE_ADMIN_URL).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { startCloudflareMock, PERMISSIONS } from "./cfmock.mjs";
import { prepareState, queryLocalD1, startDevServer, writeConfig, NO_RATE_LIMITS } from "../../scripts/devserver.mjs";
import { ROOT, buildEnv, nodeBin } from "../../scripts/tools.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const MOCK_PORT = 8860 + OFFSET;
const SIM_PORT = 8861 + OFFSET;
const AUD = "a".repeat(64);
/** Free plan limit of a Worker's size, gzip (the paid plans allow 10 MB). */
const SIZE_LIMIT = 3 * 1024 * 1024;

const dir = join(ROOT, "tests", ".state", `deploy-${process.pid}-${Date.now()}`);
const sim = { server: null, dir: join(dir, "sim"), url: `http://127.0.0.1:${SIM_PORT}`, uploads: 0 };

/** The stand-in for the deployed Worker: `wrangler dev` of the uploaded modules and bindings. */
async function runUploaded(script) {
  await sim.server?.stop();
  const modules = join(sim.dir, `v${script.version}`);
  mkdirSync(modules, { recursive: true });
  for (const [name, bytes] of Object.entries(script.modules)) writeFileSync(join(modules, name), bytes);
  const config = writeConfig(join(sim.dir, "wrangler.toml"), { limits: NO_RATE_LIMITS, workerDir: modules });
  // the uploaded main module (wrangler uploads build/worker/shim.mjs, bundled again, as shim.js)
  const toml = readFileSync(config, "utf8").replace(/^main = .*$/m, `main = ${JSON.stringify(join(modules, script.metadata.main_module))}`);
  writeFileSync(config, toml);
  const vars = {};
  for (const b of script.metadata.bindings) if (b.type === "plain_text") vars[b.name] = b.text;
  Object.assign(vars, script.secrets, { ISSUER: sim.url });
  prepareState(join(sim.dir, "state"), { seed: false, config });
  sim.server = await startDevServer({ port: SIM_PORT, persistDir: join(sim.dir, "state"), config, vars, devVars: false });
  sim.vars = vars;
  sim.uploads++;
}

function config(overrides = {}) {
  return {
    issuer: "https://auth.example.com",
    identity: { access: { team_domain: "example", aud: AUD } },
    hosts: ["api.example.com"],
    registry: {
      pat_client: { allowed_scopes: ["orders:read", "orders:write"] },
      resources: [
        { id: "orders", scopes: ["orders:read", "orders:write"] },
        { id: "billing", scopes: ["billing:read"] },
      ],
      clients: [{ id: "reporting", allowed_scopes: ["orders:read"], token_format: "reference", token_lifetime: 900 }],
      gate_routes: [{ id: "orders-api", host: "api.example.com", path_prefix: "/orders/", upstream: "https://orders.internal.example.com", resource: "orders", rules: [{ methods: ["GET"], scopes: ["orders:read"] }] }],
      webhooks: [{ url: "https://hooks.example.com/patgate", event_types: ["pat.revoked", "token.leaked"] }],
    },
    ...overrides,
  };
}

/** Runs `node scripts/deploy.mjs` with the config; resolves { code, out }. */
function deploy(cfg, { args = [], env = {}, name = "patgate.config.json" } = {}) {
  const file = join(dir, name);
  writeFileSync(file, typeof cfg === "string" ? cfg : JSON.stringify(cfg, null, 2));
  return new Promise((resolve) => {
    const p = spawn(nodeBin("node"), [join(ROOT, "scripts", "deploy.mjs"), "--config", file, "--skip-build", ...args], {
      cwd: ROOT,
      env: {
        ...buildEnv(),
        CLOUDFLARE_API_BASE_URL: mock.url,
        CLOUDFLARE_API_TOKEN: "test-token",
        CLOUDFLARE_ACCOUNT_ID: mock.accountId,
        PATGATE_STATE_DIR: join(dir, "patgate-state"),
        PATGATE_ADMIN_URL: sim.url,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("exit", (code) => resolve({ code, out }));
  });
}

/** fetch, once more if a pooled connection died with the stand-in's restart. */
const fetchSim = (url, init) => fetch(url, init).catch(() => fetch(url, init));
const admin = async (path) => {
  const r = await fetchSim(`${sim.url}${path}`, { headers: { authorization: `Bearer ${sim.vars.ADMIN_TOKEN}` } });
  assert.equal(r.status, 200, path);
  return r.json();
};
const uids = () => JSON.stringify([
  queryLocalD1(join(sim.dir, "state"), "SELECT id, uid FROM clients ORDER BY id", { config: join(sim.dir, "wrangler.toml") }),
  queryLocalD1(join(sim.dir, "state"), "SELECT id, uid FROM api_resources ORDER BY id", { config: join(sim.dir, "wrangler.toml") }),
]);

let mock;
before(async () => {
  mkdirSync(dir, { recursive: true });
  mock = await startCloudflareMock({ port: MOCK_PORT, onUpload: runUploaded });
});
after(async () => {
  await sim.server?.stop();
  await mock?.close();
  rmSync(dir, { recursive: true, force: true });
});

// --- refusals: before any call ------------------------------------------------------------------

async function refused(cfg, pattern, opts) {
  const before = mock.calls.length;
  const r = await deploy(cfg, opts);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, pattern);
  assert.match(r.out, /nothing was called or changed/);
  assert.equal(mock.calls.length, before, `no call: ${JSON.stringify(mock.calls.slice(before))}`);
}

test("refused before any call: an issuer on this machine, or not https", async () => {
  await refused(config({ issuer: "http://127.0.0.1:8787" }), /issuer http:\/\/127\.0\.0\.1:8787 is on this machine/);
  await refused(config({ issuer: "https://localhost" }), /is on this machine \(localhost\)/);
  await refused(config({ issuer: "http://auth.example.com" }), /is not https/);
  await refused(config(), /is on this machine/, { args: ["--issuer", "https://[::1]:8443"] });
  await refused({ ...config(), issuer: undefined }, /no issuer/);
});

test("refused before any call: the demo secrets, DEV_SIGN_IN and other local-only settings", async () => {
  await refused(config({ vars: { DEV_SIGN_IN: "true" } }), /DEV_SIGN_IN is set in the production settings/);
  await refused(config({ vars: { WEBHOOK_ALLOW_HTTP_LOCALHOST: "true" } }), /WEBHOOK_ALLOW_HTTP_LOCALHOST is set/);
  await refused(config({ vars: { ADMIN_TOKEN: "x".repeat(40) } }), /ADMIN_TOKEN is a secret/);
  await refused(config({ identity: { jwt: { issuer: "patgate-dev", audience: "patgate", jwks_url: "https://idp.example.com/jwks" } } }), /USER_JWT_ISSUER has the local demo value/);
  await refused(config(), /PATGATE_ADMIN_TOKEN is the local demo admin token/, { env: { PATGATE_ADMIN_TOKEN: "dev-admin-token" } });
  await refused(config({ vars: { DEV_COUNTERS: "true" } }), /DEV_COUNTERS = "true"/);
  await refused(config({ vars: { DEV_DRAIN_REFUSED_BODIES: "true" } }), /DEV_DRAIN_REFUSED_BODIES is set in the production settings/);
  await refused(config({ vars: { CIMD_ALLOW_HTTP_LOOPBACK: "true" } }), /CIMD_ALLOW_HTTP_LOOPBACK is set in the production settings/);
  await refused(config({ vars: { CLIENT_ID_KEYS: JSON.stringify(["cGF0Z2F0ZS1kZXYtY2xpZW50LWlkLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="]) } }), /CLIENT_ID_KEYS contains a local demo secret|CLIENT_ID_KEYS has the local demo value/);
});

test("refused before any call: a config file that does not validate, every problem named", async () => {
  await refused("{ not json", /is not valid JSON/);
  const bad = config();
  bad.regsitry = bad.registry;
  bad.registry.clients[0].token_lifetime = 5;
  bad.registry.webhooks[0].event_types = ["pat.nope"];
  bad.identity = { access: { team_domain: "example", aud: "short" } };
  const before = mock.calls.length;
  const r = await deploy(bad);
  assert.equal(r.code, 2, r.out);
  for (const p of [/config\.regsitry: unknown key/, /token_lifetime: an integer from 60 to 86400/, /"pat\.nope" is not an event type/, /aud: the Access application's AUD tag/]) assert.match(r.out, p);
  assert.equal(mock.calls.length, before);
  await refused(config(), /--env staging: no environments\.staging/, { args: ["--env", "staging"] });
});

test("refused before any change: a token without the needed permissions, each one named", async () => {
  const limited = await startCloudflareMock({ port: MOCK_PORT + 2, tokens: { "weak-token": PERMISSIONS.filter((p) => p !== "D1" && p !== "Queues") } });
  try {
    const r = await deploy(config(), { env: { CLOUDFLARE_API_BASE_URL: limited.url, CLOUDFLARE_API_TOKEN: "weak-token", CLOUDFLARE_ACCOUNT_ID: limited.accountId } });
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /lacks D1: Edit, Queues: Edit/);
    assert.match(r.out, /nothing was changed/);
    assert.ok(limited.calls.length > 0);
    assert.deepEqual(limited.changes(), [], "read-only probes only");
  } finally {
    await limited.close();
  }
});

// --- the dry run: the production config bundled, sized, nothing called ----------------------------

test("--dry-run prints the plan, bundles the production config within the size limit, calls nothing", async () => {
  const before = mock.calls.length;
  const r = await deploy(config(), { args: ["--dry-run"] });
  assert.equal(r.code, 0, r.out);
  assert.equal(mock.calls.length, before);
  assert.match(r.out, /KV namespace patgate-grants \(GRANTS\): reused if it exists, else created/);
  assert.match(r.out, /Queue patgate-webhooks/);
  assert.match(r.out, /nothing was called or changed/);
  const m = r.out.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
  assert.ok(m, r.out);
  const outdir = join(dir, "patgate-state", "production", "dry-run");
  const files = readdirSync(outdir).filter((f) => statSync(join(outdir, f)).isFile() && !f.endsWith(".map") && f !== "README.md");
  const gz = files.reduce((n, f) => n + gzipSync(readFileSync(join(outdir, f)), { level: 9 }).length, 0);
  assert.ok(Number(m[2]) * 1024 < SIZE_LIMIT && gz < SIZE_LIMIT, `bundle ${m[2]} KiB gzip (own count ${gz} bytes) over ${SIZE_LIMIT}`);
  const gen = JSON.parse(readFileSync(join(dir, "patgate-state", "production", "wrangler.dry-run.json"), "utf8"));
  assert.equal(gen.vars.ISSUER, "https://auth.example.com");
  assert.equal(gen.vars.USER_JWKS_URL, "https://example.cloudflareaccess.com/cdn-cgi/access/certs");
  assert.ok(!("DEV_SIGN_IN" in gen.vars));
  assert.deepEqual(gen.routes, [{ pattern: "auth.example.com", custom_domain: true }, { pattern: "api.example.com", custom_domain: true }]);
});

// --- the real sequence, twice ----------------------------------------------------------------------

const index = (pred) => mock.calls.findIndex(pred);
const secretValues = () => Object.values(mock.state.scripts.get("patgate")?.secrets ?? {});

test("first deploy: resources, migrations, secrets with the Worker, then the registry; second deploy changes nothing", async () => {
  const start = mock.calls.length;
  const first = await deploy(config());
  assert.equal(first.code, 0, first.out);
  const calls = mock.calls.slice(start);
  assert.deepEqual(calls.filter((c) => c.unknown), [], "every call is one the mock models");

  // resources by name, created once
  assert.deepEqual(calls.filter((c) => c.created).map((c) => Object.entries(c.created)[0].join(" ")).slice(0, 3), ["kv patgate-grants", "d1 patgate", "queue patgate-webhooks"]);
  // the order: resources, then every migration, then the upload carrying the secrets
  const lastCreate = index((c, i) => i >= start && c.created?.queue);
  const migrations = readdirSync(join(ROOT, "migrations")).filter((f) => f.endsWith(".sql")).sort();
  const applied = mock.calls.map((c, i) => [i, c.sql]).filter(([, s]) => s && /INSERT INTO "?d1_migrations"?/i.test(s));
  assert.equal(applied.length, migrations.length, "every migration applied");
  const upload = index((c, i) => i >= start && c.upload);
  assert.ok(lastCreate < applied[0][0] && applied.at(-1)[0] < upload, `order: ${lastCreate} < ${applied[0][0]}..${applied.at(-1)[0]} < ${upload}`);
  assert.deepEqual(mock.calls[upload].upload.secretsUploaded, ["ADMIN_TOKEN", "JWT_SIGNING_KEYS", "SESSION_SECRET"]);
  const db = [...mock.state.d1.values()][0].sqlite;
  assert.deepEqual(db.prepare("SELECT name FROM d1_migrations ORDER BY id").all().map((r) => r.name), migrations);
  // the uploaded settings: issuer, Access, no local values; the cron; the consumer; the domains
  const script = mock.state.scripts.get("patgate");
  const vars = Object.fromEntries(script.metadata.bindings.filter((b) => b.type === "plain_text").map((b) => [b.name, b.text]));
  assert.equal(vars.ISSUER, "https://auth.example.com");
  assert.equal(vars.USER_JWT_AUDIENCE, AUD);
  for (const k of ["DEV_SIGN_IN", "WEBHOOK_ALLOW_HTTP_LOCALHOST", "USER_JWT_HS256_SECRET"]) assert.ok(!(k in vars) && !(k in script.secrets), k);
  assert.deepEqual(script.schedules.map((s) => s.cron), ["17 * * * *"]);
  assert.deepEqual([...mock.state.queues.values()][0].consumers.map((c) => c.script ?? c.script_name), ["patgate"]);
  assert.deepEqual(mock.state.domains.map((d) => d.hostname).sort(), ["api.example.com", "auth.example.com"]);

  // the admin token: written to a file only the user can read, never printed
  const tokenFile = join(dir, "patgate-state", "production", "admin-token");
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(tokenFile, "utf8").trim(), script.secrets.ADMIN_TOKEN);
  assert.match(first.out, /admin token was generated and written to .*admin-token \(readable only by you\)/);
  for (const s of secretValues()) assert.ok(!first.out.includes(s), "no secret in the output");

  // the registry, as declared, through the deployed Worker's admin API
  assert.equal(sim.uploads, 1);
  const resources = (await admin("/admin/resources")).resources.map((r) => [r.id, r.scopes.sort().join(" ")]);
  assert.deepEqual(resources.sort(), [["billing", "billing:read"], ["orders", "orders:read orders:write"]]);
  const clients = (await admin("/admin/clients")).clients.map((c) => [c.id, c.public, c.token_lifetime]);
  assert.deepEqual(clients.sort(), [["pat_client", true, 3600], ["reporting", false, 900]]);
  assert.deepEqual((await admin("/admin/routes")).routes.map((r) => r.id), ["orders-api"]);
  assert.deepEqual((await admin("/admin/webhooks")).webhooks.map((w) => w.url), ["https://hooks.example.com/patgate"]);
  const creds = join(dir, "patgate-state", "production", "credentials.json");
  assert.equal(statSync(creds).mode & 0o777, 0o600);
  const saved = JSON.parse(readFileSync(creds, "utf8"));
  assert.deepEqual(Object.keys(saved.clients), ["reporting"]);
  assert.deepEqual(Object.keys(saved.resources).sort(), ["billing", "orders"]);
  for (const s of [...Object.values(saved.clients), ...Object.values(saved.resources), ...Object.values(saved.webhooks)]) assert.ok(!first.out.includes(s));
  // the created client's secret works against the deployed Worker
  const tok = await fetchSim(`${sim.url}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`reporting:${saved.clients.reporting}`).toString("base64")}` }, body: "grant_type=client_credentials&scope=orders:read" });
  assert.equal(tok.status, 200, await tok.clone().text());
  assert.match(first.out, /token page +https:\/\/auth\.example\.com\/tokens/);
  assert.match(first.out, /application on auth\.example\.com with the path "tokens"/);
  const before = uids();

  // the second deploy: the same Worker uploaded again, nothing else changes
  const second0 = mock.calls.length;
  const second = await deploy(config());
  assert.equal(second.code, 0, second.out);
  const again = mock.calls.slice(second0);
  assert.deepEqual(again.filter((c) => c.unknown), []);
  assert.deepEqual(again.filter((c) => c.created), [], "nothing created");
  assert.deepEqual(again.filter((c) => c.sql && !/^\s*(SELECT|CREATE TABLE IF NOT EXISTS)/i.test(c.sql)), [], "no migration applied");
  const uploads = again.filter((c) => c.upload);
  assert.equal(uploads.length, 1);
  assert.deepEqual(uploads[0].upload.secretsUploaded, [], "secrets kept, not regenerated");
  assert.equal(mock.state.scripts.get("patgate").secrets.ADMIN_TOKEN, script.secrets.ADMIN_TOKEN);
  assert.match(second.out, /registry: unchanged/);
  assert.match(second.out, /secrets kept/);
  assert.equal(uids(), before, "no client or resource replaced");

  // a changed config applies only the differences, in place
  const changed = config();
  changed.registry.resources[1].scopes.push("billing:write");
  changed.registry.pat_client.allowed_scopes.push("billing:read");
  changed.registry.remove = { gate_routes: ["orders-api"] };
  delete changed.registry.gate_routes;
  const third = await deploy(changed);
  assert.equal(third.code, 0, third.out);
  assert.match(third.out, /changed API resource billing: scopes/);
  assert.match(third.out, /changed client pat_client: allowed_scopes/);
  assert.match(third.out, /deleted gate route orders-api/);
  assert.doesNotMatch(third.out, /created (API resource|.*client)/);
  assert.equal(uids(), before, "changed in place: same uids");
  assert.deepEqual((await admin("/admin/routes")).routes, []);
});

test("a failing migration stops the deploy before any code is uploaded", async () => {
  const failing = await startCloudflareMock({ port: MOCK_PORT + 3, failSql: /CREATE TABLE\s+webhook_endpoints/i });
  try {
    const r = await deploy(config(), { env: { CLOUDFLARE_API_BASE_URL: failing.url, CLOUDFLARE_ACCOUNT_ID: failing.accountId, PATGATE_STATE_DIR: join(dir, "failing-state") } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /the D1 migrations of patgate failed/);
    assert.match(r.out, /No code was uploaded/);
    assert.ok(failing.calls.some((c) => c.sql && /INSERT INTO "?d1_migrations"?/i.test(c.sql)), "the earlier migrations ran");
    assert.deepEqual(failing.calls.filter((c) => c.upload || /\/workers\/scripts\/[^/]+$/.test(c.path) && c.method === "PUT"), [], "no upload");
    assert.equal(failing.state.scripts.size, 0);
  } finally {
    await failing.close();
  }
});

// --- the plan and the registry diff, as functions --------------------------------------------------

test("environments keep separate Workers, resources, secrets and issuers", async () => {
  const { makePlan, generatedConfig, readWranglerToml } = await import("../../scripts/deploy-plan.mjs");
  const toml = readWranglerToml(join(ROOT, "wrangler.toml"));
  const cfg = config({ environments: { staging: { issuer: "https://auth.staging.example.com", identity: { access: { team_domain: "example", aud: "b".repeat(64) } } } } });
  const prod = makePlan({ toml, config: cfg, root: ROOT });
  const staging = makePlan({ toml, config: cfg, root: ROOT, flags: { env: "staging" } });
  assert.equal(prod.worker, "patgate");
  assert.equal(staging.worker, "patgate-staging");
  assert.deepEqual([staging.kv[0].title, staging.d1[0].name, staging.queues[0].name], ["patgate-staging-grants", "patgate-staging", "patgate-webhooks-staging"]);
  assert.deepEqual([prod.kv[0].title, prod.d1[0].name, prod.queues[0].name], ["patgate-grants", "patgate", "patgate-webhooks"]);
  const gen = generatedConfig(toml, staging, { kv: { GRANTS: "k" }, d1: { DB: "d" } }, ROOT);
  assert.equal(gen.vars.ISSUER, "https://auth.staging.example.com");
  assert.equal(gen.vars.USER_JWT_AUDIENCE, "b".repeat(64));
  assert.deepEqual(gen.queues.producers.map((p) => p.queue), ["patgate-webhooks-staging"]);
  assert.deepEqual(gen.queues.consumers.map((c) => c.queue), ["patgate-webhooks-staging", "patgate-webhooks-staging-dlq"]);
  assert.deepEqual(gen.queues.consumers.map((c) => c.dead_letter_queue), ["patgate-webhooks-staging-dlq", undefined], "the dead-letter queue keeps its -dlq ending (the Worker knows it by that)");
  assert.deepEqual(staging.queues.map((q) => q.name), ["patgate-webhooks-staging", "patgate-webhooks-staging-dlq"]);
  assert.deepEqual(gen.routes.map((r) => r.pattern), ["auth.staging.example.com", "api.example.com"], "hosts not overridden: the top level's");
  assert.deepEqual(gen.secrets.required, ["ADMIN_TOKEN", "SESSION_SECRET", "JWT_SIGNING_KEYS"]);
  // a workers.dev issuer: no Custom Domain for it, workers.dev on
  const dev = makePlan({ toml, config: config({ issuer: "https://patgate.acme.workers.dev", hosts: [] }), root: ROOT });
  assert.equal(generatedConfig(toml, dev, { kv: {}, d1: {} }, ROOT).workers_dev, true);
  assert.deepEqual(dev.hosts, []);
});

test("the registry diff: create missing, change in place, delete only what is listed, refuse what cannot change in place", async () => {
  const { registryActions } = await import("../../scripts/deploy-registry.mjs");
  const current = {
    resources: [{ id: "orders", scopes: ["orders:write", "orders:read"], enabled: true }, { id: "legacy", scopes: ["legacy:read"], enabled: true }],
    clients: [{ id: "pat_client", public: true, allowed_scopes: ["orders:read"], token_format: "reference", token_lifetime: 3600, enabled: true }, { id: "ci", public: false, allowed_scopes: [], token_format: "reference", token_lifetime: 3600, enabled: true }],
    routes: [{ id: "r1", host: "API.example.com", path_prefix: "/a/", upstream: "https://o.example.com", resource: "orders", rules: [{ methods: ["GET"], scopes: [] }] }],
    webhooks: [{ id: "wh_1", url: "https://h.example.com/a", event_types: ["pat.revoked"] }, { id: "wh_2", url: "https://h.example.com/b", event_types: ["pat.revoked"] }],
  };
  const same = registryActions(current, {
    resources: [{ id: "orders", scopes: ["orders:read", "orders:write"] }],
    pat_client: { allowed_scopes: ["orders:read"] },
    clients: [{ id: "ci", allowed_scopes: [] }],
    gate_routes: [{ id: "r1", host: "api.example.com", path_prefix: "/a/", upstream: "https://o.example.com", resource: "orders", rules: [{ methods: ["GET"], scopes: [] }] }],
    webhooks: [{ url: "https://h.example.com/a", event_types: ["pat.revoked"] }],
  });
  assert.deepEqual(same, { actions: [], problems: [] }, "as declared: nothing to do (set order and host case ignored; undeclared records left alone)");
  const { actions, problems } = registryActions(current, {
    resources: [{ id: "orders", scopes: ["orders:read"], enabled: false }, { id: "billing", scopes: ["billing:read"] }],
    pat_client: { allowed_scopes: ["orders:read", "billing:read"] },
    clients: [{ id: "ci", public: true, allowed_scopes: [] }, { id: "new", allowed_scopes: ["billing:read"], token_lifetime: 600 }],
    webhooks: [{ url: "https://h.example.com/a", event_types: ["*"] }, { url: "https://h.example.com/b", event_types: ["*"], replace: true }],
    remove: { gate_routes: ["r1", "absent"], resources: ["legacy"] },
  });
  assert.deepEqual(actions.map((a) => `${a.method} ${a.path}${a.ifMatch ? " (If-Match)" : ""}`), [
    "PATCH /admin/resources/orders (If-Match)",
    "POST /admin/resources",
    "PATCH /admin/clients/pat_client (If-Match)",
    "POST /admin/clients",
    "POST /admin/webhooks",
    "DELETE /admin/webhooks/wh_2",
    "DELETE /admin/routes/r1",
    "DELETE /admin/resources/legacy (If-Match)",
  ]);
  assert.deepEqual(actions[0].body, { scopes: ["orders:read"], enabled: false });
  assert.deepEqual(actions[3].body, { id: "new", public: false, allowed_scopes: ["billing:read"], token_lifetime: 600 });
  assert.equal(problems.length, 2);
  assert.match(problems[0], /client ci is confidential but declared public/);
  assert.match(problems[1], /webhook https:\/\/h\.example\.com\/a exists .* "replace": true/);
});
