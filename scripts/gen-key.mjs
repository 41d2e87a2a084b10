// Prints a new private signing JWK for JWT_SIGNING_KEYS: `npm run gen-key -- [ed25519|es256] [kid]`.
// Put it FIRST in the secret's JSON array to sign with it; keep the old key after it until every
// token it signed has expired (at most the longest client token_lifetime), then drop it.
import { generateKeyPairSync } from "node:crypto";

const kind = (process.argv[2] ?? "ed25519").toLowerCase();
const kid = process.argv[3] ?? `${kind}-${new Date().toISOString().slice(0, 10)}`;
const pair = kind === "es256"
  ? generateKeyPairSync("ec", { namedCurve: "P-256" })
  : kind === "ed25519"
    ? generateKeyPairSync("ed25519")
    : null;
if (!pair) {
  console.error("usage: npm run gen-key -- [ed25519|es256] [kid]");
  process.exit(2);
}
console.log(JSON.stringify({ ...pair.privateKey.export({ format: "jwk" }), kid }));
