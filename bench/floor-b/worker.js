// Floor B: the least an introspection can cost here: read one KV key and return it.
export default {
  async fetch(request, env) {
    if (request.method === "PUT") {
      await env.KV.put("grant", await request.text());
      return new Response(null, { status: 204 });
    }
    const v = await env.KV.get("grant");
    return new Response(v ?? "null", { headers: { "content-type": "application/json" } });
  },
};
