// bench/lib/startup.mjs: part of the benchmark runner (bench/run.mjs).
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { ROOT, nodeBin, buildEnv } from "../../scripts/tools.mjs";
import { STATE, log } from "./settings.mjs";
import { median } from "./load.mjs";

// ---------------------------------------------------------------------------------------------
// Bundle and startup

export function bundleInfo(dir) {
  const wasmFiles = readdirSync(dir).filter((f) => f.endsWith(".wasm"));
  const wasm = wasmFiles.map((f) => readFileSync(join(dir, f)));
  const shim = readFileSync(join(dir, "shim.mjs"));
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  const wasmRaw = wasm.reduce((a, b) => a + b.length, 0);
  const wasmGzip = wasm.reduce((a, b) => a + gz(b), 0);
  return { wasmFiles, wasmRaw, wasmGzip, shimRaw: shim.length, shimGzip: gz(shim), totalGzip: wasmGzip + gz(shim) };
}

/** WebAssembly.compile + instantiate (stub imports) of the release wasm, each sample in a fresh node. */
export function wasmStartup(dir, samples = 5, nodeFlags = []) {
  const wasmPath = join(dir, readdirSync(dir).find((f) => f.endsWith(".wasm")));
  const code = `
    const fs = require("fs");
    const bytes = fs.readFileSync(${JSON.stringify(wasmPath)});
    (async () => {
      const t0 = performance.now();
      const mod = await WebAssembly.compile(bytes);
      const t1 = performance.now();
      const imports = {};
      for (const i of WebAssembly.Module.imports(mod)) {
        imports[i.module] ??= {};
        if (i.kind === "function") imports[i.module][i.name] = () => { throw new Error("stub"); };
        else if (i.kind === "memory") imports[i.module][i.name] = new WebAssembly.Memory({ initial: 17 });
        else if (i.kind === "table") imports[i.module][i.name] = new WebAssembly.Table({ initial: 0, element: "anyfunc" });
        else imports[i.module][i.name] = 0;
      }
      new WebAssembly.Instance(mod, imports);
      const t2 = performance.now();
      console.log(JSON.stringify({ compile: t1 - t0, instantiate: t2 - t1 }));
    })();`;
  const runs = [];
  for (let i = 0; i < samples; i++) {
    const r = spawnSync(process.execPath, [...nodeFlags, "-e", code], { encoding: "utf8", timeout: 60_000 });
    const last = r.stdout.trim().split("\n").pop();
    // A sample that printed no result (killed, or exited early under load) is reported, never a crash.
    if (r.status !== 0 || !last) return { error: (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ") || `no result (status ${r.status}, ${r.signal ?? "no signal"})` };
    runs.push(JSON.parse(last));
  }
  return { compile: median(runs.map((r) => r.compile)), instantiate: median(runs.map((r) => r.instantiate)), samples };
}

/** Startup CPU time of the worker as `wrangler check startup` profiles it in local workerd. */
export function checkStartup(config) {
  const out = join(STATE, `startup-${config.replace(/\W+/g, "_").slice(-40)}.cpuprofile`);
  const r = spawnSync(nodeBin("wrangler"), ["check", "startup", "--config", config, "--outfile", out], {
    cwd: ROOT, env: buildEnv(), encoding: "utf8", timeout: 180_000,
  });
  if (r.status !== 0 || !existsSync(out)) return null;
  const p = JSON.parse(readFileSync(out, "utf8"));
  const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  const busyUs = p.samples.reduce((a, id, i) => a + (idle.has(id) ? 0 : p.timeDeltas[i] ?? 0), 0);
  return { spanMs: (p.endTime - p.startTime) / 1000, busyMs: busyUs / 1000, samples: p.samples.length };
}

