// Peer: an API protected by @cloudflare/workers-oauth-provider, validating a bearer token it
// issued. /setup registers a public client; /authorize approves at once (benchmark only).
import { OAuthProvider } from "@cloudflare/workers-oauth-provider";

const apiHandler = {
  async fetch(request, env, ctx) {
    return Response.json({ ok: true, user: ctx.props?.userId ?? null });
  },
};

const defaultHandler = {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/setup") {
      const client = await env.OAUTH_PROVIDER.createClient({
        redirectUris: ["http://127.0.0.1/callback"],
        clientName: "bench",
        tokenEndpointAuthMethod: "none",
      });
      return Response.json({ client_id: client.clientId });
    }
    if (url.pathname === "/authorize") {
      const authRequest = await env.OAUTH_PROVIDER.parseAuthRequest(request);
      const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
        request: authRequest,
        userId: "bench-user",
        metadata: {},
        scope: authRequest.scope,
        props: { userId: "bench-user" },
      });
      return Response.redirect(redirectTo, 302);
    }
    return new Response("not found", { status: 404 });
  },
};

export default new OAuthProvider({
  apiRoute: "/api/",
  apiHandler,
  defaultHandler,
  authorizeEndpoint: "/authorize",
  tokenEndpoint: "/oauth/token",
  scopesSupported: ["read"],
  resourceMetadata: {
    resource: "http://127.0.0.1:8853/api/",
    authorization_servers: ["http://127.0.0.1:8853"],
  },
});
