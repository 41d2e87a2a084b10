// `npm run deploy`, part 2: the Cloudflare API calls the deploy makes itself (wrangler makes the
// rest: D1 migrations and the Worker upload). Read-only probes and listings first, so that a token
// without the needed permissions is refused before anything changes; then create-or-reuse of the
// KV namespace, D1 database and queues by name. CLOUDFLARE_API_BASE_URL points it (and wrangler)
// at another API, which is how the tests run a whole deploy against a local mock.
import { spawnSync } from "node:child_process";
import { buildEnv, nodeBin, ROOT } from "./tools.mjs";

export const apiBase = () => (process.env.CLOUDFLARE_API_BASE_URL ?? "https://api.cloudflare.com/client/v4").replace(/\/+$/, "");

export class ApiError extends Error {
  constructor(method, path, status, errors) {
    const first = errors?.[0] ?? {};
    super(`${method} ${path}: ${status} ${first.code ?? ""} ${first.message ?? ""}`.trim());
    this.status = status;
    this.code = first.code;
  }
}

/** The API token: CLOUDFLARE_API_TOKEN, else the one of `wrangler login` (refreshed by wrangler). */
export function resolveToken() {
  if (process.env.CLOUDFLARE_API_TOKEN) return { token: process.env.CLOUDFLARE_API_TOKEN, source: "CLOUDFLARE_API_TOKEN" };
  const r = spawnSync(nodeBin("wrangler"), ["auth", "token", "--json"], { cwd: ROOT, env: buildEnv(), encoding: "utf8" });
  if (r.status === 0) {
    try {
      const j = JSON.parse(r.stdout);
      const token = j.token ?? j.apiToken ?? j.value;
      if (typeof token === "string" && token) return { token, source: "wrangler login" };
    } catch {}
  }
  return null;
}

export class CloudflareApi {
  constructor(token, base = apiBase()) {
    this.token = token;
    this.base = base;
  }

  async req(method, path, body) {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let j = null;
    try {
      j = await r.json();
    } catch {}
    if (!r.ok || !j?.success) throw new ApiError(method, path, r.status, j?.errors);
    return j;
  }

  async get(path) {
    return (await this.req("GET", path)).result;
  }

  async post(path, body) {
    return (await this.req("POST", path, body)).result;
  }

  /** Every page of a paginated listing. */
  async list(path, perPage = 100) {
    const out = [];
    for (let page = 1; page < 1000; page++) {
      const sep = path.includes("?") ? "&" : "?";
      const j = await this.req("GET", `${path}${sep}page=${page}&per_page=${perPage}`);
      out.push(...(j.result ?? []));
      const info = j.result_info;
      if (!info || (j.result ?? []).length < perPage || (info.total_pages && page >= info.total_pages)) break;
    }
    return out;
  }
}

/** Account permissions the deploy needs, each with a read-only probe. */
export const NEEDED = [
  { permission: "Workers Scripts: Edit", probe: (a) => `/accounts/${a}/workers/scripts` },
  { permission: "Workers KV Storage: Edit", probe: (a) => `/accounts/${a}/storage/kv/namespaces?per_page=5` },
  { permission: "D1: Edit", probe: (a) => `/accounts/${a}/d1/database?per_page=5` },
  { permission: "Queues: Edit", probe: (a) => `/accounts/${a}/queues` },
];

/** The account: given, or the token's only account. Throws a readable error otherwise. */
export async function resolveAccount(api, given) {
  if (given) return given;
  const accounts = await api.list("/accounts", 50);
  if (accounts.length === 1) return accounts[0].id;
  if (accounts.length === 0) throw new Error("the API token sees no account: set CLOUDFLARE_ACCOUNT_ID");
  throw new Error(`the API token sees ${accounts.length} accounts (${accounts.map((a) => `${a.name} ${a.id}`).join(", ")}): set CLOUDFLARE_ACCOUNT_ID or account_id in the config file`);
}

/** Permissions whose read probe is refused (401/403). Other errors are thrown. */
export async function missingPermissions(api, accountId) {
  const missing = [];
  for (const n of NEEDED) {
    try {
      await api.get(n.probe(accountId));
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) missing.push(n.permission);
      else throw e;
    }
  }
  return missing;
}

/**
 * What exists, read-only: KV namespaces, D1 databases and queues by the plan's names, the Worker,
 * its secrets' names, the workers.dev subdomain (when the issuer is on workers.dev).
 */
export async function readState(api, plan) {
  const a = plan.accountId;
  const namespaces = await api.list(`/accounts/${a}/storage/kv/namespaces`);
  const kv = Object.fromEntries(plan.kv.map((k) => [k.binding, namespaces.find((n) => n.title === k.title)?.id ?? null]));
  const d1 = {};
  for (const d of plan.d1) {
    const found = await api.list(`/accounts/${a}/d1/database?name=${encodeURIComponent(d.name)}`);
    d1[d.binding] = found.find((x) => x.name === d.name)?.uuid ?? null;
  }
  const queueList = await api.list(`/accounts/${a}/queues`);
  const queues = Object.fromEntries(plan.queues.map((q) => [q.name, queueList.find((x) => x.queue_name === q.name)?.queue_id ?? null]));
  let workerExists = true;
  let secrets = [];
  try {
    await api.get(`/accounts/${a}/workers/services/${plan.worker}`);
    secrets = (await api.get(`/accounts/${a}/workers/scripts/${plan.worker}/secrets`)).map((s) => s.name);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    workerExists = false;
  }
  const subdomain = plan.workersDev ? (await api.get(`/accounts/${a}/workers/subdomain`))?.subdomain ?? null : null;
  return { kv, d1, queues, workerExists, secrets, subdomain };
}

/** Creates what `state` lacks; returns { ids, created: [lines] }. */
export async function ensureResources(api, plan, state) {
  const a = plan.accountId;
  const created = [];
  const ids = { kv: { ...state.kv }, d1: { ...state.d1 }, queues: { ...state.queues } };
  for (const k of plan.kv) {
    if (!ids.kv[k.binding]) {
      ids.kv[k.binding] = (await api.post(`/accounts/${a}/storage/kv/namespaces`, { title: k.title })).id;
      created.push(`KV namespace ${k.title} (${k.binding})`);
    }
  }
  for (const d of plan.d1) {
    if (!ids.d1[d.binding]) {
      ids.d1[d.binding] = (await api.post(`/accounts/${a}/d1/database`, { name: d.name })).uuid;
      created.push(`D1 database ${d.name} (${d.binding})`);
    }
  }
  for (const q of plan.queues) {
    if (!ids.queues[q.name]) {
      ids.queues[q.name] = (await api.post(`/accounts/${a}/queues`, { queue_name: q.name })).queue_id;
      created.push(`Queue ${q.name}`);
    }
  }
  return { ids, created };
}
