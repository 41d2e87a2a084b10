// The secret scanning key fetch (SECRET_SCANNING_KEYS_URL) on the real runtime, against a local
// key server started here: a streamed key document is read and used; an oversized one is refused
// and cancelled; a server that never answers is given up on after the fetch timeout (5 s); and
// while the URL fails, reports are answered without asking it again (one fetch a minute).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { createServer } from "node:http";
import { startServer, call, eventually } from "./helpers.mjs";

const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 0);
const KEYS_PORT = 8846 + OFFSET;
const KEY_ID = "k-e2e-1";
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const DOC = JSON.stringify({
  public_keys: [{ key_identifier: KEY_ID, key: publicKey.export({ type: "spki", format: "pem" }), is_current: true }],
});

/** "ok" (the document, in small chunks, no Content-Length), "huge" (1 MiB of padding, streamed), "hang". */
let mode = "ok";
const requests = [];
let keyServer;
let srv;

before(async () => {
  keyServer = createServer((req, res) => {
    const entry = { mode, at: Date.now(), closed: false };
    requests.push(entry);
    res.on("close", () => (entry.closed = true));
    if (mode === "hang") return;
    res.writeHead(200, { "content-type": "application/json" });
    if (mode === "huge") {
      const chunk = " ".repeat(16 * 1024);
      let sent = 0;
      const more = () => {
        while (sent < 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once("drain", more);
        }
        res.end(DOC);
      };
      return more();
    }
    for (let i = 0; i < DOC.length; i += 100) res.write(DOC.slice(i, i + 100));
    res.end();
  });
  await new Promise((resolve, reject) => {
    keyServer.once("error", reject);
    keyServer.listen(KEYS_PORT, "127.0.0.1", resolve);
  });
  srv = await startServer("keyfetch", 8845, { SECRET_SCANNING_KEYS_URL: `http://127.0.0.1:${KEYS_PORT}/keys` });
});
after(async () => {
  await srv?.stop();
  keyServer?.closeAllConnections();
  await new Promise((r) => (keyServer ? keyServer.close(r) : r()));
});

function report(keyId = KEY_ID) {
  const body = "[]";
  return call(`${srv.url}/secret-scanning/github`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "github-public-key-identifier": keyId,
      "github-public-key-signature": sign("sha256", Buffer.from(body), privateKey).toString("base64"),
    },
    body,
  });
}

test("a streamed key document is fetched once and used", async () => {
  mode = "ok";
  const r = await report();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, []);
  assert.equal((await report()).status, 200);
  assert.equal(requests.length, 1, "cached");
});

test("an oversized key document is refused, and the failing URL is not asked again per request", async () => {
  await srv.restart(); // a fresh isolate: nothing cached, nothing tried
  mode = "huge";
  const before = requests.length;
  const r = await report();
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.error, "temporarily_unavailable");
  assert.equal(requests.length, before + 1);
  assert.ok(await eventually(() => requests.at(-1).closed, { timeoutMs: 10_000 }), "the body was cancelled");
  assert.ok(await eventually(() => /more than 262144 bytes/.test(srv.log()), { timeoutMs: 5_000 }), srv.log().slice(-2000));
  // Reports keep coming (unknown key ids too): answered at once, without a fetch.
  for (const id of [KEY_ID, "k-other", "k-third"]) {
    const again = await report(id);
    assert.equal(again.status, 503, again.text);
  }
  assert.equal(requests.length, before + 1, "no fetch while backing off");
});

test("a key server that never answers is given up on after the timeout", async () => {
  await srv.restart();
  mode = "hang";
  const started = Date.now();
  const r = await report();
  const took = Date.now() - started;
  assert.equal(r.status, 503, r.text);
  assert.ok(took >= 4_000 && took < 20_000, `answered after ${took} ms`);
  assert.ok(await eventually(() => /no answer within 5 s/.test(srv.log()), { timeoutMs: 5_000 }), srv.log().slice(-2000));
  const quick = Date.now();
  assert.equal((await report()).status, 503);
  assert.ok(Date.now() - quick < 2_000, "the next report does not wait for the URL again");
  assert.equal(requests.filter((x) => x.mode === "hang").length, 1);
});
