// Builds the release worker into build/ with worker-build, using local tool binaries.
import { ensureTools, run, buildEnv, cargoBin } from "./tools.mjs";

export function build() {
  ensureTools({ quiet: true });
  run(cargoBin("worker-build"), ["--release"], { env: buildEnv() });
}

if (import.meta.url === `file://${process.argv[1]}`) build();
