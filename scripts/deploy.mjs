// `npm run deploy [-- options]`: production in one command (docs/DEPLOY.md). In order:
//  1. validate patgate.config.json and the command line, refuse unsafe settings   (no call yet)
//  2. check the token's permissions and read what exists                          (GETs only)
//  3. build; create the KV namespace, D1 database and queues that do not exist
//  4. apply the D1 migrations (wrangler); a failure stops here, before any code is uploaded
//  5. upload the Worker with the secrets it lacks (generated on the first deploy) (wrangler)
//  6. bring the registry to the declared state through the Worker's admin API
// Run twice with the same inputs, the second run changes nothing but uploading the same Worker.
import { spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build } from "./build.mjs";
import { CloudflareApi, ensureResources, missingPermissions, NEEDED, readState, resolveAccount, resolveToken } from "./deploy-cloudflare.mjs";
import { generatedConfig, loadConfig, makePlan, readWranglerToml, Refusal, REQUIRED_SECRETS } from "./deploy-plan.mjs";
import { adminClient, applyActions, readRegistry, registryActions } from "./deploy-registry.mjs";
import { buildEnv, nodeBin, ROOT } from "./tools.mjs";

const USAGE = `usage: npm run deploy -- [options]
  --config FILE              the declarative config (default: patgate.config.json)
  --env NAME                 an environment of the config file (own Worker, resources, issuer)
  --dry-run                  print the plan and check the bundle; no Cloudflare call
  --issuer URL               override "issuer"
  --access-team-domain D     with --access-aud: Cloudflare Access as the identity provider
  --access-aud TAG
  --jwks-url URL             with --jwt-issuer and --jwt-audience: another identity provider
  --jwt-issuer ISS
  --jwt-audience AUD
  --skip-build               deploy build/worker as it is
environment: CLOUDFLARE_API_TOKEN (else wrangler's login), CLOUDFLARE_ACCOUNT_ID (else the token's
only account), PATGATE_ADMIN_TOKEN (the admin token to use; else .patgate/<env>/admin-token)`;

const say = (m = "") => console.log(m);
const secretFile = (path, content) => {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
};

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      env: { type: "string" },
      "dry-run": { type: "boolean" },
      issuer: { type: "string" },
      "access-team-domain": { type: "string" },
      "access-aud": { type: "string" },
      "jwks-url": { type: "string" },
      "jwt-issuer": { type: "string" },
      "jwt-audience": { type: "string" },
      "skip-build": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  return values;
}

/** The secrets a first deploy generates: never printed, never written to the repository. */
export function generateSecrets(names, adminToken) {
  const out = {};
  for (const n of names) {
    if (n === "ADMIN_TOKEN") out[n] = adminToken;
    else if (n === "SESSION_SECRET") out[n] = randomBytes(48).toString("base64");
    else if (n === "JWT_SIGNING_KEYS") {
      const { privateKey } = generateKeyPairSync("ed25519");
      out[n] = JSON.stringify([{ ...privateKey.export({ format: "jwk" }), kid: `ed25519-${new Date().toISOString().slice(0, 10)}` }]);
    }
  }
  return out;
}

function wrangler(args, { capture = false } = {}) {
  const r = spawnSync(nodeBin("wrangler"), args, {
    cwd: ROOT,
    env: { ...buildEnv(), CI: "true" },
    stdio: capture ? ["ignore", "pipe", "pipe"] : ["ignore", "inherit", "inherit"],
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  return r;
}

function printPlan(plan, state) {
  const mark = (id) => (state ? (id ? "exists, reused" : "will be created") : "reused if it exists, else created");
  say(`patgate deploy: ${plan.envLabel} (Worker ${plan.worker}${plan.accountId ? `, account ${plan.accountId}` : ""})`);
  say(`  issuer ${plan.issuer} (${plan.workersDev ? "workers.dev" : "Custom Domain"})${plan.hosts.length ? `; Custom Domains: ${plan.hosts.join(", ")}` : ""}`);
  say(`  identity: iss ${plan.vars.USER_JWT_ISSUER}, aud ${plan.vars.USER_JWT_AUDIENCE}, keys ${plan.vars.USER_JWKS_URL}`);
  for (const k of plan.kv) say(`  KV namespace ${k.title} (${k.binding}): ${mark(state?.kv[k.binding])}`);
  for (const d of plan.d1) say(`  D1 database ${d.name} (${d.binding}): ${mark(state?.d1[d.binding])}; migrations from ${d.migrationsDir}`);
  for (const q of plan.queues) say(`  Queue ${q.name}: ${mark(state?.queues[q.name])}`);
  if (state) say(`  secrets: ${REQUIRED_SECRETS.map((s) => `${s} ${state.secrets.includes(s) ? "kept" : "generated"}`).join(", ")}`);
  const r = plan.registry;
  const n = (x) => (x ?? []).length;
  say(`  registry: ${r.pat_client ? "pat_client, " : ""}${n(r.resources)} API resources, ${n(r.clients)} clients, ${n(r.gate_routes)} gate routes, ${n(r.webhooks)} webhooks declared; removals: ${Object.entries(r.remove ?? {}).map(([k, v]) => `${v.length} ${k}`).join(", ") || "none"}`);
}

function printAccess(plan) {
  if (!plan.vars.USER_JWKS_URL?.endsWith("/cdn-cgi/access/certs")) return;
  say("Cloudflare Access (Zero Trust > Access > Applications, once):");
  say(`  a self-hosted application on ${plan.issuerHost} with the path "tokens" (it covers /tokens/new,`);
  say(`  /tokens/{id}/...), AUD tag ${plan.vars.USER_JWT_AUDIENCE} (identity.access.aud).`);
  say(`  Never the whole host: /oauth/*, /.well-known/*, /admin/* and gate routes authenticate themselves.`);
  say(`  Browser use of the management API: add the path "api/pats", plus an application on`);
  say(`  "api/pats/self/rotate" with a Bypass policy (PATs authenticate themselves there).`);
}

export async function main(argv = process.argv.slice(2)) {
  let flags;
  try {
    flags = parse(argv);
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    say(USAGE);
    return 0;
  }
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const configPath = resolve(cwd, flags.config ?? "patgate.config.json");
  const dryRun = !!flags["dry-run"];
  let plan;
  let token;
  try {
    const toml = readWranglerToml(join(ROOT, "wrangler.toml"));
    const config = loadConfig(configPath);
    plan = makePlan({
      toml,
      config,
      root: ROOT,
      adminToken: process.env.PATGATE_ADMIN_TOKEN,
      flags: {
        env: flags.env,
        issuer: flags.issuer,
        accessTeamDomain: flags["access-team-domain"],
        accessAud: flags["access-aud"],
        jwksUrl: flags["jwks-url"],
        jwtIssuer: flags["jwt-issuer"],
        jwtAudience: flags["jwt-audience"],
        accountId: process.env.CLOUDFLARE_ACCOUNT_ID,
        adminUrl: process.env.PATGATE_ADMIN_URL,
      },
    });
    plan.toml = toml;
    if (!dryRun) {
      token = resolveToken();
      if (!token) throw new Refusal([`no Cloudflare credentials: set CLOUDFLARE_API_TOKEN (an API token with ${NEEDED.map((n) => n.permission).join(", ")}) or run \`npx wrangler login\``]);
    }
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    console.error(`deploy refused (nothing was called or changed):\n${e.message}`);
    return 2;
  }
  // Files this machine keeps per environment (gitignored): the admin token, the secrets the admin
  // API showed once, the generated wrangler config.
  const stateDir = join(process.env.PATGATE_STATE_DIR ?? join(ROOT, ".patgate"), plan.envLabel);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });

  if (dryRun) {
    printPlan(plan, null);
    if (!flags["skip-build"]) build();
    const genPath = join(stateDir, "wrangler.dry-run.json");
    writeFileSync(genPath, JSON.stringify(generatedConfig(plan.toml, plan, { kv: {}, d1: {} }, ROOT), null, 2));
    const outdir = join(stateDir, "dry-run");
    const r = wrangler(["deploy", "--dry-run", "--config", genPath, "--outdir", outdir]);
    say(r.status === 0 ? "dry run: nothing was called or changed" : "dry run: wrangler could not bundle the Worker (above)");
    return r.status === 0 ? 0 : 1;
  }

  // --- 2. read-only: permissions and what exists ------------------------------------------------
  const api = new CloudflareApi(token.token);
  try {
    try {
      plan.accountId = await resolveAccount(api, plan.accountId);
    } catch (e) {
      throw new Refusal([`cannot tell which account to deploy to (${e.message}): set CLOUDFLARE_ACCOUNT_ID`]);
    }
    const missing = await missingPermissions(api, plan.accountId);
    if (missing.length) throw new Refusal([`the API token (${token.source}) lacks ${missing.join(", ")} on account ${plan.accountId}: add ${missing.length > 1 ? "them" : "it"} to the token`]);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    console.error(`deploy refused (read-only calls only; nothing was changed):\n${e.message}`);
    return 2;
  }
  const state = await readState(api, plan);
  const problems = [];
  if (plan.workersDev && plan.issuerHost !== `${plan.worker}.${state.subdomain}.workers.dev`) {
    problems.push(`issuer host ${plan.issuerHost} is not this Worker's workers.dev host ${plan.worker}.${state.subdomain}.workers.dev`);
  }
  const adminFile = join(stateDir, "admin-token");
  let adminToken = process.env.PATGATE_ADMIN_TOKEN ?? (existsSync(adminFile) ? readFileSync(adminFile, "utf8").trim() : null);
  const hasAdmin = state.secrets.includes("ADMIN_TOKEN");
  if (hasAdmin && !adminToken && plan.registry && Object.keys(plan.registry).length) {
    problems.push(`the Worker already has an ADMIN_TOKEN that this machine does not know: set PATGATE_ADMIN_TOKEN, or write it to ${adminFile}`);
  }
  if (problems.length) {
    console.error(`deploy refused (read-only calls only; nothing was changed):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    return 2;
  }
  printPlan(plan, state);

  // --- 3. build, resources ----------------------------------------------------------------------
  if (!flags["skip-build"]) build();
  const { ids, created } = await ensureResources(api, plan, state);
  for (const c of created) say(`created ${c}`);
  const gen = generatedConfig(plan.toml, plan, ids, ROOT);
  const genPath = join(stateDir, "wrangler.json");
  writeFileSync(genPath, JSON.stringify(gen, null, 2));

  // --- 4. migrations ----------------------------------------------------------------------------
  for (const d of plan.d1) {
    say(`applying D1 migrations to ${d.name}`);
    const r = wrangler(["d1", "migrations", "apply", d.binding, "--remote", "--config", genPath]);
    if (r.status !== 0) {
      console.error(`deploy stopped: the D1 migrations of ${d.name} failed (above). No code was uploaded; the Worker runs the previous version.`);
      return 1;
    }
  }

  // --- 5. secrets and the Worker ----------------------------------------------------------------
  const missingSecrets = REQUIRED_SECRETS.filter((s) => !state.secrets.includes(s));
  let adminTokenNote = null;
  if (!hasAdmin) {
    if (!adminToken) {
      adminToken = randomBytes(32).toString("base64url");
      secretFile(adminFile, `${adminToken}\n`);
      adminTokenNote = `the admin token was generated and written to ${adminFile} (readable only by you); it is shown nowhere else`;
    } else {
      adminTokenNote = `the admin token is the one from ${process.env.PATGATE_ADMIN_TOKEN ? "PATGATE_ADMIN_TOKEN" : adminFile}`;
    }
  }
  const secrets = generateSecrets(missingSecrets, adminToken);
  const tmp = mkdtempSync(join(tmpdir(), "patgate-secrets-"));
  let upload;
  try {
    const args = ["deploy", "--config", genPath];
    if (missingSecrets.length) {
      const f = join(tmp, "secrets.json");
      secretFile(f, JSON.stringify(secrets));
      args.push("--secrets-file", f);
    }
    say(`uploading the Worker${missingSecrets.length ? ` with the secrets ${missingSecrets.join(", ")}` : " (secrets kept)"}`);
    upload = wrangler(args);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (upload.status !== 0) {
    console.error("deploy stopped: wrangler deploy failed (above). Resources and migrations are in place; run the deploy again.");
    return 1;
  }
  if (adminTokenNote) say(adminTokenNote);

  // --- 6. the registry --------------------------------------------------------------------------
  const summary = [];
  if (!Object.keys(plan.registry).length) {
    say('no "registry" in the config file: the registry was not touched (without pat_client no PAT can be created)');
  } else {
    const admin = adminClient(plan.adminUrl, adminToken);
    const current = await readRegistry(admin);
    const { actions, problems: regProblems } = registryActions(current, plan.registry);
    if (regProblems.length) {
      console.error(`deploy stopped before the registry (the Worker is deployed; no registry record was changed):\n${regProblems.map((p) => `  - ${p}`).join("\n")}`);
      return 1;
    }
    let result;
    try {
      result = await applyActions(admin, actions);
    } catch (e) {
      result = { done: e.done ?? [], secrets: e.secrets ?? {}, error: e };
    }
    const credFile = join(stateDir, "credentials.json");
    const fresh = Object.values(result.secrets).some((o) => Object.keys(o).length);
    if (fresh) {
      const old = existsSync(credFile) ? JSON.parse(readFileSync(credFile, "utf8")) : {};
      for (const [k, v] of Object.entries(result.secrets)) old[k] = { ...(old[k] ?? {}), ...v };
      secretFile(credFile, `${JSON.stringify(old, null, 2)}\n`);
    }
    summary.push(...result.done);
    for (const line of result.done) say(`registry: ${line}`);
    if (!actions.length) say("registry: unchanged (already as declared)");
    if (fresh) say(`registry: the new secrets (shown once by the admin API) are in ${credFile} (readable only by you)`);
    if (result.error) {
      console.error(`deploy stopped in the registry: ${result.error.message}`);
      return 1;
    }
  }

  say("");
  say(`patgate ${plan.envLabel} is deployed:`);
  say(`  issuer       ${plan.issuer}`);
  say(`  token page   ${plan.issuer}/tokens`);
  say(`  discovery    ${plan.issuer}/.well-known/oauth-authorization-server`);
  say(`  JWKS         ${plan.issuer}/.well-known/jwks.json`);
  const gateHosts = [...new Set([...plan.hosts.filter((h) => h !== plan.issuerHost), ...(plan.registry.gate_routes ?? []).map((r) => r.host).filter(Boolean)])];
  if (gateHosts.length) say(`  gate hosts   ${gateHosts.join(", ")}`);
  printAccess(plan);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`deploy failed: ${e.message}`);
      process.exit(1);
    },
  );
}
