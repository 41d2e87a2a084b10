// The MCP proof, end to end on workerd: the official MCP TypeScript SDK client
// (@modelcontextprotocol/sdk, pinned) reaches a tool of a small MCP server built with the same SDK
// (streamable HTTP, tests/fixtures/mcp-server.mjs) behind a patgate gate route, knowing nothing
// but the server's URL. The client discovers patgate from the gate's 401, registers (by a client
// ID metadata document served from a local server, and by RFC 7591), sends the user to
// /authorize, and the test approves consent as the signed-in dev user with plain HTTP requests
// (the provider's `redirectToAuthorization` hands the code to `transport.finishAuth`). Then:
// the client refreshes on its own when the access token expires, a replayed refresh token
// revokes the grant, a tool needing a further scope gets 403 insufficient_scope and the client
// steps up after a new consent, and Revoke on the token page makes the next call 401.
//
// The issuer is http://127.0.0.1:<port>; the gate (and so the MCP server's URL) is
// http://localhost:<port>/gw/mcp/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { startServer, call, ADMIN, form } from "./helpers.mjs";
import { existsSync } from "node:fs";
import { startMcpServer } from "../fixtures/mcp-server.mjs";
import { startDocumentServer } from "../fixtures/metadata-documents.mjs";

// The user's side of the authorization endpoint (sign-in, /authorize, consent) comes with the
// authorization flow (tests/e2e/authflow.mjs); without it there is no /authorize to reach, and
// these tests are skipped, saying so.
const FLOW = existsSync(new URL("./authflow.mjs", import.meta.url));
const NO_FLOW = FLOW ? false : "needs the authorization endpoint (tests/e2e/authflow.mjs is not in this branch)";
const { signIn, authorize, consentForm, answer, redirectParams, hidden } = FLOW ? await import("./authflow.mjs") : {};

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const MCP_PORT = 8864 + OFFSET;
const DOCS_PORT = 8865 + OFFSET;
// Nothing listens there: the test reads the code from the redirect instead of a browser.
const CALLBACK = "http://127.0.0.1:8868/callback";
const READ = "demo_api:read";
const WRITE = "demo_api:write";
// Short access tokens, so that the SDK's own refresh can be seen within the test.
const TOKEN_SECONDS = 6;

let srv, gate, mcpUrl, mcp, docs, alice;

before(async () => {
  if (!FLOW) return;
  srv = await startServer("mcp", 8863, {
    DYNAMIC_REGISTRATION: "true",
    CIMD_ALLOW_HTTP_LOOPBACK: "true",
    SELF_REGISTERED_TOKEN_SECONDS: String(TOKEN_SECONDS),
    // No retry window: the rotated-away refresh token replayed right after the SDK's refresh is
    // then a reuse at once (with the default, a replay within 60 s is taken for the retry of a
    // lost answer; authorize.test.mjs covers that window).
    REFRESH_RETRY_GRACE_SECONDS: "0",
  });
  gate = srv.url.replace("127.0.0.1", "localhost");
  mcpUrl = new URL(`${gate}/gw/mcp/`);
  mcp = await startMcpServer({
    port: MCP_PORT,
    readScope: READ,
    writeScope: WRITE,
    resourceMetadataUrl: `${gate}/.well-known/oauth-protected-resource/gw/mcp`,
  });
  docs = await startDocumentServer({ port: DOCS_PORT, redirectUris: [CALLBACK] });
  // The one route that protects the MCP server: every method needs `read`; the server itself
  // asks for `write` on its writing tool (step-up).
  const route = await call(`${srv.url}/admin/routes/mcp`, {
    method: "PUT",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ path_prefix: "/gw/mcp/", upstream: mcp.url, resource: "demo_api", rules: [{ methods: ["*"], scopes: [READ] }] }),
  });
  assert.equal(route.status, 201, route.text);
  alice = await signIn(srv.url, "alice");
});

after(async () => {
  await mcp?.close();
  await docs?.close();
  await srv?.stop();
});

/** Every HTTP exchange the SDK made (method, URL, status, the answer's WWW-Authenticate). */
function recorder() {
  const log = [];
  const fetchFn = async (url, init = {}) => {
    const r = await fetch(url, init);
    const form = typeof init.body === "string" || init.body instanceof URLSearchParams ? new URLSearchParams(String(init.body)) : null;
    log.push({
      method: init.method ?? "GET",
      url: String(url),
      status: r.status,
      www: r.headers.get("www-authenticate"),
      grant: form?.get("grant_type") ?? null,
      refreshToken: form?.get("refresh_token") ?? null,
      body: r.status >= 400 && r.headers.get("content-type")?.includes("json") ? await r.clone().json().catch(() => null) : null,
    });
    return r;
  };
  return { log, fetchFn, since: (n) => log.slice(n) };
}

/**
 * An `OAuthClientProvider` as an MCP host application keeps one: client information, tokens
 * (every set received, to replay an old refresh token), the PKCE verifier, and the URL it was
 * last asked to send the user to. `clientId`: a metadata document URL used as the client id
 * (otherwise the SDK registers with RFC 7591).
 */
class TestProvider {
  constructor({ clientId } = {}) {
    this.static = clientId ? { client_id: clientId } : undefined;
    this.info = this.static;
    this.saved = undefined;
    this.history = [];
    this.verifier = undefined;
    this.pending = undefined;
    this.lastState = undefined;
  }
  get redirectUrl() {
    return CALLBACK;
  }
  get clientMetadata() {
    return {
      client_name: "patgate e2e MCP client",
      redirect_uris: [CALLBACK],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this.lastState = randomBytes(8).toString("hex");
    return this.lastState;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(t) {
    this.saved = t;
    this.history.push(t);
  }
  redirectToAuthorization(url) {
    this.pending = url;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  invalidateCredentials(what) {
    if (what === "all" || what === "tokens") this.saved = undefined;
    if (what === "all" || what === "client") this.info = this.static;
    if (what === "all" || what === "verifier") this.verifier = undefined;
  }
}

/**
 * The user's side of a redirect to /authorize: alice's browser opens the URL, approves the
 * consent page if one shows (a remembered approval redirects at once), and the code comes back
 * on the redirect URI with `state` and `iss` (RFC 9207). Returns the code and whether consent
 * was asked.
 */
async function userApproves(provider) {
  const url = provider.pending;
  assert.ok(url, "the client sent the user to the authorization endpoint");
  provider.pending = undefined;
  assert.equal(url.origin + url.pathname, `${srv.url}/authorize`);
  assert.equal(url.searchParams.get("code_challenge_method"), "S256");
  assert.equal(url.searchParams.get("resource"), mcpUrl.href, "RFC 8707 resource: the MCP server");
  const r = await authorize(srv.url, alice, url.searchParams.toString());
  let redirect;
  let consented = false;
  if (r.status === 200) {
    consented = true;
    redirect = await answer(srv.url, alice, consentForm(r), "approve");
  } else {
    redirect = r;
  }
  const { url: back, params } = redirectParams(redirect);
  assert.equal(back.origin + back.pathname, CALLBACK);
  assert.equal(params.iss, srv.url, "iss on the authorization response");
  assert.equal(params.state, provider.lastState, "state returned unchanged");
  assert.ok(params.code?.startsWith("pgc_"), JSON.stringify(params));
  return { code: params.code, consented, page: r.status === 200 ? r.text : null };
}

/** A connected SDK client, completing authorization (once) if the server asks for it. */
async function connect(provider, rec) {
  const open = async () => {
    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: rec.fetchFn });
    const client = new Client({ name: "patgate-e2e", version: "1.0.0" });
    await client.connect(transport);
    return { client, transport };
  };
  try {
    return { ...(await open()), authorized: false };
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: rec.fetchFn });
  const { code, consented, page } = await userApproves(provider);
  await transport.finishAuth(code);
  return { ...(await open()), authorized: true, consented, page };
}

const text = (result) => JSON.parse(result.content[0].text);

/** A tool call; on UnauthorizedError (sent to /authorize again) the user approves and it is retried once. */
async function callTool(provider, rec, session, name) {
  try {
    return { result: await session.client.callTool({ name, arguments: {} }), reauthorized: false };
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    const { code } = await userApproves(provider);
    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: rec.fetchFn });
    await transport.finishAuth(code);
    const again = await connect(provider, rec);
    Object.assign(session, again);
    return { result: await session.client.callTool({ name, arguments: {} }), reauthorized: true };
  }
}

test("RFC 7591: discovery from the 401, registration, consent, a tool call, refresh on expiry, replay, step-up, Revoke on the page", { skip: NO_FLOW }, async () => {
  const rec = recorder();
  const provider = new TestProvider();
  const session = await connect(provider, rec);
  assert.ok(session.authorized && session.consented, "authorized after consent");

  // What the SDK did, in order: the MCP call got 401 with resource_metadata; RFC 9728 metadata
  // of the gate route; RFC 8414 metadata of patgate; RFC 7591 registration; (the user at
  // /authorize); the code exchange; the call again with the token.
  const first = rec.log[0];
  assert.equal(first.url, mcpUrl.href);
  assert.equal(first.status, 401);
  assert.match(first.www, /resource_metadata="[^"]*\/\.well-known\/oauth-protected-resource\/gw\/mcp"/);
  const prm = rec.log.find((x) => x.url.includes("/.well-known/oauth-protected-resource"));
  assert.equal(prm?.status, 200);
  const asMeta = rec.log.find((x) => x.url === `${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(asMeta?.status, 200);
  const reg = rec.log.find((x) => x.url === `${srv.url}/oauth/register`);
  assert.equal(reg?.status, 201, "registered by RFC 7591");
  assert.match(provider.info.client_id, /^pgd_[0-9A-Za-z]{44}$/);
  const exchange = rec.log.find((x) => x.grant === "authorization_code");
  assert.equal(exchange?.status, 200);
  assert.ok(provider.saved.refresh_token?.startsWith("pgr_"), "a refresh token");

  const who = text((await callTool(provider, rec, session, "whoami")).result);
  assert.deepEqual(who, { subject: "alice", client_id: provider.info.client_id, scopes: [READ] });
  const seen = mcp.calls.filter((c) => c.method === "tools/call" && c.tool === "whoami").at(-1);
  assert.equal(seen.authorization, null, "the gate never passes the token upstream");

  // The access token expires: the next call gets 401 and the SDK refreshes on its own.
  const before = provider.saved;
  await new Promise((r) => setTimeout(r, (TOKEN_SECONDS + 1) * 1000));
  const n = rec.log.length;
  const after = await callTool(provider, rec, session, "read_note");
  assert.equal(after.reauthorized, false, "no new consent");
  const refreshed = rec.since(n).find((x) => x.grant === "refresh_token");
  assert.equal(refreshed?.status, 200, "the SDK refreshed");
  assert.equal(refreshed.refreshToken, before.refresh_token);
  assert.notEqual(provider.saved.access_token, before.access_token);
  assert.notEqual(provider.saved.refresh_token, before.refresh_token, "rotated");
  assert.ok(rec.since(n).some((x) => x.url === mcpUrl.href && x.status === 401), "the expired token got 401");

  // A replayed (rotated-away) refresh token revokes the grant: the current tokens die too.
  const replay = await form(`${srv.url}/oauth/token`, new URLSearchParams({ grant_type: "refresh_token", refresh_token: before.refresh_token, client_id: provider.info.client_id }).toString());
  assert.equal(replay.status, 400, replay.text);
  assert.equal(replay.json.error, "invalid_grant");
  const m = rec.log.length;
  const afterReplay = await callTool(provider, rec, session, "whoami");
  assert.equal(afterReplay.reauthorized, true, "the grant is gone: the client had to authorize again");
  const tail = rec.since(m);
  assert.equal(tail[0].status, 401, "the current access token died with its grant");
  const deadRefresh = tail.find((x) => x.grant === "refresh_token");
  assert.equal(deadRefresh?.status, 400);
  assert.equal(deadRefresh.body?.error, "invalid_grant", "the SDK recovers by this code: it drops its tokens");
  assert.equal(text(afterReplay.result).subject, "alice");

  // Step-up: write_note needs demo_api:write. The MCP server answers 403 insufficient_scope
  // naming every scope needed; the SDK first refreshes (a refresh keeps the grant's scopes, RFC
  // 6749 section 6), gets the same 403 and gives up; the application drops its tokens and asks
  // for the scopes of the challenge, which sends the user to a new consent.
  const k = rec.log.length;
  await assert.rejects(session.client.callTool({ name: "write_note", arguments: {} }), (e) => e instanceof StreamableHTTPError && e.code === 403);
  const refused = rec.since(k).find((x) => x.status === 403);
  assert.match(refused.www, /error="insufficient_scope"/);
  assert.match(refused.www, new RegExp(`scope="${READ} ${WRITE}"`));
  assert.match(refused.www, /resource_metadata="/);
  provider.invalidateCredentials("tokens");
  const stepUp = await auth(provider, { serverUrl: mcpUrl, scope: `${READ} ${WRITE}`, fetchFn: rec.fetchFn });
  assert.equal(stepUp, "REDIRECT");
  assert.deepEqual(provider.pending.searchParams.get("scope").split(" ").sort(), [READ, WRITE]);
  const up = await userApproves(provider);
  assert.equal(up.consented, true, "a scope not approved before asks again");
  assert.match(up.page, /demo_api:write/);
  await new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: rec.fetchFn }).finishAuth(up.code);
  Object.assign(session, await connect(provider, rec));
  const wrote = await callTool(provider, rec, session, "write_note");
  assert.equal(wrote.reauthorized, false);
  assert.match(wrote.result.content[0].text, /^written/);
  assert.deepEqual(text((await callTool(provider, rec, session, "whoami")).result).scopes.sort(), [READ, WRITE]);

  // Revoke on the token page ("Authorized applications"): the next call is 401, and the SDK
  // cannot refresh its way back (the grant is gone: it is sent to /authorize).
  const apps = await call(`${srv.url}/tokens/apps`, { headers: { cookie: alice, "sec-fetch-site": "none" } });
  assert.equal(apps.status, 200, apps.text.slice(0, 300));
  assert.ok(apps.text.includes("patgate e2e MCP client"), "the app is listed by its name");
  const action = /(?:action|href)="(\/tokens\/apps\/[^"]+\/revoke)"/.exec(apps.text)?.[1];
  assert.ok(action, "a Revoke form");
  const confirm = await call(`${srv.url}${action}`, { headers: { cookie: alice, "sec-fetch-site": "none" } });
  const csrf = hidden(confirm.status === 200 ? confirm.text : apps.text, "csrf");
  const revoked = await form(`${srv.url}${action}`, new URLSearchParams({ csrf }).toString(), { cookie: alice, "sec-fetch-site": "same-origin", origin: "null" });
  assert.ok([200, 303].includes(revoked.status), `revoke: ${revoked.status} ${revoked.text.slice(0, 300)}`);
  const j = rec.log.length;
  await assert.rejects(session.client.callTool({ name: "whoami", arguments: {} }), (e) => e instanceof UnauthorizedError);
  const end = rec.since(j);
  assert.equal(end[0].status, 401, "revoked at once");
  assert.match(end[0].www ?? "", /invalid_token/);
  assert.equal(end.find((x) => x.grant === "refresh_token")?.body?.error, "invalid_grant");
  assert.ok(provider.pending, "sent back to /authorize");
  await session.client.close();
});

test("client ID metadata document: the client_id is the document's URL, fetched once by patgate, no registration", { skip: NO_FLOW }, async () => {
  const docUrl = `${docs.base}/good/mcp-client.json`;
  const meta = await call(`${srv.url}/.well-known/oauth-authorization-server`);
  assert.equal(meta.json.client_id_metadata_document_supported, true);
  // The SDK accepts only https metadata URLs for its own CIMD branch (which does nothing but use
  // the URL as client_id); the local document is served over http (CIMD_ALLOW_HTTP_LOOPBACK), so
  // the provider hands the URL to the SDK as its client information.
  const rec = recorder();
  const provider = new TestProvider({ clientId: docUrl });
  const session = await connect(provider, rec);
  assert.ok(session.authorized && session.consented);
  assert.ok(!rec.log.some((x) => x.url.endsWith("/oauth/register")), "no RFC 7591 registration");
  assert.equal(docs.count("/good/mcp-client.json"), 1, "patgate fetched the document once");
  // The consent page says where the identity comes from: the document's host.
  assert.match(session.page, /127\.0\.0\.1/);
  const who = text((await session.client.callTool({ name: "whoami", arguments: {} })));
  assert.deepEqual(who, { subject: "alice", client_id: docUrl, scopes: [READ] });
  // A second authorization uses the stored document (its cache life is 5 minutes): no fetch.
  const again = new TestProvider({ clientId: docUrl });
  const s2 = await connect(again, recorder());
  assert.equal(s2.consented, false, "remembered approval: same user, client, redirect URI and resource");
  assert.equal(docs.count("/good/mcp-client.json"), 1);
  await session.client.close();
  await s2.client.close();
});
