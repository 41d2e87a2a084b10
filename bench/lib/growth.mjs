// bench/lib/growth.mjs: part of the benchmark runner (bench/run.mjs).
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, nodeBin, buildEnv } from "../../scripts/tools.mjs";
import { TOOLS_BIN } from "../instructions.mjs";
import { log } from "./settings.mjs";

// ---------------------------------------------------------------------------------------------
// Growth: bulk rows of other users straight into the local D1 (and their grants into local KV).

export function wranglerRun(args, timeout = 600_000) {
  const r = spawnSync(nodeBin("wrangler"), args, { cwd: ROOT, env: buildEnv(), encoding: "utf8", timeout, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`wrangler ${args.slice(0, 4).join(" ")} failed (${r.status ?? r.signal}): ${(r.stdout ?? "").slice(-2000)}${(r.stderr ?? "").slice(-2000)}`);
}

/**
 * Inserts `n` PATs of other users: D1 rows and KV grants written by the project's own code
 * (`patgate-tools seed-growth`, src/bin/tools.rs: the same record types, grant format and D1
 * columns as the Worker), loaded with `wrangler d1 execute` and `wrangler kv bulk put`.
 */
export function bulkInsert(dir, n, config) {
  const now = Math.floor(Date.now() / 1000);
  const common = ["--local", "--persist-to", dir, "--config", config];
  const seedDir = join(dir, "growth");
  mkdirSync(seedDir, { recursive: true });
  const r = spawnSync(TOOLS_BIN, ["seed-growth", String(n), seedDir, String(now)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`patgate-tools seed-growth failed: ${r.stderr}`);
  let d1Ms = 0, kvMs = 0;
  const files = readdirSync(seedDir).filter((f) => f.endsWith(".sql")).sort((x, y) => parseInt(x.slice(7)) - parseInt(y.slice(7)));
  for (const [i, f] of files.entries()) {
    let t = performance.now();
    wranglerRun(["d1", "execute", "DB", ...common, "--yes", "--file", join(seedDir, f)]);
    d1Ms += performance.now() - t;
    t = performance.now();
    wranglerRun(["kv", "bulk", "put", join(seedDir, f.replace(/\.sql$/, ".json")), "--binding", "GRANTS", ...common]);
    kvMs += performance.now() - t;
    log(`growth: file ${i + 1} / ${files.length} inserted`);
  }
  rmSync(seedDir, { recursive: true, force: true });
  return { d1Ms, kvMs };
}

