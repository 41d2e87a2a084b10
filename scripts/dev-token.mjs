// Prints an HS256 user JWT for the local demo: `npm run dev-token -- alice [ttl_seconds]`.
// It is signed with the demo secret, so it is accepted only by a server configured with it.
import { createHmac } from "node:crypto";
import { DEV_VARS } from "./devserver.mjs";

export function devToken(sub, { ttl = 3600, secret = DEV_VARS.USER_JWT_HS256_SECRET, iss = "patgate-dev", aud = "patgate", now = Math.floor(Date.now() / 1000), extra = {} } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ iss, aud, sub, iat: now, exp: now + ttl, ...extra });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sub = process.argv[2];
  if (!sub) {
    console.error("usage: npm run dev-token -- <user> [ttl_seconds]");
    process.exit(2);
  }
  console.log(devToken(sub, { ttl: Number(process.argv[3] ?? 3600) }));
}
