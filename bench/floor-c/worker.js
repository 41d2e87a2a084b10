// Floor C: the least a gate can cost here: read one KV key, then forward the request to the
// upstream named by UPSTREAM (streams passed through, redirects not followed).
export default {
  async fetch(request, env) {
    if (request.method === "PUT" && new URL(request.url).pathname === "/_grant") {
      await env.KV.put("grant", await request.text());
      return new Response(null, { status: 204 });
    }
    const grant = await env.KV.get("grant");
    if (grant === null) return new Response('{"error":"invalid_token"}', { status: 401 });
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
