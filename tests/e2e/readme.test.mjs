// The README's demo, run as written: every shell block marked `<!-- demo -->` (Try it, Protect
// an API, Token lifecycle, Webhooks), in order, in one bash process against a fresh server, one
// command at a time. A command must succeed, and the `# ->` comments under it are checked against
// what it printed: a leading status code against the last line (every `curl` of the demo prints
// its status code last), the rest as a pattern in which `...` stands for anything. The README's
// addresses (127.0.0.1:8787, localhost:8787, the demo ports) are this server's here, through the
// variables the demo itself reads (B, G, UP, HOOK_PORT, DEMO). So the README cannot drift.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startServer } from "./helpers.mjs";
import { ROOT } from "../../scripts/tools.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const UP = 9080 + OFFSET;
const HOOK_PORT = 8881 + OFFSET;

/** The marked blocks of the README, in order: [{ heading, code }]. */
export function demoBlocks(markdown) {
  const blocks = [];
  const re = /<!-- demo -->\n```sh\n([\s\S]*?)\n```/g;
  for (let m; (m = re.exec(markdown)); ) {
    const heading = markdown.slice(0, m.index).match(/^## .*$/gm)?.at(-1) ?? "";
    blocks.push({ heading, code: m[1] });
  }
  return blocks;
}

/**
 * A block as steps: one command each (with its `\` continuations and here-documents), and the
 * `# ->` claims written under it. Other comments and blank lines are left out.
 */
export function steps(code) {
  const out = [];
  const lines = code.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const claim = /^# -> ?(.*)$/.exec(line);
    if (claim) {
      assert.ok(out.length, `a claim before any command: ${line}`);
      out.at(-1).claims.push(claim[1]);
      continue;
    }
    if (/^\s*(#|$)/.test(line)) continue;
    const cmd = [line];
    let heredoc = /<<'?(\w+)'?/.exec(line)?.[1];
    while (i + 1 < lines.length && (heredoc || /\\$/.test(cmd.at(-1)) || /^\s+\S/.test(lines[i + 1]))) {
      const next = lines[++i];
      cmd.push(next);
      if (heredoc && next === heredoc) heredoc = undefined;
    }
    out.push({ cmd: cmd.join("\n"), claims: [] });
  }
  return out;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Checks a step's output against its claims; returns the failures (empty: all hold). */
export function check(output, claims, subst = (s) => s) {
  const failures = [];
  let body = output.replace(/\n+$/, "");
  for (const [i, raw] of claims.entries()) {
    let claim = subst(raw.trim());
    if (!claim || claim.startsWith("(")) continue; // a remark, not a claim
    const status = /^(\d{3})(?:\s+|$)/.exec(claim);
    if (status && i === 0) {
      const lines = body.split("\n");
      const last = lines.pop();
      if (last !== status[1]) failures.push(`status ${last}, README says ${status[1]}`);
      body = lines.join("\n");
      claim = claim.slice(status[0].length);
    }
    if (!claim) continue;
    const pattern = new RegExp(claim.split("...").map(escape).join("[\\s\\S]*?"));
    if (!pattern.test(body)) failures.push(`no match for: ${claim}`);
  }
  return failures;
}

/** A bash process fed one command at a time; resolves each with its output and exit status. */
function shell(env) {
  const proc = spawn("bash", ["--noprofile", "--norc"], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let buf = "";
  let waiting = null;
  const settle = () => {
    const m = /\n?__STEP_DONE__ (\d+)\n/.exec(buf);
    if (!m || !waiting) return;
    const output = buf.slice(0, m.index);
    buf = buf.slice(m.index + m[0].length);
    const w = waiting;
    waiting = null;
    w({ output, status: Number(m[1]) });
  };
  proc.stdout.on("data", (d) => { buf += d; settle(); });
  proc.stderr.on("data", (d) => { buf += d; });
  return {
    run(cmd, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no end after ${timeoutMs} ms:\n${cmd}\n--- output so far:\n${buf}`)), timeoutMs);
        waiting = (r) => { clearTimeout(t); resolve(r); };
        proc.stdin.write(`${cmd}\nprintf '\\n__STEP_DONE__ %s\\n' "$?"\n`);
      });
    },
    async close() {
      proc.stdin.write('kill $(jobs -p) 2>/dev/null; exit 0\n');
      await new Promise((r) => proc.on("exit", r));
    },
  };
}

test("the claim checker", () => {
  assert.deepEqual(check('{"a":1,"b":2}\n201\n', ['201 {"a":1,...}']), []);
  assert.deepEqual(check('{"a":1}\n200\n', ["201"]), ["status 200, README says 201"]);
  assert.deepEqual(check("x\n200\n", ['200 {"a":1}']), ['no match for: {"a":1}']);
  assert.deepEqual(check("verified A\nverified B\n", ["verified B", "verified A"]), []);
  assert.deepEqual(check("204\n", ["204", "(a remark)"]), []);
  const s = steps("A=1\n# a comment\ncurl x \\\n  -d y\n# -> 200\ncat > f <<'JS'\nline\n  # not a claim\nJS\nnode -e 'x' \\\n  &");
  assert.deepEqual(s.map((x) => x.cmd), ["A=1", "curl x \\\n  -d y", "cat > f <<'JS'\nline\n  # not a claim\nJS", "node -e 'x' \\\n  &"]);
  assert.deepEqual(s[1].claims, ["200"]);
});

let srv;
const demoDir = join(ROOT, "tests", ".state", `readme-demo-${process.pid}`);
before(async () => {
  srv = await startServer("readme", 8880);
  mkdirSync(demoDir, { recursive: true });
});
after(async () => {
  await srv?.stop();
  if (!process.env.KEEP_DEMO) rmSync(demoDir, { recursive: true, force: true });
});

test("the README's demo runs top to bottom and every status and answer it shows is true", async () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = demoBlocks(readme);
  assert.deepEqual(blocks.map((b) => b.heading), [
    "## Try it (local demo)", "## Protect an API",
    "## Token lifecycle: leaks, rotation with grace, reuse detection, self-rotation, expiry", "## Webhooks",
  ]);
  const B = srv.url;
  const G = B.replace("127.0.0.1", "localhost");
  const subst = (s) => s
    .replaceAll("http://127.0.0.1:8787", B)
    .replaceAll("http://localhost:8787", G);
  const sh = shell({ ...process.env, B, G, UP: String(UP), HOOK_PORT: String(HOOK_PORT), DEMO: demoDir });
  let ran = 0;
  // Every command runs (a failed one is reported with all the others at the end).
  const failed = [];
  try {
    for (const block of blocks) {
      for (const step of steps(block.code)) {
        const { output, status } = await sh.run(step.cmd);
        const problems = check(output, step.claims, subst);
        if (status !== 0) problems.unshift(`exit status ${status}`);
        if (problems.length) failed.push(`${block.heading}\n$ ${step.cmd}\n--- printed:\n${output}\n--- ${problems.join("; ")}`);
        ran++;
      }
    }
  } finally {
    await sh.close();
  }
  assert.deepEqual(failed, [], `\n${failed.join("\n\n")}`);
  assert.ok(ran >= 40, `${ran} commands ran`);
});
