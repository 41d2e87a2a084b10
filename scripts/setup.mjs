// `npm run setup`, and the first step of `npm start`, `npm test`, `npm run build` and
// `npm run deploy`: installs what is missing (scripts/tools.mjs), the downloads and compiles at the
// same time; `--prebuild` also starts the release build of the crate while installing. It runs on
// whatever Node started npm (Node 20 on these machines); the step after it runs on the Node 22+ of
// the `node` dev dependency, which npm finds first on PATH in node_modules/.bin once `npm ci` has
// put it there.
import { setup } from "./tools.mjs";

try {
  await setup({ quiet: process.argv.includes("--quiet"), prebuild: process.argv.includes("--prebuild") });
} catch (e) {
  console.error(`[setup] ${e.message}`);
  process.exit(1);
}
