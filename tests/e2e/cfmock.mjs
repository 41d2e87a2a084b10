// A mock of the Cloudflare API on loopback, for the deploy tests: wrangler and scripts/deploy.mjs
// talk to it through CLOUDFLARE_API_BASE_URL. It keeps state (KV namespaces, D1 databases as real
// SQLite databases, queues and consumers, Workers with their uploaded bindings and secrets,
// schedules, custom domains, workers.dev) and records every call in order. A call it does not know
// is answered 404 and recorded with `unknown: true`, so a test notices when wrangler starts making
// calls the mock does not model.
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { DatabaseSync } from "node:sqlite";

/** Permission groups, each granting a family of endpoints (a token may lack some). */
export const PERMISSIONS = ["Workers Scripts", "Workers KV Storage", "D1", "Queues", "Workers Routes"];

const ok = (result, extra = {}) => ({ success: true, errors: [], messages: [], result, ...extra });
const fail = (status, code, message) => ({ status, body: { success: false, errors: [{ code, message }], messages: [], result: null } });

function permissionFor(path) {
  if (/\/storage\/kv\//.test(path)) return "Workers KV Storage";
  if (/\/d1\//.test(path)) return "D1";
  if (/\/queues/.test(path)) return "Queues";
  if (/\/workers\/domains|\/zones/.test(path)) return "Workers Routes";
  if (/\/workers\//.test(path)) return "Workers Scripts";
  return null;
}

/**
 * Starts the mock. `tokens`: API token -> list of permission groups it has (default: one token,
 * "test-token", with all of them). `failSql`: a RegExp; a D1 query whose SQL matches fails like a
 * SQLite error (an injected migration failure). `onUpload(script)`: called after a Worker upload
 * (the test's stand-in for the deployed Worker). Returns { url, calls, state, close() }.
 */
export async function startCloudflareMock({ port, accountId = "acc0123456789abcdef0123456789abcd", tokens = { "test-token": PERMISSIONS }, failSql = null, onUpload = null } = {}) {
  const state = { kv: new Map(), d1: new Map(), queues: new Map(), scripts: new Map(), pending: new Map(), subdomain: "patgate-test", domains: [] };
  const calls = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, "http://mock");
    const path = url.pathname.replace(/^\/client\/v4/, "");
    const call = { method: req.method, path, query: Object.fromEntries(url.searchParams) };
    calls.push(call);
    let answer;
    try {
      answer = await route(req, path, url, raw, call);
    } catch (e) {
      answer = fail(500, 10000, `mock error: ${e.stack}`);
    }
    call.status = answer.status ?? 200;
    // CFMOCK_LOG=1: every call on stderr (debugging a new wrangler's calls)
    if (process.env.CFMOCK_LOG) console.error(`[cfmock] ${call.status} ${req.method} ${path}${url.search}${call.unknown ? " UNKNOWN" : ""}${call.status >= 400 ? ` ${JSON.stringify(answer.body?.errors)}` : ""}`);
    res.writeHead(call.status, { "content-type": "application/json" });
    res.end(JSON.stringify(answer.body ?? answer));
  });

  async function route(req, path, url, raw, call) {
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    if (!(token in tokens)) return fail(401, 10000, "Authentication error");
    const needed = permissionFor(path);
    if (needed && !tokens[token].includes(needed)) return fail(403, 10000, "Authentication error");
    const json = () => (raw.length ? JSON.parse(raw.toString("utf8")) : {});
    const m = (re) => path.match(re);
    const A = `/accounts/${accountId}`;
    let g;

    if (path === "/user/tokens/verify" || path === `${A}/tokens/verify`) return ok({ id: "tok", status: "active" });
    if (path === "/accounts") return ok([{ id: accountId, name: "Test account" }]);
    if (path === "/memberships") return ok([{ account: { id: accountId, name: "Test account" } }]);
    if (path.startsWith("/accounts/") && !path.startsWith(A)) return fail(403, 10000, "Authentication error");

    // --- KV -----------------------------------------------------------------------------------
    if (path === `${A}/storage/kv/namespaces`) {
      if (req.method === "GET") return page([...state.kv.values()], url);
      if (req.method === "POST") {
        const { title } = json();
        if ([...state.kv.values()].some((n) => n.title === title)) return fail(400, 10014, "a namespace with this account ID and title already exists");
        const ns = { id: randomUUID().replaceAll("-", ""), title, supports_url_encoding: true };
        state.kv.set(ns.id, ns);
        call.created = { kv: title };
        return ok(ns);
      }
    }

    // --- D1 -----------------------------------------------------------------------------------
    if (path === `${A}/d1/database`) {
      if (req.method === "GET") {
        let list = [...state.d1.values()].map(d1Info);
        if (url.searchParams.get("name")) list = list.filter((d) => d.name === url.searchParams.get("name"));
        return page(list, url);
      }
      if (req.method === "POST") {
        const { name } = json();
        if ([...state.d1.values()].some((d) => d.name === name)) return fail(400, 7502, "A database with that name already exists");
        const db = { uuid: randomUUID(), name, created_at: new Date().toISOString(), sqlite: new DatabaseSync(":memory:") };
        state.d1.set(db.uuid, db);
        call.created = { d1: name };
        return ok(d1Info(db));
      }
    }
    if ((g = m(/^\/accounts\/[^/]+\/d1\/database\/([^/]+)$/)) && req.method === "GET") {
      const db = state.d1.get(g[1]) ?? [...state.d1.values()].find((d) => d.name === g[1]);
      return db ? ok(d1Info(db)) : fail(404, 7404, "The database could not be found");
    }
    if ((g = m(/^\/accounts\/[^/]+\/d1\/database\/([^/]+)\/(query|raw)$/)) && req.method === "POST") {
      const db = state.d1.get(g[1]);
      if (!db) return fail(404, 7404, "The database could not be found");
      const { sql, params = [] } = json();
      call.sql = sql;
      if (failSql && failSql.test(sql)) return fail(400, 7500, "SQLITE_ERROR: injected migration failure");
      try {
        return ok(runSql(db.sqlite, sql, params, g[2] === "raw"));
      } catch (e) {
        return fail(400, 7500, `${e.message}: SQLITE_ERROR`);
      }
    }

    // --- Queues -------------------------------------------------------------------------------
    if (path === `${A}/queues`) {
      if (req.method === "GET") {
        let list = [...state.queues.values()].map(queueInfo);
        if (url.searchParams.get("name")) list = list.filter((q) => q.queue_name === url.searchParams.get("name"));
        return page(list, url);
      }
      if (req.method === "POST") {
        const { queue_name } = json();
        if ([...state.queues.values()].some((q) => q.queue_name === queue_name)) return fail(400, 11009, "Queue name already taken");
        const q = { queue_id: randomUUID().replaceAll("-", ""), queue_name, consumers: [], created_on: new Date().toISOString() };
        state.queues.set(q.queue_id, q);
        call.created = { queue: queue_name };
        return ok(queueInfo(q));
      }
    }
    if ((g = m(/^\/accounts\/[^/]+\/queues\/([^/]+)$/)) && req.method === "GET") {
      const q = state.queues.get(g[1]) ?? [...state.queues.values()].find((x) => x.queue_name === g[1]);
      return q ? ok(queueInfo(q)) : fail(404, 11000, "Queue does not exist");
    }
    if ((g = m(/^\/accounts\/[^/]+\/queues\/([^/]+)\/consumers(?:\/([^/]+))?$/))) {
      const q = state.queues.get(g[1]);
      if (!q) return fail(404, 11000, "Queue does not exist");
      if (req.method === "GET") return ok(q.consumers);
      if (req.method === "POST") {
        const c = { consumer_id: randomUUID().replaceAll("-", ""), type: "worker", ...json() };
        c.script = c.script ?? c.script_name;
        q.consumers.push(c);
        call.created = { consumer: q.queue_name };
        return ok(c);
      }
      if (req.method === "PUT") {
        const i = q.consumers.findIndex((c) => c.consumer_id === g[2]);
        if (i < 0) return fail(404, 11000, "Consumer does not exist");
        q.consumers[i] = { ...q.consumers[i], ...json(), consumer_id: g[2] };
        return ok(q.consumers[i]);
      }
      if (req.method === "DELETE") {
        q.consumers = q.consumers.filter((c) => c.consumer_id !== g[2]);
        return ok(null);
      }
    }

    // --- Workers ------------------------------------------------------------------------------
    if (path === `${A}/workers/subdomain`) return ok({ subdomain: state.subdomain });
    if ((g = m(/^\/accounts\/[^/]+\/workers\/services\/([^/]+)$/)) && req.method === "GET") {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10090, "This Worker does not exist on your account.");
      return ok({ id: s.name, default_environment: { environment: "production", script: scriptInfo(s) } });
    }
    if (path === `${A}/workers/scripts` && req.method === "GET") return ok([...state.scripts.values()].map(scriptInfo));
    // A Worker upload: PUT the script (a new Worker, or a Durable Object migration) deploys at
    // once; POST a version then POST a deployment of it (wrangler's path for an existing Worker).
    const versionUpload = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/versions$/) && req.method === "POST";
    if (((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)$/)) && req.method === "PUT") || (versionUpload && (g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/versions$/)))) {
      const form = await new Response(raw, { headers: { "content-type": req.headers["content-type"] } }).formData();
      const meta = form.get("metadata");
      const metadata = JSON.parse(typeof meta === "string" ? meta : await meta.text());
      const name = g[1];
      const prev = state.scripts.get(name);
      if (versionUpload && !prev) return fail(404, 10007, "This Worker does not exist on your account.");
      const secrets = { ...(prev?.secrets ?? {}) };
      for (const b of metadata.bindings ?? []) if (b.type === "secret_text") secrets[b.name] = b.text;
      // An "inherit" binding takes the previous version's binding of that name (a kept secret, or a
      // resource wrangler found already bound); one that has none is invalid.
      const inherited = [];
      for (const b of metadata.bindings ?? []) {
        if (b.type !== "inherit") continue;
        const before = prev?.metadata.bindings.find((x) => x.name === b.name && x.type !== "secret_text");
        if (!(b.name in secrets) && !before) return fail(400, 10021, `inherit binding '${b.name}' is invalid`);
        if (before) inherited.push(before);
      }
      metadata.bindings = [...(metadata.bindings ?? []).filter((b) => b.type !== "inherit" || b.name in secrets), ...inherited];
      call.inherited = (metadata.bindings ?? []).filter((b) => b.type === "inherit").map((b) => b.name).concat(inherited.map((b) => b.name));
      if (metadata.migrations && (metadata.migrations.old_tag ?? null) !== (prev?.migration_tag ?? null)) {
        return fail(400, 10079, `migration old_tag ${metadata.migrations.old_tag} does not match ${prev?.migration_tag}`);
      }
      const modules = {};
      for (const [k, v] of form.entries()) if (k !== "metadata" && typeof v !== "string") modules[k] = Buffer.from(await v.arrayBuffer());
      const s = {
        ...(prev ?? {}),
        name,
        etag: randomUUID(),
        version: (prev?.version ?? 0) + 1,
        metadata,
        secrets,
        modules,
        migration_tag: metadata.migrations?.new_tag ?? prev?.migration_tag,
        workers_dev: prev?.workers_dev ?? false,
        schedules: prev?.schedules ?? [],
        created_on: prev?.created_on ?? new Date().toISOString(),
      };
      call.upload = { version: s.version, secretsUploaded: (metadata.bindings ?? []).filter((b) => b.type === "secret_text").map((b) => b.name).sort() };
      if (versionUpload) {
        state.pending.set(s.etag, s);
        return ok({ id: s.etag, number: s.version, resources: { script: { etag: s.etag, handlers: ["fetch", "queue", "scheduled"] }, bindings: metadata.bindings }, startup_time_ms: 10 });
      }
      const refused = await startWorker(s);
      if (refused) return refused;
      state.scripts.set(name, s);
      return ok({ id: name, etag: s.etag, handlers: ["fetch", "queue", "scheduled"], deployment_id: randomUUID(), startup_time_ms: 10 });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/deployments$/)) && req.method === "POST") {
      const { versions } = json();
      const s = state.pending.get(versions?.[0]?.version_id);
      if (!s || versions.length !== 1 || versions[0].percentage !== 100) return fail(400, 10000, "unknown version");
      const refused = await startWorker(s);
      if (refused) return refused;
      state.pending.delete(s.etag);
      state.scripts.set(g[1], s);
      call.deployed = { version: s.version };
      return ok({ id: randomUUID(), strategy: "percentage", versions });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/script-settings$/)) && req.method === "PATCH") {
      return state.scripts.has(g[1]) ? ok(json()) : fail(404, 10007, "This Worker does not exist on your account.");
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/workers\/([^/]+)$/)) && req.method === "GET") {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10007, "This Worker does not exist on your account.");
      return ok({ id: s.name, name: s.name, subdomain: { enabled: s.workers_dev, previews_enabled: s.previews_enabled ?? false }, previews_base_config: {} });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/settings$/)) && req.method === "GET") {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10007, "This Worker does not exist on your account.");
      return ok({ bindings: s.metadata.bindings.filter((b) => !["secret_text", "plain_text"].includes(b.type)), compatibility_date: s.metadata.compatibility_date, logpush: false, placement: {} });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/deployments$/)) && req.method === "GET") {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10007, "This Worker does not exist on your account.");
      return ok({ deployments: [{ id: s.etag, source: "wrangler", strategy: "percentage", created_on: s.created_on, versions: [{ version_id: s.etag, percentage: 100 }] }] });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/secrets$/)) && req.method === "GET") {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10007, "This Worker does not exist on your account.");
      return ok(Object.keys(s.secrets).sort().map((name) => ({ name, type: "secret_text" })));
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/subdomain$/))) {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10007, "This Worker does not exist on your account.");
      if (req.method === "POST") {
        const b = json();
        if (s.workers_dev !== b.enabled) call.changed = { workers_dev: b.enabled };
        s.workers_dev = b.enabled;
        s.previews_enabled = b.previews_enabled ?? s.previews_enabled;
      }
      return ok({ enabled: s.workers_dev, previews_enabled: s.previews_enabled ?? false });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/schedules$/))) {
      const s = state.scripts.get(g[1]);
      if (!s) return fail(404, 10007, "This Worker does not exist on your account.");
      if (req.method === "PUT") s.schedules = json().map((x) => ({ cron: x.cron }));
      return ok({ schedules: s.schedules });
    }
    if (path === `${A}/workers/domains/records` || path === `${A}/workers/domains`) {
      if (req.method === "GET") return ok(state.domains);
      if (req.method === "PUT") {
        const b = json();
        for (const o of b.origins ?? []) {
          if (!state.domains.some((d) => d.hostname === o.hostname)) {
            state.domains.push({ id: randomUUID(), hostname: o.hostname, service: b.service ?? b.script, environment: "production", zone_name: o.hostname.split(".").slice(-2).join(".") });
            call.created = { domain: o.hostname };
          }
        }
        return ok(state.domains);
      }
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/domains\/changeset$/)) && req.method === "POST") {
      const wanted = json();
      const mine = state.domains.filter((d) => d.service === g[1]);
      return ok({
        added: wanted.filter((d) => !state.domains.some((x) => x.hostname === d.hostname)).map((d) => ({ ...d, id: randomUUID(), service: g[1] })),
        removed: mine.filter((d) => !wanted.some((w) => w.hostname === d.hostname)),
        updated: mine.filter((d) => wanted.some((w) => w.hostname === d.hostname)).map((d) => ({ ...d, modified: false })),
        conflicting: [],
      });
    }
    if ((g = m(/^\/accounts\/[^/]+\/workers\/scripts\/([^/]+)\/domains\/records$/)) && req.method === "PUT") {
      const b = json();
      for (const o of b.origins ?? []) {
        if (!state.domains.some((d) => d.hostname === o.hostname)) {
          state.domains.push({ id: randomUUID(), hostname: o.hostname, service: g[1], environment: "production" });
          call.created = { domain: o.hostname };
        }
      }
      return ok(null);
    }
    call.unknown = true;
    return fail(404, 7003, `No route for that URI (mock: ${req.method} ${path})`);
  }

  /** The Worker must start, as Cloudflare validates an upload: else the upload is refused. */
  async function startWorker(s) {
    if (!onUpload) return null;
    try {
      await onUpload(s);
      return null;
    } catch (e) {
      return fail(400, 10021, `the Worker failed to start: ${e.message}`);
    }
  }

  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${port}/client/v4`,
    accountId,
    calls,
    state,
    /** Calls whose method is not GET (the changes). */
    changes: () => calls.filter((c) => c.method !== "GET"),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

function page(list, url) {
  const perPage = Number(url.searchParams.get("per_page") ?? 1000);
  const p = Number(url.searchParams.get("page") ?? 1);
  const slice = list.slice((p - 1) * perPage, p * perPage);
  return ok(slice, { result_info: { page: p, per_page: perPage, count: slice.length, total_count: list.length, total_pages: Math.max(1, Math.ceil(list.length / perPage)) } });
}

function d1Info(db) {
  return { uuid: db.uuid, name: db.name, created_at: db.created_at, version: "production", num_tables: 0, file_size: 0, running_in_region: "WEUR" };
}

function queueInfo(q) {
  return { queue_id: q.queue_id, queue_name: q.queue_name, created_on: q.created_on, modified_on: q.created_on, producers: [], producers_total_count: 0, consumers: q.consumers, consumers_total_count: q.consumers.length };
}

function scriptInfo(s) {
  return { id: s.name, tag: s.name, etag: s.etag, last_deployed_from: "wrangler", handlers: ["fetch", "queue", "scheduled"], migration_tag: s.migration_tag, created_on: s.created_on, modified_on: new Date().toISOString(), usage_model: "standard" };
}

/** Runs a D1 query like the /query endpoint: the statements in one transaction, rows of the last. */
function runSql(db, sql, params, raw) {
  const meta = { changed_db: false, changes: 0, duration: 1, rows_read: 0, rows_written: 0 };
  const single = !/;\s*\S/.test(sql.trim().replace(/;\s*$/, ""));
  if (single && /^\s*(SELECT|PRAGMA|WITH)/i.test(sql)) {
    const rows = db.prepare(sql).all(...params);
    if (raw) return [{ results: { columns: rows.length ? Object.keys(rows[0]) : [], rows: rows.map((r) => Object.values(r)) }, success: true, meta }];
    return [{ results: rows, success: true, meta }];
  }
  db.exec("BEGIN");
  try {
    if (params.length) db.prepare(sql).run(...params);
    else db.exec(sql);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw Object.assign(new Error(e.message), { d1: true });
  }
  return [{ results: [], success: true, meta: { ...meta, changed_db: true } }];
}
