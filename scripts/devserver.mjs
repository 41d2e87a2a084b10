// Starts the built worker on workerd through `wrangler dev`, with real local KV, D1 and
// Durable Objects persisted under a state directory. Used by `npm start`, the end-to-end
// tests and the benchmark.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, nodeBin, buildEnv } from "./tools.mjs";

/**
 * The local values: wrangler.toml is the production configuration (no ids, no issuer), and every
 * local run (`npm start`, the tests, the benchmark) is that file plus these variables (`--var`,
 * or [vars] of a derived copy: `writeConfig`). Values of the local demo (README "Try it"); the
 * production deploy refuses every one of them (scripts/deploy-plan.mjs).
 */
export const DEV_VARS = {
  // The issuer: this machine (tests set their own port) and the demo identity provider (HS256).
  ISSUER: "http://127.0.0.1:8787",
  USER_JWT_ISSUER: "patgate-dev",
  USER_JWT_AUDIENCE: "patgate",
  USER_JWT_HS256_SECRET: "dev-user-jwt-secret",
  ADMIN_TOKEN: "dev-admin-token",
  // The token page's local sign-in form (never on in production: wrangler.toml does not set it)
  // and the HMAC key of its session cookie and CSRF tokens (production: `wrangler secret put`).
  DEV_SIGN_IN: "true",
  SESSION_SECRET: "dev-session-secret-not-for-production-0123456789",
  // Webhook endpoints on this machine over plain http (local receivers; never in production).
  WEBHOOK_ALLOW_HTTP_LOCALHOST: "true",
  // Read a refused chunked body to its end however large (within 10 s): `wrangler dev`'s proxy
  // reuses the connection for the next request (scripts/worker-shim.js, "Request bodies").
  DEV_DRAIN_REFUSED_BODIES: "true",
  // Clients that register themselves, so an MCP client on this machine works against `npm start`
  // with nothing else configured: RFC 7591 registration (its `pgd_` ids tagged with this demo key;
  // production: `wrangler secret put CLIENT_ID_KEYS`) and client ID metadata documents served over
  // plain http from 127.0.0.1 or [::1] (never in production: refused with a public ISSUER).
  DYNAMIC_REGISTRATION: "true",
  CLIENT_ID_KEYS: JSON.stringify(["cGF0Z2F0ZS1kZXYtY2xpZW50LWlkLWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="]),
  CIMD_ALLOW_HTTP_LOOPBACK: "true",
  // A throwaway key pair for local JWTs only (production: `npm run gen-key` + `wrangler secret put`).
  JWT_SIGNING_KEYS: JSON.stringify([
    { kty: "OKP", crv: "Ed25519", kid: "dev-ed25519-1", d: "sna6z2d_XgS2-_pNOBBS5vt1Ob5VaH19P0l1SOcWl_I", x: "JfsPhXT-i2GWNuXAPsQJPLzzd7PWS7xvd6bkeewFPkg" },
  ]),
};

/** A second local key (ES256) for the key-rotation demo and tests. */
export const DEV_ROTATION_KEY = { kty: "EC", crv: "P-256", kid: "dev-es256-1", x: "6V-01eyYP_wd_XREx8zCX_O0k8utQ7zftgbYvbxhzts", y: "6Rnod4XTLyVN8dbqIQ1Bin1WXJZhoD2CUGoBCmcGzTo", d: "x42WdobjaE0dbwy8UBDKmMur2F74pyH6_415KqbXO9A" };

function wrangler(args, { quiet = true } = {}) {
  const r = spawnSync(nodeBin("wrangler"), args, {
    cwd: ROOT,
    env: buildEnv(),
    encoding: "utf8",
    stdio: quiet ? "pipe" : "inherit",
  });
  if (r.status !== 0) {
    throw new Error(`wrangler ${args.join(" ")} failed:\n${r.stdout ?? ""}${r.stderr ?? ""}`);
  }
  return r.stdout;
}

/** Applies migrations/ and (optionally) the local-only demo seed to the local D1 in `persistDir`. */
export function prepareState(persistDir, { seed = true, config = "wrangler.toml" } = {}) {
  const common = ["--local", "--persist-to", persistDir, "--config", config];
  wrangler(["d1", "migrations", "apply", "DB", ...common]);
  if (seed) wrangler(["d1", "execute", "DB", ...common, "--file", join(ROOT, "seed", "dev.sql")]);
}

/**
 * Runs one SQL statement on the local D1 in `persistDir` (tests); returns its rows. This opens the
 * SQLite file from a second process while the dev server may be using it (after a response, its
 * `wait_until` work still reads and writes D1): a `database is locked` (SQLITE_BUSY) answer is
 * retried a few times, 200 ms apart, instead of failing the test.
 */
export function queryLocalD1(persistDir, sql, { config = "wrangler.toml" } = {}) {
  const args = ["d1", "execute", "DB", "--local", "--persist-to", persistDir, "--config", config, "--json", "--command", sql];
  for (let attempt = 1; ; attempt++) {
    try {
      return JSON.parse(wrangler(args))[0].results;
    } catch (e) {
      if (attempt >= 10 || !/SQLITE_BUSY|database is locked/.test(String(e.message))) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
}

/**
 * Starts `wrangler dev` and resolves once it answers HTTP.
 * Returns { url, stop(), proc, log() }.
 */
export async function startDevServer({
  port,
  persistDir,
  config = "wrangler.toml",
  vars = {},
  inherit = false,
  timeoutMs = 120_000,
  inspectorPort = 0,
  // "log" shows the Worker's console.log lines (its security events) in `log()`
  logLevel = "warn",
  // false: only `vars`, without the local demo values (the deploy tests' stand-in for a deployed
  // Worker gets exactly what was uploaded)
  devVars = true,
} = {}) {
  // Several configs (`-c a -c b`) run Workers together; the first one is served on `port`.
  const configs = Array.isArray(config) ? config : [config];
  const args = ["dev", ...configs.flatMap((c) => ["--config", c]), "--ip", "127.0.0.1", "--port", String(port)];
  if (persistDir) args.push("--persist-to", persistDir);
  args.push("--inspector-port", String(inspectorPort), "--show-interactive-dev-session=false", "--log-level", logLevel, "--test-scheduled");
  for (const [k, v] of Object.entries({ ...(devVars ? DEV_VARS : {}), ...vars })) args.push("--var", `${k}:${v}`);
  const proc = spawn(nodeBin("wrangler"), args, {
    cwd: ROOT,
    env: buildEnv(),
    stdio: inherit ? "inherit" : ["ignore", "pipe", "pipe"],
    detached: !inherit,
  });
  let log = "";
  if (!inherit) {
    proc.stdout.on("data", (d) => (log += d));
    proc.stderr.on("data", (d) => (log += d));
  }
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  proc.on("exit", (code) => (exited = code));
  for (;;) {
    if (exited !== null) throw new Error(`wrangler dev exited (${exited}):\n${log}`);
    try {
      await fetch(`${url}/.well-known/oauth-authorization-server`);
      break;
    } catch {
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`wrangler dev did not come up on ${url}:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const stop = async () => {
    if (exited !== null) return;
    const done = new Promise((r) => proc.on("exit", r));
    try {
      if (inherit) proc.kill("SIGTERM");
      else process.kill(-proc.pid, "SIGTERM");
    } catch {}
    const t = setTimeout(() => {
      try { process.kill(-proc.pid, "SIGKILL"); } catch {}
    }, 5000);
    await done;
    clearTimeout(t);
  };
  return { url, stop, proc, log: () => log };
}

/** Rate limits high enough that no test or benchmark trips them by accident. */
export const NO_RATE_LIMITS = {
  RL_FAILED_AUTH_CLIENT: 100000, RL_FAILED_AUTH_IP: 100000, RL_PAT_CREATE: 100000, RL_TOKEN_IP: 100000,
  RL_ROTATE: 100000, RL_REGISTER_IP: 100000, RL_CIMD_FETCH: 100000,
};

/**
 * Writes a copy of wrangler.toml to `path` with absolute `main` (in `workerDir`, default
 * build/worker) and `migrations_dir`, and each `[[ratelimits]]` binding named in `limits` set to
 * that many requests per period. Tests and the benchmark run on such copies; wrangler.toml keeps
 * the production defaults.
 */
export function writeConfig(path, { limits = {}, workerDir = join(ROOT, "build", "worker") } = {}) {
  let toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const main = toml.match(/^main\s*=\s*"([^"]+)"/m);
  if (!main || !main[1].startsWith("build/worker/")) throw new Error(`unexpected main in wrangler.toml: ${main?.[0]}`);
  toml = toml.replace(main[0], `main = ${JSON.stringify(join(workerDir, main[1].slice("build/worker/".length)))}`);
  toml = toml.replace(/^migrations_dir\s*=\s*"([^"]+)"/m, (_, d) => `migrations_dir = ${JSON.stringify(join(ROOT, d))}`);
  for (const [name, limit] of Object.entries(limits)) {
    const re = new RegExp(`(name = "${name}"[^\\[]*?limit = )\\d+`);
    if (!re.test(toml)) throw new Error(`no [[ratelimits]] binding ${name} in wrangler.toml`);
    toml = toml.replace(re, `$1${limit}`);
  }
  writeFileSync(path, toml);
  return path;
}
