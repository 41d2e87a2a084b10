// `npm run fuzz`: runs each cargo-fuzz target in fuzz/ for a bounded time (FUZZ_SECONDS, default 60;
// `npm run fuzz -- token form` runs only those). Installs cargo-fuzz from crates.io with the
// nightly toolchain if it is missing. Each run starts from the committed seeds in
// fuzz/corpus/<target> copied to fuzz/.work (not committed); crashes land in fuzz/artifacts/.
// Prints libFuzzer's final line per target (`#N DONE cov: ... exec/s: ...`). Not part of `npm test`.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./tools.mjs";

const TARGETS = ["token", "form", "json_bodies", "auth_headers", "user_jwt"];
const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : TARGETS;
const fuzzDir = join(ROOT, "fuzz");

function has(cmd, args) {
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

if (!has("cargo", ["+nightly", "fuzz", "--version"])) {
  console.log("installing cargo-fuzz (crates.io, nightly toolchain)...");
  const r = spawnSync("cargo", ["+nightly", "install", "cargo-fuzz", "--locked"], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const results = [];
for (const t of chosen) {
  if (!TARGETS.includes(t)) {
    console.error(`unknown target ${t}; targets: ${TARGETS.join(", ")}`);
    process.exit(2);
  }
  const work = join(fuzzDir, ".work", t);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(join(fuzzDir, "corpus", t), work, { recursive: true });
  console.log(`fuzzing ${t} for ${seconds} s...`);
  const r = spawnSync("cargo", ["+nightly", "fuzz", "run", t, work, "--", `-max_total_time=${seconds}`, "-max_len=4096"], {
    cwd: fuzzDir, encoding: "utf8", stdio: ["ignore", "inherit", "pipe"],
  });
  const err = r.stderr ?? "";
  process.stderr.write(err.split("\n").filter((l) => !/^#\d+\s+(NEW|REDUCE|pulse)/.test(l)).join("\n"));
  const done = err.split("\n").filter((l) => /^#\d+\s+DONE/.test(l)).at(-1) ?? "(no DONE line)";
  results.push({ target: t, status: r.status, done });
}
console.log("\nresults:");
for (const { target, status, done } of results) console.log(`  ${target}: ${status === 0 ? "ok" : `FAILED (${status})`}  ${done}`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
