// `npm run setup`, and the first step of `npm start`, `npm test`, `npm run build` and
// `npm run deploy`: installs what is missing (scripts/tools.mjs). It runs on whatever Node started
// npm (Node 20 on these machines); the step after it runs on the Node 22+ of the `node` dev
// dependency, which npm finds first on PATH in node_modules/.bin once `npm ci` has put it there.
import { ensureTools } from "./tools.mjs";
ensureTools({ quiet: process.argv.includes("--quiet") });
