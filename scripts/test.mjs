// `npm test`: host unit tests, then the end-to-end suite against the built worker on workerd.
import { ensureChromium, ensureTools, run } from "./tools.mjs";
import { build } from "./build.mjs";

ensureTools();
ensureChromium();
run("cargo", ["fmt", "--all", "--", "--check"]);
run("cargo", ["clippy", "--locked", "--all-targets", "--", "-D", "warnings"]);
run("cargo", ["clippy", "--locked", "--release", "--target", "wasm32-unknown-unknown", "--", "-D", "warnings"]);
run("cargo", ["test", "--locked"]);
build();
run(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", "tests/e2e/"]);
