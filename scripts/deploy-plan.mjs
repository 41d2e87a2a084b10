// `npm run deploy`, part 1: everything decided before any call. Reads wrangler.toml (the production
// configuration) and the deployer's patgate.config.json, validates them, refuses unsafe settings,
// and computes the plan: resource names per environment, the Worker's vars, the generated wrangler
// config (ids added later), the registry's declared state. Pure functions of their inputs (tests
// call them directly); nothing here touches the network.
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { DEV_VARS } from "./devserver.mjs";

/** Secrets the deploy generates on the first deploy and wrangler then keeps (`secrets.required`). */
export const REQUIRED_SECRETS = ["ADMIN_TOKEN", "SESSION_SECRET", "JWT_SIGNING_KEYS"];
/** Names that are never plain vars in production: secrets, local-only switches, set by the deploy. */
const SECRET_NAMES = [...REQUIRED_SECRETS, "USER_JWT_HS256_SECRET"];
const LOCAL_ONLY = ["DEV_SIGN_IN", "WEBHOOK_ALLOW_HTTP_LOCALHOST", "DEV_DRAIN_REFUSED_BODIES", "CIMD_ALLOW_HTTP_LOOPBACK"];
const SET_BY_DEPLOY = ["ISSUER", "USER_JWT_ISSUER", "USER_JWT_AUDIENCE", "USER_JWKS_URL", "USER_JWKS"];
export const EVENT_TYPES = ["pat.created", "pat.rotated", "pat.revoked", "pat.expiring", "pat.expired", "pat.reuse_detected", "token.leaked", "token.revoked", "token.issued", "admin.change", "client_auth.failed", "rate_limited", "warning", "*"];
const ENV_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export class Refusal extends Error {
  constructor(problems) {
    super(problems.map((p) => `  - ${p}`).join("\n"));
    this.problems = problems;
  }
}

/** wrangler.toml as an object. */
export function readWranglerToml(path) {
  return parseToml(readFileSync(path, "utf8"));
}

// ---------------------------------------------------------------------------------------------
// The config file: a small hand-written validator (unknown keys are errors: a typo must not
// silently drop a setting).

function checkKeys(obj, where, allowed, problems) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    problems.push(`${where}: must be an object`);
    return false;
  }
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) problems.push(`${where}.${k}: unknown key (allowed: ${allowed.join(", ")})`);
  return true;
}
const isStr = (v) => typeof v === "string" && v.length > 0;
function strList(v, where, problems, { each = () => null, min = 0 } = {}) {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    problems.push(`${where}: must be a list of strings`);
    return;
  }
  if (v.length < min) problems.push(`${where}: at least ${min} entr${min === 1 ? "y" : "ies"}`);
  if (new Set(v).size !== v.length) problems.push(`${where}: repeated entries`);
  for (const x of v) {
    const p = each(x);
    if (p) problems.push(`${where}: ${JSON.stringify(x)} ${p}`);
  }
}
const badId = (x) => (ID.test(x) && x !== "." && x !== ".." ? null : "is not an id (1-64 of A-Z a-z 0-9 _ - . :)");

function checkRegistry(r, where, problems) {
  const keys = ["pat_client", "resources", "clients", "gate_routes", "webhooks", "remove"];
  if (!checkKeys(r, where, keys, problems)) return;
  if (r.pat_client !== undefined && checkKeys(r.pat_client, `${where}.pat_client`, ["allowed_scopes", "enabled"], problems)) {
    strList(r.pat_client.allowed_scopes, `${where}.pat_client.allowed_scopes`, problems);
    if (r.pat_client.enabled !== undefined && typeof r.pat_client.enabled !== "boolean") problems.push(`${where}.pat_client.enabled: must be true or false`);
  }
  const ids = (list, kind) => {
    const seen = new Set();
    for (const [i, x] of list.entries()) {
      if (x && typeof x.id === "string") {
        if (seen.has(x.id)) problems.push(`${where}.${kind}[${i}].id: ${x.id} declared twice`);
        seen.add(x.id);
      }
    }
  };
  const list = (name, check) => {
    if (r[name] === undefined) return;
    if (!Array.isArray(r[name])) return problems.push(`${where}.${name}: must be a list`);
    r[name].forEach((x, i) => check(x, `${where}.${name}[${i}]`));
    if (name !== "webhooks") ids(r[name], name);
  };
  list("resources", (x, w) => {
    if (!checkKeys(x, w, ["id", "scopes", "enabled"], problems)) return;
    if (!isStr(x.id) || badId(x.id)) problems.push(`${w}.id: required, 1-64 of A-Z a-z 0-9 _ - . :`);
    strList(x.scopes, `${w}.scopes`, problems, { min: 1 });
    if (x.enabled !== undefined && typeof x.enabled !== "boolean") problems.push(`${w}.enabled: must be true or false`);
  });
  list("clients", (x, w) => {
    if (!checkKeys(x, w, ["id", "public", "allowed_scopes", "token_format", "token_lifetime", "enabled"], problems)) return;
    if (!isStr(x.id) || badId(x.id)) problems.push(`${w}.id: required, 1-64 of A-Z a-z 0-9 _ - . :`);
    if (x.id === "pat_client") problems.push(`${w}.id: pat_client is declared under registry.pat_client`);
    strList(x.allowed_scopes, `${w}.allowed_scopes`, problems);
    if (x.public !== undefined && typeof x.public !== "boolean") problems.push(`${w}.public: must be true or false`);
    if (x.token_format !== undefined && !["reference", "jwt"].includes(x.token_format)) problems.push(`${w}.token_format: "reference" or "jwt"`);
    if (x.token_lifetime !== undefined && !(Number.isInteger(x.token_lifetime) && x.token_lifetime >= 60 && x.token_lifetime <= 86400)) problems.push(`${w}.token_lifetime: an integer from 60 to 86400 (seconds)`);
    if (x.enabled !== undefined && typeof x.enabled !== "boolean") problems.push(`${w}.enabled: must be true or false`);
  });
  list("gate_routes", (x, w) => {
    if (!checkKeys(x, w, ["id", "host", "path_prefix", "upstream", "resource", "rules"], problems)) return;
    if (!isStr(x.id) || badId(x.id)) problems.push(`${w}.id: required, 1-64 of A-Z a-z 0-9 _ - . :`);
    if (x.host !== undefined && !/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/.test(String(x.host))) problems.push(`${w}.host: a host name with an optional :port`);
    if (!isStr(x.path_prefix) || !x.path_prefix.startsWith("/") || !x.path_prefix.endsWith("/")) problems.push(`${w}.path_prefix: starts and ends with /`);
    if (!isStr(x.upstream) || !/^https?:\/\/[^/?#@]+(\/[^?#]*)?$/.test(x.upstream)) problems.push(`${w}.upstream: an absolute http(s) URL without query, fragment or credentials`);
    if (!isStr(x.resource)) problems.push(`${w}.resource: required (an API resource id)`);
    if (!Array.isArray(x.rules) || x.rules.length < 1 || x.rules.length > 32) problems.push(`${w}.rules: 1 to 32 rules`);
    else x.rules.forEach((rule, j) => {
      if (!checkKeys(rule, `${w}.rules[${j}]`, ["methods", "scopes"], problems)) return;
      strList(rule.methods, `${w}.rules[${j}].methods`, problems, { min: 1 });
      strList(rule.scopes, `${w}.rules[${j}].scopes`, problems);
    });
  });
  list("webhooks", (x, w) => {
    if (!checkKeys(x, w, ["url", "event_types", "replace"], problems)) return;
    if (!isStr(x.url) || !/^https:\/\/[^/?#@\s]+/.test(x.url)) problems.push(`${w}.url: an https:// URL`);
    strList(x.event_types, `${w}.event_types`, problems, { min: 1, each: (t) => (EVENT_TYPES.includes(t) ? null : `is not an event type (${EVENT_TYPES.join(", ")})`) });
    if (x.replace !== undefined && typeof x.replace !== "boolean") problems.push(`${w}.replace: must be true or false`);
  });
  if (Array.isArray(r.webhooks)) {
    const urls = r.webhooks.map((x) => x?.url);
    if (new Set(urls).size !== urls.length) problems.push(`${where}.webhooks: one entry per url`);
  }
  if (r.remove !== undefined && checkKeys(r.remove, `${where}.remove`, ["resources", "clients", "gate_routes", "webhooks"], problems)) {
    for (const k of ["resources", "clients", "gate_routes", "webhooks"]) {
      if (r.remove[k] !== undefined) strList(r.remove[k], `${where}.remove.${k}`, problems);
    }
    for (const k of ["resources", "clients", "gate_routes"]) {
      for (const id of r.remove[k] ?? []) {
        if ((r[k] ?? []).some((x) => x?.id === id)) problems.push(`${where}.remove.${k}: ${id} is also declared`);
      }
    }
    for (const url of r.remove.webhooks ?? []) if ((r.webhooks ?? []).some((x) => x?.url === url)) problems.push(`${where}.remove.webhooks: ${url} is also declared`);
    if ((r.remove.clients ?? []).includes("pat_client")) problems.push(`${where}.remove.clients: pat_client cannot be removed by the deploy (every PAT depends on it)`);
  }
}

const SETTINGS = ["issuer", "identity", "hosts", "vars", "registry"];

function checkSettings(s, where, problems) {
  if (s.issuer !== undefined && typeof s.issuer !== "string") problems.push(`${where}.issuer: must be a URL string`);
  if (s.identity !== undefined && checkKeys(s.identity, `${where}.identity`, ["access", "jwt"], problems)) {
    const { access, jwt } = s.identity;
    if ((access === undefined) === (jwt === undefined)) problems.push(`${where}.identity: exactly one of "access" or "jwt"`);
    if (access !== undefined && checkKeys(access, `${where}.identity.access`, ["team_domain", "aud"], problems)) {
      if (!isStr(access.team_domain) || !/^[a-z0-9-]+(\.cloudflareaccess\.com)?$/i.test(access.team_domain)) problems.push(`${where}.identity.access.team_domain: your team's name or <team>.cloudflareaccess.com`);
      if (!isStr(access.aud) || !/^[0-9a-f]{64}$/.test(access.aud)) problems.push(`${where}.identity.access.aud: the Access application's AUD tag (64 hex digits)`);
    }
    if (jwt !== undefined && checkKeys(jwt, `${where}.identity.jwt`, ["issuer", "audience", "jwks_url"], problems)) {
      if (!isStr(jwt.issuer)) problems.push(`${where}.identity.jwt.issuer: required (the tokens' iss)`);
      if (!isStr(jwt.audience)) problems.push(`${where}.identity.jwt.audience: required (the tokens' aud)`);
      if (!isStr(jwt.jwks_url) || !jwt.jwks_url.startsWith("https://")) problems.push(`${where}.identity.jwt.jwks_url: an https:// URL`);
    }
  }
  if (s.hosts !== undefined) strList(s.hosts, `${where}.hosts`, problems, { each: (h) => (/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(h) ? null : "is not a host name") });
  if (s.vars !== undefined && checkKeys(s.vars, `${where}.vars`, Object.keys(s.vars), problems)) {
    for (const [k, v] of Object.entries(s.vars)) {
      if (!/^[A-Z][A-Z0-9_]*$/.test(k)) problems.push(`${where}.vars.${k}: names are UPPER_SNAKE_CASE`);
      if (typeof v !== "string") problems.push(`${where}.vars.${k}: values are strings`);
    }
  }
  if (s.registry !== undefined) checkRegistry(s.registry, `${where}.registry`, problems);
}

/** Validates a parsed config file; returns the list of problems (empty: valid). */
export function validateConfig(config) {
  const problems = [];
  if (!checkKeys(config, "config", ["$schema", "account_id", ...SETTINGS, "environments"], problems)) return problems;
  if (config.account_id !== undefined && !/^[0-9a-f]{32}$/.test(String(config.account_id))) problems.push("config.account_id: 32 hex digits");
  checkSettings(config, "config", problems);
  if (config.environments !== undefined && checkKeys(config.environments, "config.environments", Object.keys(config.environments), problems)) {
    for (const [name, env] of Object.entries(config.environments)) {
      if (!ENV_NAME.test(name) || name === "production") problems.push(`config.environments.${name}: names are lower case letters, digits and -, not "production"`);
      if (checkKeys(env, `config.environments.${name}`, SETTINGS, problems)) checkSettings(env, `config.environments.${name}`, problems);
    }
  }
  return problems;
}

/** Reads and validates the config file; throws a Refusal listing every problem. */
export function loadConfig(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Refusal([`cannot read the config file ${path}: ${e.code ?? e.message} (copy patgate.config.example.json to start)`]);
  }
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new Refusal([`${path} is not valid JSON: ${e.message}`]);
  }
  const problems = validateConfig(config);
  if (problems.length) throw new Refusal(problems.map((p) => `${path}: ${p}`));
  return config;
}

// ---------------------------------------------------------------------------------------------
// The plan.

const LOCAL_HOST = /^(localhost|.*\.localhost|127(\.\d{1,3}){3}|0\.0\.0\.0|\[::1?\]|\[0*:.*\])$/i;

/** Refusals of the issuer: https, not this machine, no query or fragment. */
export function checkIssuer(issuer) {
  if (!issuer) return ["no issuer: set \"issuer\" in the config file or pass --issuer https://auth.example.com"];
  let u;
  try {
    u = new URL(issuer);
  } catch {
    return [`issuer ${JSON.stringify(issuer)} is not a URL`];
  }
  const problems = [];
  if (LOCAL_HOST.test(u.hostname)) problems.push(`issuer ${issuer} is on this machine (${u.hostname}): production needs the public https URL clients will use`);
  else if (u.protocol !== "https:") problems.push(`issuer ${issuer} is not https`);
  if (u.search || u.hash || u.username || u.password) problems.push(`issuer ${issuer} has a query, fragment or credentials`);
  return problems;
}

/** Refusals of local-only switches and demo values in what would be deployed. */
export function checkProductionValues(vars, { adminToken } = {}) {
  const problems = [];
  for (const k of LOCAL_ONLY) if (k in vars) problems.push(`${k} is set in the production settings: it exists for local dev only (scripts/devserver.mjs)`);
  if (vars.DEV_COUNTERS === "true") problems.push(`DEV_COUNTERS = "true" in the production settings: local dev and benchmark only`);
  for (const k of SECRET_NAMES) if (k in vars) problems.push(`${k} is a secret: it is never a plain var (the deploy generates and uploads the secrets)`);
  // Demo values that identify the local setup (secrets, issuers); short values such as "true" or
  // a number say nothing about where they came from and are never flagged.
  const demo = new Map(
    Object.entries(DEV_VARS)
      .filter(([k, v]) => !["ISSUER", "USER_JWT_AUDIENCE", ...LOCAL_ONLY].includes(k) && v.length >= 8)
      .map(([k, v]) => [v, k]),
  );
  for (const [k, v] of Object.entries(vars)) {
    if (demo.has(v)) problems.push(`${k} has the local demo value of ${demo.get(v)} (scripts/devserver.mjs)`);
    else if ([...demo.keys()].some((d) => d.length > 20 && v.includes(d))) problems.push(`${k} contains a local demo secret (scripts/devserver.mjs)`);
  }
  if (adminToken !== undefined && (adminToken === DEV_VARS.ADMIN_TOKEN || adminToken.length < 32)) {
    problems.push(adminToken === DEV_VARS.ADMIN_TOKEN ? "PATGATE_ADMIN_TOKEN is the local demo admin token" : "PATGATE_ADMIN_TOKEN is shorter than 32 characters");
  }
  return problems;
}

function identityVars(identity) {
  if (identity?.access) {
    const team = identity.access.team_domain.includes(".") ? identity.access.team_domain : `${identity.access.team_domain}.cloudflareaccess.com`;
    return { USER_JWT_ISSUER: `https://${team}`, USER_JWKS_URL: `https://${team}/cdn-cgi/access/certs`, USER_JWT_AUDIENCE: identity.access.aud };
  }
  if (identity?.jwt) return { USER_JWT_ISSUER: identity.jwt.issuer, USER_JWKS_URL: identity.jwt.jwks_url, USER_JWT_AUDIENCE: identity.jwt.audience };
  return null;
}

/** A resource name in an environment: production keeps wrangler.toml's names, others get `-<env>`. */
// A dead-letter queue keeps its `-dlq` ending in every environment: the Worker recognises its
// messages by that ending (src/edge/queue.rs).
export const envName = (name, env) => {
  if (!env) return name;
  return name.endsWith("-dlq") ? `${name.slice(0, -4)}-${env}-dlq` : `${name}-${env}`;
};

/**
 * The whole plan, from wrangler.toml (parsed), the config file (validated) and the command line
 * (`flags`: env, issuer, access team domain/aud, jwt settings). Throws a Refusal listing every
 * problem. Resource ids are filled in later (`generatedConfig`).
 */
export function makePlan({ toml, config, flags = {}, root, adminToken }) {
  const env = flags.env ?? null;
  const problems = [];
  if (env !== null && !ENV_NAME.test(env)) problems.push(`--env ${env}: lower case letters, digits and -`);
  const base = { ...config };
  delete base.environments;
  const over = env ? config.environments?.[env] : {};
  if (env && !over) problems.push(`--env ${env}: no environments.${env} in the config file (environments keep their own issuer and resources)`);
  const s = { ...base, ...(over ?? {}) };
  const issuer = (flags.issuer ?? s.issuer ?? "").replace(/\/+$/, "");
  problems.push(...checkIssuer(issuer));
  let identity = s.identity;
  if (flags.accessTeamDomain || flags.accessAud) identity = { access: { team_domain: flags.accessTeamDomain, aud: flags.accessAud } };
  if (flags.jwksUrl || flags.jwtIssuer || flags.jwtAudience) identity = { jwt: { jwks_url: flags.jwksUrl, issuer: flags.jwtIssuer, audience: flags.jwtAudience } };
  if (identity !== s.identity) checkSettings({ identity }, "flags", problems);
  const idVars = identityVars(identity);
  if (!idVars) problems.push("no identity provider: set identity.access (Cloudflare Access team domain and AUD) or identity.jwt in the config file, or --access-team-domain and --access-aud");
  for (const k of Object.keys(s.vars ?? {})) if (SET_BY_DEPLOY.includes(k)) problems.push(`vars.${k}: set by the deploy from "issuer"/"identity", not a var`);
  const tomlVars = toml.vars ?? {};
  for (const k of SET_BY_DEPLOY) if (k in tomlVars) problems.push(`wrangler.toml [vars] sets ${k}: it is set per deployment by the deploy (remove it)`);
  const vars = { ...tomlVars, ...(s.vars ?? {}), ...(issuer ? { ISSUER: issuer } : {}), ...(idVars ?? {}) };
  problems.push(...checkProductionValues(vars, { adminToken }));
  if (toml.kv_namespaces?.some((k) => k.id) || toml.d1_databases?.some((d) => d.database_id)) problems.push("wrangler.toml holds resource ids: remove them, the deploy finds the resources by name");
  if (problems.length) throw new Refusal(problems);

  const worker = envName(toml.name, env);
  const issuerHost = new URL(issuer).hostname;
  const workersDev = issuerHost.endsWith(".workers.dev");
  const hosts = [...new Set([...(workersDev ? [] : [issuerHost]), ...(s.hosts ?? [])])];
  const queueNames = new Set();
  for (const p of toml.queues?.producers ?? []) queueNames.add(p.queue);
  for (const c of toml.queues?.consumers ?? []) {
    queueNames.add(c.queue);
    if (c.dead_letter_queue) queueNames.add(c.dead_letter_queue);
  }
  return {
    env,
    envLabel: env ?? "production",
    worker,
    issuer,
    issuerHost,
    workersDev,
    hosts,
    vars,
    accountId: flags.accountId ?? config.account_id ?? null,
    kv: (toml.kv_namespaces ?? []).map((k) => ({ binding: k.binding, title: `${worker}-${k.binding.toLowerCase()}` })),
    d1: (toml.d1_databases ?? []).map((d) => ({ binding: d.binding, name: envName(d.database_name, env), migrationsDir: join(root, d.migrations_dir ?? "migrations") })),
    queues: [...queueNames].map((q) => ({ name: envName(q, env) })),
    registry: s.registry ?? {},
    adminUrl: (flags.adminUrl ?? issuer).replace(/\/+$/, ""),
  };
}

/**
 * The wrangler config that is deployed: wrangler.toml with the environment's names, the ids found
 * or created, absolute paths, the vars, the routes and the required secrets. `ids`: binding -> id.
 */
export function generatedConfig(toml, plan, ids, root) {
  const abs = (p) => (isAbsolute(p) ? p : join(root, p));
  const out = structuredClone(toml);
  out.name = plan.worker;
  out.main = abs(toml.main);
  out.vars = plan.vars;
  out.kv_namespaces = (toml.kv_namespaces ?? []).map((k) => ({ ...k, id: ids.kv[k.binding] }));
  out.d1_databases = (toml.d1_databases ?? []).map((d) => ({
    ...d,
    database_name: envName(d.database_name, plan.env),
    database_id: ids.d1[d.binding],
    migrations_dir: abs(d.migrations_dir ?? "migrations"),
  }));
  if (toml.queues) {
    out.queues = {
      producers: (toml.queues.producers ?? []).map((p) => ({ ...p, queue: envName(p.queue, plan.env) })),
      consumers: (toml.queues.consumers ?? []).map((c) => ({
        ...c,
        queue: envName(c.queue, plan.env),
        ...(c.dead_letter_queue ? { dead_letter_queue: envName(c.dead_letter_queue, plan.env) } : {}),
      })),
    };
  }
  out.workers_dev = plan.workersDev;
  out.preview_urls = false;
  out.routes = plan.hosts.map((h) => ({ pattern: h, custom_domain: true }));
  out.secrets = { required: REQUIRED_SECRETS };
  out.send_metrics = false;
  return out;
}
