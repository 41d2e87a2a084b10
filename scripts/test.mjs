// `npm test`: host unit tests, then the end-to-end suite against the built worker on workerd.
import { ensureTools, run } from "./tools.mjs";
import { build } from "./build.mjs";

ensureTools();
run("cargo", ["test", "--locked"]);
build();
run(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", "tests/e2e/"]);
