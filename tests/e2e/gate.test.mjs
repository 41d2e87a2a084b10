// The edge gate: patgate in front of a real local HTTP upstream started by this file.
// The issuer is http://127.0.0.1:<port>; the gate answers on http://localhost:<port> (another host).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { once } from "node:events";
import * as jose from "jose";
import puppeteer from "puppeteer-core";
import { CHROMIUM } from "../../scripts/tools.mjs";
import {
  startServer, createPat, introspect, call, basic, userCall, ADMIN, eventually, form, assertError,
} from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UPSTREAM_PORT = 9050 + OFFSET;
const DEAD_PORT = 9059 + OFFSET; // nothing listens here
const MB = 1024 * 1024;

let srv, gateBase, upstream;
/** Requests the upstream saw (echo path), newest last. */
const seen = [];
/** Hooks the streaming tests use to hold the upstream between chunks. */
const hooks = { firstUploadBytes: null, releaseDownload: null };

function startUpstream() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://upstream");
    if (url.pathname === "/base/big") {
      // a streamed response of `size` bytes, in 64 KiB chunks, with back-pressure
      const size = Number(url.searchParams.get("size"));
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(size) });
      const pump = () => {
        while (sent < size) {
          const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
          sent += part.length;
          if (!res.write(part)) return void res.once("drain", pump);
        }
        res.end();
      };
      req.resume();
      return pump();
    }
    if (url.pathname === "/base/held") {
      // first chunk, then wait for the test to say the caller received it
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(Buffer.alloc(1024, 97));
      hooks.releaseDownload = () => res.end(Buffer.alloc(1024, 98));
      return void req.resume();
    }
    if (url.pathname === "/base/redirect") {
      res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" });
      return void res.end();
    }
    if (url.pathname === "/app.html") {
      // a web app on another origin than the gate's (the CORS tests load it in Chromium)
      res.writeHead(200, { "content-type": "text/html" });
      return void res.end("<!doctype html><title>app</title><p>app");
    }
    if (url.pathname === "/base/own-cors") {
      // an upstream with its own, wider CORS answer: a route's policy replaces it
      res.writeHead(200, { "content-type": "text/plain", "access-control-allow-origin": "*", "access-control-expose-headers": "x-secret", vary: "Accept" });
      return void res.end("own cors");
    }
    if (url.pathname === "/base/teapot") {
      res.writeHead(418, { "x-upstream": "yes", "www-authenticate": 'Basic realm="upstream"', "content-type": "text/plain" });
      return void res.end("short and stout");
    }
    let length = 0;
    let first = true;
    req.on("data", (d) => {
      length += d.length;
      if (first && hooks.firstUploadBytes) hooks.firstUploadBytes();
      first = false;
    });
    req.on("end", () => {
      const record = { method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, length };
      seen.push(record);
      res.setHeader("content-type", "application/json");
      res.setHeader("x-upstream", "echo");
      res.end(req.method === "HEAD" ? undefined : JSON.stringify(record));
    });
  });
  server.listen(UPSTREAM_PORT, "127.0.0.1");
  return once(server, "listening").then(() => server);
}

const DEMO_ROUTE = {
  path_prefix: "/gw/demo/",
  resource: "demo_api",
  rules: [
    { methods: ["GET", "HEAD"], scopes: ["demo_api:read"] },
    { methods: ["POST", "PUT"], scopes: ["demo_api:write"] },
  ],
};

const putRoute = (id, body) =>
  call(`${srv.url}/admin/routes/${id}`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const admin = (method, path) => call(`${srv.url}${path}`, { method, headers: { authorization: ADMIN } });
const gate = (path, token, init = {}) =>
  call(`${gateBase}${path}`, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) },
  });

before(async () => {
  upstream = await startUpstream();
  srv = await startServer("gate", 9020);
  gateBase = srv.url.replace("127.0.0.1", "localhost");
  const r = await putRoute("demo", { ...DEMO_ROUTE, upstream: `http://127.0.0.1:${UPSTREAM_PORT}/base` });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await srv?.stop();
  upstream?.closeAllConnections?.();
  upstream?.close();
});

const metadataUrl = () => `${gateBase}/.well-known/oauth-protected-resource/gw/demo`;

test("admin API: create, replace, read, list, conflicts, validation, delete", async () => {
  const body = { ...DEMO_ROUTE, path_prefix: "/gw/tmp/", upstream: `http://127.0.0.1:${UPSTREAM_PORT}/tmp` };
  const created = await putRoute("tmp", body);
  assert.equal(created.status, 201, created.text);
  assert.equal(created.headers.get("location"), "/admin/routes/tmp");
  assert.deepEqual(created.json, { id: "tmp", ...body });
  const replaced = await putRoute("tmp", { ...body, host: "API.Example.com:8443" });
  assert.equal(replaced.status, 200, replaced.text);
  assert.equal(replaced.json.host, "api.example.com:8443");
  assert.deepEqual((await admin("GET", "/admin/routes/tmp")).json, replaced.json);
  const list = await admin("GET", "/admin/routes");
  assert.deepEqual(list.json.routes.map((r) => r.id), ["demo", "tmp"]);
  // same host and prefix as another route
  const dup = await putRoute("dup", { ...DEMO_ROUTE, upstream: "http://127.0.0.1:1/x" });
  assertError(dup, 409, "conflict");
  // nested prefixes are allowed
  const nested = await putRoute("nested", { ...DEMO_ROUTE, path_prefix: "/gw/demo/deeper/", upstream: "http://127.0.0.1:1/x" });
  assert.equal(nested.status, 201);
  assert.equal((await admin("DELETE", "/admin/routes/nested")).status, 204);
  // bad input: 400 naming the field
  const cases = [
    [{ path_prefix: "/gw/x" }, "path_prefix"],
    [{ path_prefix: "gw/x/" }, "path_prefix"],
    [{ path_prefix: "/.well-known/x/" }, "path_prefix"],
    [{ upstream: "ftp://h/x" }, "upstream"],
    [{ upstream: "http://h/x?q=1" }, "upstream"],
    [{ upstream: "http://h/x#f" }, "upstream"],
    [{ upstream: "/relative" }, "upstream"],
    [{ host: "bad host" }, "host"],
    [{ resource: "no_such_api" }, "resource"],
    [{ rules: [{ methods: ["GET"], scopes: ["other_api:read"] }] }, "rules[0].scopes"],
    [{ rules: [{ methods: ["get"], scopes: [] }] }, "rules[0].methods"],
    [{ rules: [] }, "rules"],
  ];
  for (const [patch, field] of cases) {
    const r = await putRoute("bad", { ...body, path_prefix: "/gw/bad/", ...patch });
    assertError(r, 400, "invalid_request", JSON.stringify(patch));
    assert.ok(r.json.error_description.startsWith(field), `${field}: ${r.text}`);
  }
  assertError(await putRoute("bad", { ...body, extra: 1 }), 400, "invalid_request");
  assertError(await putRoute("bad id", body), 400, "invalid_request");
  assertError(await admin("GET", "/admin/routes/bad"), 404, "not_found");
  assertError(await call(`${srv.url}/admin/routes`, { headers: {} }), 401, "unauthorized");
  assertError(await admin("POST", "/admin/routes"), 405, "method_not_allowed");
  assert.equal((await admin("DELETE", "/admin/routes/tmp")).status, 204);
  assertError(await admin("DELETE", "/admin/routes/tmp"), 404, "not_found");
});

test("an accepted request reaches the upstream: path and query joined, method, identity headers", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read", "demo_api:write", "other_api:read"]);
  const r = await gate("/gw/demo/x/y.json?b=2&a=1&c=%2F+", pat.token);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("x-upstream"), "echo");
  assert.equal(r.json.method, "GET");
  assert.equal(r.json.url, "/base/x/y.json?b=2&a=1&c=%2F+");
  const h = r.json.headers;
  assert.equal(h["x-patgate-subject"], "alice");
  assert.equal(h["x-patgate-client-id"], "pat_client");
  assert.equal(h["x-patgate-scope"], "demo_api:read demo_api:write", "only the resource's scopes");
  assert.equal(h["x-patgate-token-id"], pat.id);
  assert.ok(h["x-patgate-assertion"]);
  assert.equal(h.authorization, undefined);
  // the prefix itself maps to the upstream's path plus one slash
  assert.equal((await gate("/gw/demo/", pat.token)).json.url, "/base/");
  // POST with a body, PUT
  const p = await gate("/gw/demo/items", pat.token, { method: "POST", body: "hello", headers: { "content-type": "text/plain" } });
  assert.equal(p.status, 200, p.text);
  assert.deepEqual([p.json.method, p.json.length, p.json.headers["content-type"]], ["POST", 5, "text/plain"]);
  assert.equal((await gate("/gw/demo/items/1", pat.token, { method: "PUT", body: "x" })).json.method, "PUT");
  // HEAD
  const head = await gate("/gw/demo/x", pat.token, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(seen.at(-1).method, "HEAD");
});

test("the upstream's answer comes back unchanged; redirects are not followed", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const tea = await gate("/gw/demo/teapot", pat.token);
  assert.equal(tea.status, 418);
  assert.equal(tea.text, "short and stout");
  assert.equal(tea.headers.get("x-upstream"), "yes");
  assert.equal(tea.headers.get("www-authenticate"), 'Basic realm="upstream"', "the upstream's own challenge is kept");
  const redirect = await gate("/gw/demo/redirect", pat.token);
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get("location"), "http://127.0.0.1:1/elsewhere");
});

/** A raw HTTP/1.1 request (node:http), for headers fetch will not send. */
function raw(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        let json;
        try { json = JSON.parse(text); } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("credentials, spoofed X-Patgate-* (any case, underscores) and hop-by-hop headers are not forwarded", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const r = await raw(`${gateBase}/gw/demo/spoof`, {
    headers: {
      authorization: `Bearer ${pat.token}`,
      cookie: "session=secret",
      "X-Patgate-Subject": "mallory",
      "x_patgate_subject": "mallory",
      "X_PATGATE_SCOPE": "demo_api:admin",
      "x-PATGATE-assertion": "forged",
      "x-patgate-extra": "1",
      "X_Patgate-Token_Id": "forged",
      connection: "keep-alive, x-hop-listed, X_Other_Hop",
      "x-hop-listed": "1",
      "x-other-hop": "1",
      "keep-alive": "timeout=5",
      "proxy-authorization": "Basic eDp5",
      te: "trailers",
      "x-kept": "yes",
    },
  });
  assert.equal(r.status, 200, r.text);
  const names = r.json.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const patgate = names.filter((n) => n.replaceAll("_", "-").startsWith("x-patgate-")).sort();
  assert.deepEqual(patgate, ["x-patgate-assertion", "x-patgate-client-id", "x-patgate-scope", "x-patgate-subject", "x-patgate-token-id"]);
  const h = r.json.headers;
  assert.equal(h["x-patgate-subject"], "alice");
  assert.equal(h["x-patgate-scope"], "demo_api:read");
  assert.equal(h["x-patgate-token-id"], pat.id);
  assert.notEqual(h["x-patgate-assertion"], "forged");
  // (Headers named in `Connection` are dropped by the gate too when the runtime lets it see
  // `Connection` (host tests); workerd consumes that header before the Worker runs.)
  for (const n of ["authorization", "cookie", "proxy-authorization", "te", "keep-alive"]) {
    assert.equal(h[n], undefined, n);
  }
  assert.equal(h["x-kept"], "yes");
});

test("401 without a token, with an invalid, revoked or foreign token; 405 then 403; never upstream", async () => {
  const before = seen.length;
  const challenge = (r) => r.headers.get("www-authenticate");
  const none = await gate("/gw/demo/x", undefined);
  assertError(none, 401, "invalid_request");
  // the scopes the request needs (here: a GET) are named in every 401
  assert.equal(challenge(none), `Bearer realm="patgate", scope="demo_api:read", resource_metadata="${metadataUrl()}"`);
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  // RFC 6750 2.1 only: a token in the query string is refused
  const query = await gate(`/gw/demo/x?access_token=${pat.token}`, undefined);
  assertError(query, 401, "invalid_request");
  const basicAuth = await gate("/gw/demo/x", undefined, { headers: { authorization: basic("a", "b") } });
  assertError(basicAuth, 401, "invalid_request");
  const invalid = `Bearer realm="patgate", error="invalid_token", scope="demo_api:read", resource_metadata="${metadataUrl()}"`;
  for (const t of ["garbage", pat.token.slice(0, -1) + (pat.token.endsWith("0") ? "1" : "0"), "a.b.c"]) {
    const r = await gate("/gw/demo/x", t);
    assertError(r, 401, "invalid_token", t);
    assert.equal(challenge(r), invalid);
  }
  const foreign = await createPat(srv.url, "alice", ["other_api:read"]);
  assertError(await gate("/gw/demo/x", foreign.token), 401, "invalid_token", "a token the resource may not see");
  // order: token, then method, then scope
  assertError(await gate("/gw/demo/x", "garbage", { method: "DELETE" }), 401, "invalid_token");
  const del = await gate("/gw/demo/x", pat.token, { method: "DELETE" });
  assertError(del, 405, "method_not_allowed");
  assert.equal(del.headers.get("allow"), "GET, HEAD, POST, PUT");
  const post = await gate("/gw/demo/x", pat.token, { method: "POST", body: "x" });
  assertError(post, 403, "insufficient_scope");
  assert.equal(challenge(post), `Bearer realm="patgate", error="insufficient_scope", scope="demo_api:write", resource_metadata="${metadataUrl()}"`);
  assert.equal(seen.length, before, "no refused request reached the upstream");
  // revoked: refused at once, at the revoking location
  assert.equal((await gate("/gw/demo/x", pat.token)).status, 200);
  assert.equal((await userCall(srv.url, "alice", "DELETE", `/api/pats/${pat.id}`)).status, 204);
  assertError(await gate("/gw/demo/x", pat.token), 401, "invalid_token", "revoked");
});

test("hostile input: oversized, repeated or malformed credentials, traversal, odd schemes", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const before = seen.length;
  assertError(await gate("/gw/demo/x", "a".repeat(8000)), 401, "invalid_token", "8 KB token");
  assertError(await gate("/gw/demo/x", `${pat.token}.${pat.token}.${pat.token}`), 401, "invalid_token");
  assertError(await gate("/gw/demo/x", undefined, { headers: { authorization: "Bearer" } }), 401, "invalid_request");
  assertError(await gate("/gw/demo/x", undefined, { headers: { authorization: "Bearer    " } }), 401, "invalid_request");
  assertError(await gate("/gw/demo/x", undefined, { headers: { authorization: `Token ${pat.token}` } }), 401, "invalid_request");
  // two Authorization headers: never one of them silently
  const twice = await raw(`${gateBase}/gw/demo/x`, { headers: { authorization: [`Bearer ${pat.token}`, "Bearer garbage"] } });
  assert.equal(twice.status, 401, twice.text);
  // dot segments are resolved before matching: these leave the route and never reach the upstream
  const traversal = await raw(`${gateBase}/gw/demo/../../admin/routes`, { headers: { authorization: `Bearer ${pat.token}` } });
  assert.equal(traversal.status, 401, "the admin API answers, with its own authentication");
  const encoded = await raw(`${gateBase}/gw/demo/%2e%2e/%2E%2e/x`, { headers: { authorization: `Bearer ${pat.token}` } });
  assert.equal(encoded.status, 404, encoded.text);
  assert.equal(seen.length, before, "nothing reached the upstream");
  // the scheme is case-insensitive (RFC 9110 section 11.1)
  const lower = await gate("/gw/demo/x", undefined, { headers: { authorization: `bearer ${pat.token}` } });
  assert.equal(lower.status, 200, lower.text);
});

test("JWT access tokens are accepted with the same rules", async () => {
  const tok = await form(`${srv.url}/oauth/token`, "grant_type=client_credentials&scope=demo_api:read", {
    authorization: basic("demo_jwt_client", "demo-jwt-client-secret"),
  });
  assert.equal(tok.status, 200, tok.text);
  const r = await gate("/gw/demo/jwt", tok.json.access_token);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.headers["x-patgate-client-id"], "demo_jwt_client");
  assertError(await gate("/gw/demo/jwt", tok.json.access_token, { method: "POST", body: "x" }), 403, "insufficient_scope");
});

test("the assertion verifies with the published JWKS, for the route's resource, and is no access token", async () => {
  const pat = await createPat(srv.url, "bob", ["demo_api:read"]);
  const r = await gate("/gw/demo/a", pat.token);
  const jwt = r.json.headers["x-patgate-assertion"];
  const jwks = jose.createRemoteJWKSet(new URL(`${srv.url}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jose.jwtVerify(jwt, jwks, {
    issuer: srv.url, audience: "demo_api", typ: "patgate-assertion+jwt",
  });
  assert.equal(protectedHeader.kid, "dev-ed25519-1");
  assert.equal(payload.sub, "bob");
  assert.equal(payload.client_id, "pat_client");
  assert.equal(payload.scope, "demo_api:read");
  assert.ok(payload.exp - payload.iat <= 60 && payload.exp > payload.iat);
  assert.ok(typeof payload.jti === "string" && payload.jti !== pat.id);
  await assert.rejects(jose.jwtVerify(jwt, jwks, { typ: "at+jwt" }), "an upstream checking typ refuses it as an access token");
  // nor does patgate accept it as a token
  assertError(await gate("/gw/demo/a", jwt), 401, "invalid_token");
  assert.deepEqual((await introspect(srv.url, jwt)).json, { active: false });
});

test("502 when the upstream is unreachable", async () => {
  assert.equal((await putRoute("dead", { ...DEMO_ROUTE, path_prefix: "/gw/dead/", upstream: `http://127.0.0.1:${DEAD_PORT}/x` })).status, 201);
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const r = await gate("/gw/dead/y", pat.token);
  assert.equal(r.status, 502, r.text);
  assert.deepEqual(r.json, { error: "bad_gateway" });
  assert.equal((await admin("DELETE", "/admin/routes/dead")).status, 204);
});

test("gate routes never match on the issuer's host; patgate's endpoints answer on the gate host", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const before = seen.length;
  const onIssuer = await call(`${srv.url}/gw/demo/x`, { headers: { authorization: `Bearer ${pat.token}` } });
  assertError(onIssuer, 404, "not_found");
  assert.equal(seen.length, before);
  // no route matches: the OAuth endpoints, JSON APIs and discovery still answer (bodies read)
  const i = await introspect(gateBase, pat.token);
  assert.equal(i.json.active, true);
  const d = await call(`${gateBase}/.well-known/oauth-authorization-server`);
  assert.equal(d.json.issuer, srv.url);
  assertError(await gate("/gw/demox", pat.token), 404, "not_found");
  assertError(await gate("/gw/demo", pat.token), 404, "not_found");
  const big = await call(`${gateBase}/oauth/introspect`, {
    method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("demo_api", "demo-api-secret") },
    body: "token=" + "x".repeat(70 * 1024),
  });
  assertError(big, 413, "invalid_request");
  // the same body limits as on the issuer's host (one reader, in the shim): the form endpoints'
  // 8 KiB holds for a chunked body without Content-Length too, and a small one passes
  const chunked = (size) => {
    const chunks = [new TextEncoder().encode("token=" + "x".repeat(size))];
    return call(`${gateBase}/oauth/introspect`, {
      method: "POST", duplex: "half",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("demo_api", "demo-api-secret") },
      body: new ReadableStream({ pull(c) { if (chunks.length) c.enqueue(chunks.shift()); else c.close(); } }),
    });
  };
  const over = await chunked(9000);
  assertError(over, 413, "invalid_request");
  assert.match(over.json.error_description, /8192/, "the form endpoints' own limit");
  assert.equal((await chunked(100)).text, '{"active":false}');
});

test("RFC 9728 protected resource metadata on the gate host", async () => {
  const r = await call(metadataUrl());
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {
    resource: `${gateBase}/gw/demo/`,
    authorization_servers: [srv.url],
    scopes_supported: ["demo_api:read", "demo_api:write"],
    bearer_methods_supported: ["header"],
  });
  assertError(await call(`${srv.url}/.well-known/oauth-protected-resource/gw/demo`), 404, "not_found");
  // the authorization server metadata it points to
  const as = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(as.json.issuer, r.json.authorization_servers[0]);
});

test("route changes through the admin API take effect", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  const body = { ...DEMO_ROUTE, path_prefix: "/gw/change/", upstream: `http://127.0.0.1:${UPSTREAM_PORT}/v1` };
  assert.equal((await putRoute("change", body)).status, 201);
  assert.equal((await gate("/gw/change/a", pat.token)).json.url, "/v1/a");
  assert.equal((await putRoute("change", { ...body, upstream: `http://127.0.0.1:${UPSTREAM_PORT}/v2` })).status, 200);
  assert.equal((await gate("/gw/change/a", pat.token)).json.url, "/v2/a");
  // read now needs the write scope
  await putRoute("change", { ...body, rules: [{ methods: ["*"], scopes: ["demo_api:write"] }] });
  assertError(await gate("/gw/change/a", pat.token), 403, "insufficient_scope");
  // a route for this host only wins over the host-less one
  const port = new URL(gateBase).port;
  await putRoute("change-local", { ...body, host: `localhost:${port}`, upstream: `http://127.0.0.1:${UPSTREAM_PORT}/local` });
  assert.equal((await gate("/gw/change/a", pat.token)).json.url, "/local/a");
  assert.equal((await admin("DELETE", "/admin/routes/change-local")).status, 204);
  assert.equal((await admin("DELETE", "/admin/routes/change")).status, 204);
  assertError(await gate("/gw/change/a", pat.token), 404, "not_found");
});

test("last use of a PAT is recorded as for introspection", async () => {
  const pat = await createPat(srv.url, "carol", ["demo_api:read"]);
  assert.equal((await gate("/gw/demo/use", pat.token)).status, 200);
  const v = await eventually(async () => {
    const r = await userCall(srv.url, "carol", "GET", `/api/pats/${pat.id}`);
    return r.json.last_used_at ? r.json : null;
  });
  assert.ok(v?.last_used_at, "last_used_at set");
  assert.ok(v.use_count >= 1);
});

// ---------------------------------------------------------------------------------------------
// Streaming: bodies pass through, never buffered whole.

/** Resident memory (bytes) of the workerd processes in the server's process group. */
function workerdRss() {
  const pgid = srv.pid();
  let total = 0;
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid || !stat.includes("(workerd)")) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      total += Number(rss?.[1] ?? 0) * 1024;
    } catch {}
  }
  return total;
}

/** patgate's wasm linear memory (dev counters). It never shrinks: a body that passed through
 * Rust would grow it by at least the body's size. */
const wasmMemory = async () => (await call(`${srv.url}/_dev/counters`)).json.wasm_memory_bytes;

test("a 100 MB response body streams through, never through wasm memory", async (t) => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read"]);
  await gate("/gw/demo/warm", pat.token);
  const mem0 = await wasmMemory();
  assert.equal(typeof mem0, "number");
  const rss0 = workerdRss();
  let peak = rss0;
  const res = await fetch(`${gateBase}/gw/demo/big?size=${100 * MB}`, { headers: { authorization: `Bearer ${pat.token}` } });
  assert.equal(res.status, 200);
  let n = 0;
  for await (const chunk of res.body) {
    n += chunk.length;
    if ((n & (8 * MB - 1)) < chunk.length) peak = Math.max(peak, workerdRss());
  }
  assert.equal(n, 100 * MB);
  const grew = (await wasmMemory()) - mem0;
  assert.ok(grew < 8 * MB, `wasm memory grew by ${(grew / MB).toFixed(1)} MB`);
  // For information: the local runtime's own processes (its dev proxy grows as much for a plain
  // JS pass-through worker, bench/floor-c), so this is not asserted.
  t.diagnostic(`workerd RSS peak +${((peak - rss0) / MB).toFixed(0)} MB, wasm memory +${(grew / MB).toFixed(1)} MB`);
});

test("a 100 MB request body streams through, never through wasm memory", async (t) => {
  const pat = await createPat(srv.url, "alice", ["demo_api:write"]);
  await gate("/gw/demo/warm", pat.token, { method: "POST", body: "x" });
  const mem0 = await wasmMemory();
  const rss0 = workerdRss();
  let peak = rss0;
  let sent = 0;
  const chunk = new Uint8Array(MB).fill(121);
  const body = new ReadableStream({
    pull(c) {
      if (sent >= 100 * MB) return c.close();
      sent += chunk.length;
      if (sent % (8 * MB) === 0) peak = Math.max(peak, workerdRss());
      c.enqueue(chunk);
    },
  });
  const r = await call(`${gateBase}/gw/demo/upload`, {
    method: "POST", body, duplex: "half",
    headers: { authorization: `Bearer ${pat.token}`, "content-type": "application/octet-stream" },
  });
  assert.equal(r.status, 200, r.text.slice(0, 200));
  assert.equal(r.json.length, 100 * MB);
  const grew = (await wasmMemory()) - mem0;
  assert.ok(grew < 8 * MB, `wasm memory grew by ${(grew / MB).toFixed(1)} MB`);
  t.diagnostic(`workerd RSS peak +${((peak - rss0) / MB).toFixed(0)} MB, wasm memory +${(grew / MB).toFixed(1)} MB`);
});

test("bodies are streamed, not buffered: each side sees bytes before the other finishes", async () => {
  const pat = await createPat(srv.url, "alice", ["demo_api:read", "demo_api:write"]);
  // response: the caller reads the first chunk while the upstream has not finished
  const res = await fetch(`${gateBase}/gw/demo/held`, { headers: { authorization: `Bearer ${pat.token}` } });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let got = 0;
  while (got < 1024) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the first chunk arrives before the upstream ends");
    got += value.length;
  }
  hooks.releaseDownload();
  while (!(await reader.read()).done);
  // request: the upstream sees the first bytes while the caller still holds the rest
  const arrived = new Promise((resolve) => (hooks.firstUploadBytes = resolve));
  let step = 0;
  const body = new ReadableStream({
    async pull(c) {
      if (step === 0) c.enqueue(new Uint8Array(1024).fill(1));
      else if (step === 1) { await arrived; c.enqueue(new Uint8Array(1024).fill(2)); }
      else c.close();
      step++;
    },
  });
  const r = await call(`${gateBase}/gw/demo/upload-held`, {
    method: "POST", body, duplex: "half", headers: { authorization: `Bearer ${pat.token}` },
  });
  hooks.firstUploadBytes = null;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.length, 2048);
});

// --- CORS: a per-route policy, answered by the gate before authentication ---------------------

const APP_ORIGIN = () => `http://127.0.0.1:${UPSTREAM_PORT}`;
const CORS_ROUTE = () => ({
  ...DEMO_ROUTE,
  path_prefix: "/gw/cors/",
  upstream: `http://127.0.0.1:${UPSTREAM_PORT}/base`,
  cors: { allowed_origins: [APP_ORIGIN()], allowed_methods: ["GET", "POST"], exposed_headers: ["x-upstream"], max_age: 120 },
});

test("CORS: a preflight is answered by the gate, before authentication, and never forwarded", async () => {
  assert.ok([200, 201].includes((await putRoute("cors", CORS_ROUTE())).status));
  const before = seen.length;
  const pre = (origin, method, headers) =>
    gate("/gw/cors/x", null, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, ...(headers ? { "access-control-request-headers": headers } : {}) },
    });
  const ok = await pre(APP_ORIGIN(), "POST", "authorization,content-type");
  assert.equal(ok.status, 204, ok.text);
  assert.equal(ok.headers.get("access-control-allow-origin"), APP_ORIGIN());
  assert.equal(ok.headers.get("access-control-allow-methods"), "GET, POST");
  assert.equal(ok.headers.get("access-control-allow-headers"), "authorization, content-type");
  assert.equal(ok.headers.get("access-control-max-age"), "120");
  assert.equal(ok.headers.get("access-control-allow-credentials"), null);
  assert.equal(ok.headers.get("www-authenticate"), null, "no challenge: no token was asked for");
  for (const [what, r] of [
    ["another origin", await pre("http://evil.example", "GET")],
    ["null origin", await pre("null", "GET")],
    ["a method the policy lacks", await pre(APP_ORIGIN(), "DELETE")],
    ["a header the policy lacks", await pre(APP_ORIGIN(), "GET", "authorization, x-admin")],
  ]) {
    assertError(r, 403, "cors_refused", what);
    assert.equal(r.headers.get("access-control-allow-origin"), null, what);
  }
  assert.equal(seen.length, before, "no preflight reached the upstream");
  // without a policy (the demo route) a preflight is an unauthenticated request, as before
  const plain = await gate("/gw/demo/x", null, { method: "OPTIONS", headers: { origin: APP_ORIGIN(), "access-control-request-method": "GET" } });
  assert.equal(plain.status, 401);
  assert.equal(plain.headers.get("access-control-allow-origin"), null);
});

test("CORS: the upstream's answer and the gate's own refusals carry the allowed origin", async () => {
  assert.ok([200, 201].includes((await putRoute("cors", CORS_ROUTE())).status));
  const pat = await createPat(srv.url, "cors-alice", ["demo_api:read"]);
  const origin = { origin: APP_ORIGIN() };
  const r = await gate("/gw/cors/echo", pat.token, { headers: origin });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.url, "/base/echo");
  assert.equal(r.headers.get("access-control-allow-origin"), APP_ORIGIN());
  assert.equal(r.headers.get("access-control-expose-headers"), "x-upstream");
  assert.equal(r.headers.get("vary"), "Origin");
  assert.equal(r.headers.get("x-upstream"), "echo", "the upstream's own headers stay");
  // the upstream's wider CORS answer is replaced by the route's policy
  const own = await gate("/gw/cors/own-cors", pat.token, { headers: origin });
  assert.equal(own.text, "own cors");
  assert.equal(own.headers.get("access-control-allow-origin"), APP_ORIGIN());
  assert.equal(own.headers.get("access-control-expose-headers"), "x-upstream");
  assert.equal(own.headers.get("vary"), "Accept, Origin");
  const stranger = await gate("/gw/cors/own-cors", pat.token, { headers: { origin: "http://evil.example" } });
  assert.equal(stranger.status, 200, "not refused: the browser withholds it");
  assert.equal(stranger.headers.get("access-control-allow-origin"), null, "and the upstream's * is gone");
  // refusals: readable by the allowed origin, challenge included
  for (const [what, token, method, status] of [["no token", null, "GET", 401], ["bad token", "pgp_nope", "GET", 401], ["scope", pat.token, "POST", 403]]) {
    const x = await gate("/gw/cors/echo", token, { method, headers: origin });
    assert.equal(x.status, status, what);
    assert.equal(x.headers.get("access-control-allow-origin"), APP_ORIGIN(), what);
    assert.match(x.headers.get("access-control-expose-headers"), /www-authenticate/, what);
    assert.ok(x.headers.get("www-authenticate"), what);
  }
});

test("CORS: hostile policies are refused when the route is configured", async () => {
  for (const [cors, field] of [
    [{ allowed_origins: ["*"], allowed_methods: ["GET"], allow_credentials: true }, "cors.allow_credentials"],
    [{ allowed_origins: ["null"], allowed_methods: ["GET"] }, "cors.allowed_origins"],
    [{ allowed_origins: ["https://app.example/"], allowed_methods: ["GET"] }, "cors.allowed_origins"],
    [{ allowed_origins: ["https://app.example"], allowed_methods: ["GET"], allowed_headers: ["*"] }, "cors.allowed_headers"],
  ]) {
    const r = await putRoute("cors-bad", { ...CORS_ROUTE(), path_prefix: "/gw/cors-bad/", cors });
    assertError(r, 400, "invalid_request", JSON.stringify(cors));
    assert.ok(r.json.error_description.startsWith(field), r.json.error_description);
  }
  assert.equal((await admin("GET", "/admin/routes/cors-bad")).status, 404, "nothing stored");
});

const haveBrowser = existsSync(CHROMIUM);
test("CORS in Chromium: a web app on an allowed origin calls the API; another origin cannot read it", { skip: haveBrowser ? false : `no ${CHROMIUM}` }, async () => {
  assert.ok([200, 201].includes((await putRoute("cors", CORS_ROUTE())).status));
  const pat = await createPat(srv.url, "cors-browser", ["demo_api:read"]);
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage();
    const upstreamSaw = () => seen.filter((r) => r.url === "/base/from-browser").map((r) => r.method);
    const call = (base, token) =>
      page.evaluate(async (url, token) => {
        try {
          const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
          return { status: r.status, body: await r.text(), challenge: r.headers.get("www-authenticate") };
        } catch (e) {
          return { error: String(e) };
        }
      }, `${gateBase}/gw/cors/from-browser`, token);
    await page.goto(`${APP_ORIGIN()}/app.html`);
    const ok = await call(APP_ORIGIN(), pat.token);
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.equal(JSON.parse(ok.body).url, "/base/from-browser");
    assert.deepEqual(upstreamSaw(), ["GET"], "the preflight was not forwarded; the GET was");
    const refused = await call(APP_ORIGIN(), "pgp_nope");
    assert.equal(refused.status, 401, JSON.stringify(refused));
    assert.match(refused.challenge, /invalid_token/, "the page reads the challenge");
    // the same app on another origin (localhost, not 127.0.0.1): the browser refuses
    await page.goto(`http://localhost:${UPSTREAM_PORT}/app.html`);
    const other = await call(`http://localhost:${UPSTREAM_PORT}`, pat.token);
    assert.match(other.error ?? "", /TypeError/, JSON.stringify(other));
    assert.deepEqual(upstreamSaw(), ["GET"], "its refused preflight reached nothing");
  } finally {
    await browser.close();
  }
});
