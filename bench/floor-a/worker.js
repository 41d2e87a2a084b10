// Floor A: the least a request can cost on this runtime path: a constant JSON body, no I/O.
const BODY = '{"active":false}';
export default {
  fetch() {
    return new Response(BODY, { headers: { "content-type": "application/json" } });
  },
};
