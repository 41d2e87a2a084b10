// `npm run fuzz`: runs every cargo-fuzz target of fuzz/ for a bounded time (FUZZ_SECONDS, default
// 60 each; FUZZ_TARGETS=a,b for some only), on the committed corpus in fuzz/corpus/<target>/,
// minimizes the corpus afterwards (it stays small enough to commit) and writes fuzz/RESULTS.md
// with the executions per target. Needs the nightly toolchain; installs cargo-fuzz from crates.io
// if missing. Not part of `npm test`. A crash stops the run with libFuzzer's report and the
// crashing input under fuzz/artifacts/<target>/: turn it into a unit test.
import { spawnSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, output, run, cargoBin } from "./tools.mjs";

const FUZZ = join(ROOT, "fuzz");
const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const all = ["token_parse", "form_parse", "auth_headers", "user_jwt", "json_bodies"];
const targets = process.env.FUZZ_TARGETS ? process.env.FUZZ_TARGETS.split(",") : all;

if (!(output("rustup", ["toolchain", "list"]) ?? "").includes("nightly")) {
  run("rustup", ["toolchain", "install", "nightly", "--profile", "minimal"]);
}
if (!output(cargoBin("cargo-fuzz"), ["--version"])) {
  run("cargo", ["+nightly", "install", "cargo-fuzz", "--locked"]);
}

const rows = [];
for (const t of targets) {
  const corpus = join(FUZZ, "corpus", t);
  console.log(`[fuzz] ${t}: ${seconds} s`);
  const r = spawnSync("cargo", ["+nightly", "fuzz", "run", t, corpus, "--", `-max_total_time=${seconds}`, "-max_len=4096", "-print_final_stats=1"], {
    cwd: FUZZ, encoding: "utf8", maxBuffer: 256 << 20,
  });
  const log = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) {
    console.error(log.slice(-6000));
    throw new Error(`fuzz target ${t} failed (a crash? see fuzz/artifacts/${t}/)`);
  }
  const runs = log.match(/stat::number_of_executed_units:\s*(\d+)/)?.[1] ?? log.match(/Done (\d+) runs/)?.[1] ?? "?";
  const cov = [...log.matchAll(/cov: (\d+)/g)].at(-1)?.[1] ?? "?";
  run("cargo", ["+nightly", "fuzz", "cmin", t, corpus], { cwd: FUZZ, stdio: "ignore" });
  const files = readdirSync(corpus).length;
  console.log(`[fuzz] ${t}: ${runs} executions, coverage ${cov}, corpus ${files} files`);
  rows.push(`| ${t} | ${seconds} | ${Number(runs).toLocaleString("en-US")} | ${cov} | ${files} | none |`);
}

if (targets.length === all.length) {
  writeFileSync(join(FUZZ, "RESULTS.md"), [
    "# Fuzzing results",
    "",
    `\`npm run fuzz\` (FUZZ_SECONDS=${seconds}), ${new Date().toISOString()}, on the 2-core machine, one target at a time.`,
    "",
    "| target | seconds | executions | coverage (edges) | corpus files after cmin | crashes |",
    "|---|---:|---:|---:|---:|---|",
    ...rows,
    "",
  ].join("\n"));
  console.log("[fuzz] wrote fuzz/RESULTS.md");
}
