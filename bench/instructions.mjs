// Noise-free figure for the benchmark: instructions per introspection decision of the host-built
// core (parse the form, authenticate the API resource, hash, decide, serialize), counted by
// valgrind's callgrind on `patgate-tools introspect N` (src/bin/tools.rs) over the in-memory
// backend. Instruction counts do not depend on what else the machine is doing. Run alone:
// `node bench/instructions.mjs`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, run } from "../scripts/tools.mjs";

export const TOOLS_BIN = join(ROOT, "target", "release", "patgate-tools");

/** Builds the host tools (release). */
export function buildTools() {
  run("cargo", ["build", "--release", "--locked", "--features", "tools", "--bin", "patgate-tools"]);
}

function ensureValgrind() {
  if (spawnSync("valgrind", ["--version"]).status === 0) return true;
  if (process.getuid?.() === 0) {
    spawnSync("apt-get", ["install", "-y", "-qq", "valgrind"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }
  return spawnSync("valgrind", ["--version"]).status === 0;
}

function callgrind(n, out) {
  const r = spawnSync("valgrind", ["--tool=callgrind", `--callgrind-out-file=${out}`, TOOLS_BIN, "introspect", String(n)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`callgrind failed: ${r.stderr.slice(-1000)}`);
  const m = r.stderr.match(/Collected : (\d+)/);
  if (!m) throw new Error("no instruction count in callgrind's output");
  return Number(m[1]);
}

/**
 * Instructions per introspection: (I(N2) - I(N1)) / (N2 - N1), which cancels the setup. Returns
 * { perIntrospection, top: [{ share, fn }] } (the profile's top self-cost functions), or
 * { error }.
 */
export function measureInstructions({ n1 = 200, n2 = 2200 } = {}) {
  if (!ensureValgrind()) return { error: "valgrind is not installed" };
  const dir = mkdtempSync(join(tmpdir(), "patgate-cg-"));
  try {
    const a = callgrind(n1, join(dir, "a.out"));
    const b = callgrind(n2, join(dir, "b.out"));
    const ann = spawnSync("callgrind_annotate", ["--inclusive=no", join(dir, "b.out")], { encoding: "utf8" });
    const top = [];
    for (const line of (ann.stdout ?? "").split("\n")) {
      const m = line.match(/^\s*[\d,]+ \(\s*([\d.]+)%\)\s+(.+?) \[/);
      if (m && !line.includes("PROGRAM TOTALS") && top.length < 10) {
        const fn = m[2].replace(/^\?\?\?:/, "");
        top.push({ share: Number(m[1]), fn: fn.startsWith("./") ? fn.slice(fn.lastIndexOf(":") + 1) : fn });
      }
    }
    return { perIntrospection: Math.round((b - a) / (n2 - n1)), top, n1, n2 };
  } catch (e) {
    return { error: String(e.message ?? e) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildTools();
  const r = measureInstructions();
  console.log(JSON.stringify(r, null, 2));
}
