// `npm test`: formatting, lints, host unit tests, the release build, then the end-to-end suite
// (the built worker on workerd; tests/e2e/deploy.test.mjs deploys it to a mock Cloudflare API).
import { ensureChromium, ensureTools, nodeBin, run } from "./tools.mjs";
import { build } from "./build.mjs";

ensureTools({ quiet: true });
ensureChromium();
run("cargo", ["fmt", "--all", "--", "--check"]);
run("cargo", ["clippy", "--locked", "--all-targets", "--", "-D", "warnings"]);
run("cargo", ["clippy", "--locked", "--release", "--target", "wasm32-unknown-unknown", "--", "-D", "warnings"]);
run("cargo", ["test", "--locked"]);
build();
// The e2e suite runs on the Node of the `node` dev dependency (wrangler and the deploy tests need
// Node >= 22), whichever Node started this script.
run(nodeBin("node"), ["--test", "--test-concurrency=1", "--test-reporter=spec", "tests/e2e/*.test.mjs"]);
