// Floor B: the least an introspection can cost here: read one KV key and return it.
// For a POST it first reads the request body, as any introspection must: floor B', the
// like-for-like floor for an introspection (reported next to plain floor B).
const HEADERS = { "content-type": "application/json" };
export default {
  async fetch(request, env) {
    if (request.method === "PUT") {
      await env.KV.put("grant", await request.text());
      return new Response(null, { status: 204 });
    }
    if (request.method === "POST") await request.arrayBuffer();
    const v = await env.KV.get("grant");
    return new Response(v ?? "null", { headers: HEADERS });
  },
};
