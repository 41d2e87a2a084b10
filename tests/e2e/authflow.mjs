// Helpers for the authorization code flow end to end, with a plain HTTP client (Node's fetch):
// the dev sign-in, `/authorize`, the consent form, the token endpoint. No browser: cookies and
// form fields are carried by hand, exactly as a browser would send them.
import { createHash, randomBytes } from "node:crypto";
import { call, form, FORM, ADMIN } from "./helpers.mjs";

/** A PKCE pair (RFC 7636, S256). */
export function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

/** The value of the hidden input `name` in `html` (the page escapes values; ours are base64url). */
export function hidden(html, name) {
  const m = new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(html) ?? new RegExp(`value="([^"]*)"[^>]*name="${name}"`).exec(html);
  return m ? m[1].replaceAll("&amp;", "&").replaceAll("&quot;", '"') : undefined;
}

/** `name=value` of the `Set-Cookie` headers of a response. */
function cookiesOf(headers) {
  return headers.getSetCookie().map((c) => c.split(";")[0]);
}

/** Signs `user` in through the dev sign-in form; returns the `Cookie` header value. */
export async function signIn(base, user) {
  const page = await call(`${base}/tokens/sign-in`);
  if (page.status !== 200) throw new Error(`sign-in form: ${page.status}`);
  const pre = cookiesOf(page.headers).join("; ");
  const csrf = hidden(page.text, "csrf");
  const r = await form(`${base}/tokens/sign-in`, new URLSearchParams({ csrf, user }).toString(), { cookie: pre, "sec-fetch-site": "same-origin" });
  if (r.status !== 303) throw new Error(`sign-in: ${r.status} ${r.text}`);
  const session = cookiesOf(r.headers).find((c) => c.startsWith("__Host-patgate_session=") && c.length > 24);
  if (!session) throw new Error("sign-in: no session cookie");
  return session;
}

/** The query of an authorization request (`over` replaces or, with `undefined`, drops a parameter). */
export function authorizeQuery(p, over = {}) {
  const q = {
    response_type: "code",
    client_id: p.clientId,
    redirect_uri: p.redirectUri,
    state: p.state ?? "st-" + randomBytes(6).toString("hex"),
    code_challenge: p.challenge,
    code_challenge_method: "S256",
    resource: p.resource,
    scope: p.scope,
    ...over,
  };
  for (const k of Object.keys(q)) if (q[k] === undefined) delete q[k];
  return new URLSearchParams(q).toString();
}

/** GET /authorize as the signed-in browser. */
export function authorize(base, cookie, query, headers = {}) {
  return call(`${base}/authorize?${query}`, { headers: { cookie, "sec-fetch-site": "none", ...headers } });
}

/** The consent page's form: handle and CSRF token. */
export function consentForm(r) {
  if (r.status !== 200) throw new Error(`expected the consent page, got ${r.status} ${r.headers.get("location") ?? r.text.slice(0, 300)}`);
  return { handle: hidden(r.text, "handle"), csrf: hidden(r.text, "csrf") };
}

/** POST /authorize/consent with `decision` (approve / deny). */
export function answer(base, cookie, { handle, csrf }, decision, headers = {}) {
  return form(`${base}/authorize/consent`, new URLSearchParams({ handle, csrf, decision }).toString(), {
    cookie,
    "sec-fetch-site": "same-origin",
    origin: "null",
    ...headers,
  });
}

/** The query parameters of a redirect's `Location`. */
export function redirectParams(r) {
  const loc = r.headers.get("location");
  if (!loc) throw new Error(`no Location (${r.status}): ${r.text.slice(0, 300)}`);
  const u = new URL(loc);
  return { url: u, params: Object.fromEntries(u.searchParams) };
}

/** Whole authorization: GET /authorize, approve if a consent page shows; returns the redirect. */
export async function approve(base, cookie, query) {
  const r = await authorize(base, cookie, query);
  if (r.status === 302) return redirectParams(r);
  const a = await answer(base, cookie, consentForm(r), "approve");
  return redirectParams(a);
}

/** POST /oauth/token (a public client: `client_id` in the form). */
export function token(base, fields) {
  return form(`${base}/oauth/token`, new URLSearchParams(fields).toString());
}

/** Exchanges a code. */
export function exchange(base, p, code, over = {}) {
  const f = { grant_type: "authorization_code", code, code_verifier: p.verifier, client_id: p.clientId, redirect_uri: p.redirectUri, ...over };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return token(base, f);
}

export function refresh(base, clientId, refreshToken, over = {}) {
  return token(base, { grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId, ...over });
}

export { FORM };

/**
 * Registers a public client with redirect URIs through the admin API (administrator-made), for
 * tests that do not exercise registration itself. The admin API makes this isolate forget its
 * cached client table at once (a row written to D1 behind the Worker's back would be seen only
 * after REGISTRY_CACHE_SECONDS).
 */
export async function insertClient(srv, id, { redirectUris, scopes = "demo_api:read demo_api:write", name = null, format = "reference", lifetime = 3600, refreshTokens = 1 }) {
  const r = await call(`${srv.url}/admin/clients`, {
    method: "POST",
    headers: { authorization: ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      id, public: true, allowed_scopes: scopes.split(" "), token_format: format, token_lifetime: lifetime,
      redirect_uris: redirectUris, grant_types: refreshTokens ? ["authorization_code", "refresh_token"] : ["authorization_code"],
      ...(name === null ? {} : { display_name: name }),
    }),
  });
  if (r.status !== 201) throw new Error(`creating client ${id}: ${r.status} ${r.text}`);
}
