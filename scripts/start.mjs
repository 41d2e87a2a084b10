// `npm start`: build, migrate and seed the local D1, serve on :8787 (`PORT=n npm start`: port n).
// The tools were installed by `scripts/setup.mjs` (the npm script's first step).
import { build } from "./build.mjs";
import { prepareState, startDevServer } from "./devserver.mjs";
import { ensureTools, ROOT } from "./tools.mjs";
import { join } from "node:path";

const started = Date.now();
ensureTools({ quiet: true });
build();
const persistDir = join(ROOT, ".wrangler", "state");
prepareState(persistDir);
console.log("[start] migrations and demo seed applied to the local D1 in .wrangler/state");
const port = Number(process.env.PORT ?? 8787);
const vars = port === 8787 ? {} : { ISSUER: `http://127.0.0.1:${port}` };
const server = await startDevServer({ port, persistDir, vars, inherit: true, timeoutMs: 300_000 });
console.log(`[start] patgate is serving on ${server.url} (Ctrl-C to stop; ${((Date.now() - started) / 1000).toFixed(0)} s after setup)`);
console.log(`[start] manage tokens in the browser: ${server.url}/ (local sign-in form: any user id)`);
console.log("[start] get a user token with: npm run dev-token -- alice");
console.log(`[start] gate routes (README "Protect an API") answer on ${server.url.replace("127.0.0.1", "localhost")}, never on the issuer's host`);
const stop = async () => { await server.stop(); process.exit(0); };
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
