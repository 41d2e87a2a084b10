// `npm run deploy`, part 3: brings the registry (API resources and their scopes, the PAT client,
// clients, gate routes, webhook endpoints) to the state declared in patgate.config.json, through
// the deployed Worker's admin API. It never replaces a row: a missing record is created (POST),
// a differing one is changed in place (PATCH with If-Match, or PUT for gate routes, which carry no
// token-bearing identity), and only the records listed under `registry.remove` are deleted. A
// replaced client or resource would get a new internal uid and every token issued under the old
// one would die, which is why nothing here ever deletes and recreates them.

const sameSet = (a = [], b = []) => a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");

/** The declared clients, the PAT client first (public, reference tokens). */
function declaredClients(registry) {
  const out = [];
  if (registry.pat_client) out.push({ id: "pat_client", public: true, ...registry.pat_client });
  out.push(...(registry.clients ?? []));
  return out;
}

function canonicalRoute(r) {
  return JSON.stringify({
    host: r.host ? String(r.host).toLowerCase() : null,
    path_prefix: r.path_prefix,
    upstream: r.upstream,
    resource: r.resource,
    rules: r.rules.map((x) => ({ methods: [...x.methods], scopes: [...x.scopes] })),
  });
}

/**
 * The actions that take `current` (the admin API's listings) to `registry` (declared), in an
 * order the admin API accepts: resources before the clients and routes that name their scopes,
 * deletions last. Each action: { method, path, body, ifMatch (GET this path for the ETag first),
 * say (one line for the report), secret (where the answer's shown-once secret is) }.
 * `problems` lists what cannot be done in place (nothing is done then).
 */
export function registryActions(current, registry) {
  const actions = [];
  const problems = [];
  const byId = (list) => new Map((list ?? []).map((x) => [x.id, x]));
  const resources = byId(current.resources);
  const clients = byId(current.clients);
  const routes = byId(current.routes);

  for (const r of registry.resources ?? []) {
    const have = resources.get(r.id);
    if (!have) {
      actions.push({ method: "POST", path: "/admin/resources", body: { id: r.id, scopes: r.scopes }, say: `created API resource ${r.id} (scopes ${r.scopes.join(" ")})`, secret: { kind: "resources", id: r.id, field: "secret" } });
      if (r.enabled === false) actions.push({ method: "PATCH", path: `/admin/resources/${r.id}`, body: { enabled: false }, ifMatch: true, say: `disabled API resource ${r.id}` });
      continue;
    }
    const patch = {};
    if (!sameSet(have.scopes, r.scopes)) patch.scopes = r.scopes;
    if (r.enabled !== undefined && r.enabled !== have.enabled) patch.enabled = r.enabled;
    if (Object.keys(patch).length) actions.push({ method: "PATCH", path: `/admin/resources/${r.id}`, body: patch, ifMatch: true, say: `changed API resource ${r.id}: ${Object.keys(patch).join(", ")}` });
  }

  for (const c of declaredClients(registry)) {
    const have = clients.get(c.id);
    if (!have) {
      const body = { id: c.id, public: c.public ?? false, allowed_scopes: c.allowed_scopes };
      if (c.token_format !== undefined) body.token_format = c.token_format;
      if (c.token_lifetime !== undefined) body.token_lifetime = c.token_lifetime;
      actions.push({ method: "POST", path: "/admin/clients", body, say: `created ${body.public ? "public" : "confidential"} client ${c.id}`, secret: body.public ? null : { kind: "clients", id: c.id, field: "client_secret" } });
      if (c.enabled === false) actions.push({ method: "PATCH", path: `/admin/clients/${c.id}`, body: { enabled: false }, ifMatch: true, say: `disabled client ${c.id}` });
      continue;
    }
    if ((c.public ?? false) !== have.public) {
      problems.push(`client ${c.id} is ${have.public ? "public" : "confidential"} but declared ${c.public ? "public" : "confidential"}: this cannot change in place (declare a new client id, and remove the old one when its tokens are no longer needed)`);
      continue;
    }
    const patch = {};
    if (!sameSet(have.allowed_scopes, c.allowed_scopes)) patch.allowed_scopes = c.allowed_scopes;
    if (c.token_format !== undefined && c.token_format !== have.token_format) patch.token_format = c.token_format;
    if (c.token_lifetime !== undefined && c.token_lifetime !== have.token_lifetime) patch.token_lifetime = c.token_lifetime;
    if (c.enabled !== undefined && c.enabled !== have.enabled) patch.enabled = c.enabled;
    if (Object.keys(patch).length) actions.push({ method: "PATCH", path: `/admin/clients/${c.id}`, body: patch, ifMatch: true, say: `changed client ${c.id}: ${Object.keys(patch).join(", ")}` });
  }

  for (const r of registry.gate_routes ?? []) {
    const { id, ...body } = r;
    const have = routes.get(id);
    if (!have || canonicalRoute(have) !== canonicalRoute(r)) {
      actions.push({ method: "PUT", path: `/admin/routes/${id}`, body, say: `${have ? "changed" : "created"} gate route ${id} (${r.host ?? "any gate host"}${r.path_prefix} -> ${r.upstream})` });
    }
  }

  const hooks = current.webhooks ?? [];
  for (const w of registry.webhooks ?? []) {
    const same = hooks.filter((h) => h.url === w.url);
    if (same.some((h) => sameSet(h.event_types, w.event_types))) continue;
    if (same.length && !w.replace) {
      problems.push(`webhook ${w.url} exists with event types ${same[0].event_types.join(" ")}; the admin API cannot change them in place: set "replace": true on it to register a new endpoint (new secret) and delete the old one`);
      continue;
    }
    actions.push({ method: "POST", path: "/admin/webhooks", body: { url: w.url, event_types: w.event_types }, say: `registered webhook ${w.url} (${w.event_types.join(" ")})`, secret: { kind: "webhooks", id: w.url, field: "secret" } });
    for (const h of same) actions.push({ method: "DELETE", path: `/admin/webhooks/${h.id}`, say: `deleted the replaced webhook ${h.id} (${h.url})` });
  }

  const remove = registry.remove ?? {};
  for (const id of remove.gate_routes ?? []) if (routes.has(id)) actions.push({ method: "DELETE", path: `/admin/routes/${id}`, say: `deleted gate route ${id}` });
  for (const url of remove.webhooks ?? []) for (const h of hooks.filter((x) => x.url === url)) actions.push({ method: "DELETE", path: `/admin/webhooks/${h.id}`, say: `deleted webhook ${h.id} (${url})` });
  for (const id of remove.clients ?? []) if (clients.has(id)) actions.push({ method: "DELETE", path: `/admin/clients/${id}`, ifMatch: true, say: `deleted client ${id}` });
  for (const id of remove.resources ?? []) if (resources.has(id)) actions.push({ method: "DELETE", path: `/admin/resources/${id}`, ifMatch: true, say: `deleted API resource ${id}` });
  return { actions, problems };
}

/** A small client of the admin API. */
export function adminClient(baseUrl, token) {
  const call = async (method, path, { body, headers = {} } = {}) => {
    const r = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    return { status: r.status, json, etag: r.headers.get("etag") };
  };
  return { call };
}

/**
 * Waits until the admin API answers with this token (a fresh deploy takes a few seconds to reach
 * every location), then reads the registry. Throws after `timeoutMs`.
 */
export async function readRegistry(admin, { timeoutMs = 90_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const r = await admin.call("GET", "/admin/resources");
      if (r.status === 200) break;
      if (r.status === 401) throw new Error("the admin API refused the admin token (401): the Worker's ADMIN_TOKEN is not the one this deploy used");
      last = `HTTP ${r.status} ${JSON.stringify(r.json)}`;
    } catch (e) {
      if (String(e.message).includes("401")) throw e;
      last = e.cause?.code ?? e.message;
    }
    if (Date.now() > deadline) throw new Error(`the admin API did not answer in ${timeoutMs / 1000} s (last: ${last})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const get = async (path, key) => {
    const r = await admin.call("GET", path);
    if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return r.json[key];
  };
  return {
    resources: await get("/admin/resources", "resources"),
    clients: await get("/admin/clients", "clients"),
    routes: await get("/admin/routes", "routes"),
    webhooks: await get("/admin/webhooks", "webhooks"),
  };
}

/** Runs the actions in order; stops at the first failure. Returns { done: [say], secrets }. */
export async function applyActions(admin, actions) {
  const done = [];
  const secrets = { resources: {}, clients: {}, webhooks: {} };
  for (const a of actions) {
    const headers = {};
    if (a.ifMatch) {
      const cur = await admin.call("GET", a.path);
      if (cur.status !== 200 || !cur.etag) throw new Error(`GET ${a.path} before ${a.method}: HTTP ${cur.status}`);
      headers["if-match"] = cur.etag;
    }
    const r = await admin.call(a.method, a.path, { body: a.body, headers });
    if (r.status >= 300) throw Object.assign(new Error(`${a.method} ${a.path}: HTTP ${r.status} ${JSON.stringify(r.json)} (done before it: ${done.length ? done.join("; ") : "nothing"})`), { done, secrets });
    if (a.secret && r.json?.[a.secret.field]) secrets[a.secret.kind][a.secret.id] = r.json[a.secret.field];
    done.push(a.say);
  }
  return { done, secrets };
}
