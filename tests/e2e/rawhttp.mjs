// Raw HTTP/1.1 on a socket, for uploads the fetch API will not shape (chunked bodies sent as
// fast as the socket takes them, malformed chunking, a declared length with no body), and the
// worker's own workerd socket behind `wrangler dev`'s proxy. Used by hostile.test.mjs and
// bodies.test.mjs.
import net from "node:net";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * The URL of the worker on workerd's own socket. `wrangler dev` puts a proxy worker in front of it
 * (the `--port` socket) that pools its connections to the worker: an answer the worker sends while
 * a body is still being uploaded can cost the proxy that connection, and the next request then
 * gets 503 "Your worker restarted mid-request" (the shim drains refused bodies to avoid it:
 * bodies.test.mjs). Cloudflare's edge has no such proxy. So tests of what the worker itself does
 * with an upload (how much it reads before answering) talk to the socket workerd opened for the
 * worker: among the sockets the `wrangler dev` process tree listens on, the one that is not
 * `--port` and serves this server's own discovery document.
 */
export async function workerUrl(base) {
  const port = new URL(base).port;
  const procs = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const read = (f) => { try { return readFileSync(f, "utf8"); } catch { return ""; } };
  const roots = procs.filter((p) => read(`/proc/${p}/cmdline`).includes(`--port\u0000${port}\u0000`));
  const tree = [];
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop();
    tree.push(p);
    stack.push(...read(`/proc/${p}/task/${p}/children`).trim().split(/\s+/).filter(Boolean));
  }
  const inodes = new Set();
  for (const p of tree) {
    let fds = [];
    try { fds = readdirSync(`/proc/${p}/fd`); } catch {}
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {}
    }
  }
  const ports = read("/proc/net/tcp").split("\n").slice(1).map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && f[3] === "0A" && inodes.has(f[9]))
    .map((f) => parseInt(f[1].split(":")[1], 16))
    .filter((p) => String(p) !== port);
  for (const p of ports) {
    try {
      const r = await fetch(`http://127.0.0.1:${p}/.well-known/oauth-authorization-server`);
      if (r.status === 200 && (await r.json()).issuer === base) return `http://127.0.0.1:${p}`;
    } catch {}
  }
  throw new Error(`no workerd socket of the worker found (listening: ${ports.join(", ")})`);
}

/**
 * workerd holds its answer until the declared body has arrived (to keep the connection), and
 * discards at most a few MiB of a chunked body it was not asked to read before it answers and
 * closes: so a declared body is always sent in full here.
 *
 * Sends `head` (request line + headers, without the blank line) on a raw socket, then body chunks
 * from `nextChunk()` (a Buffer, or null at the end) as fast as the socket takes them, until the
 * server answers or `nextChunk` ends. Resolves to { status, headers, body, sent } where `sent` is
 * the number of body bytes written before the answer arrived.
 */
export function rawExchange(base, head, { chunked = true, nextChunk = () => null, halfClose = false } = {}) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    let answer = Buffer.alloc(0);
    let sent = 0;
    let sentAtAnswer = null;
    let finished = false;
    const done = () => {
      if (finished) return;
      const text = answer.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const headLines = text.slice(0, end).split("\r\n");
      const status = Number(headLines[0].split(" ")[1]);
      const headers = {};
      for (const l of headLines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = answer.subarray(end + 4);
      let body;
      if (headers["content-length"] !== undefined) {
        const n = Number(headers["content-length"]);
        if (rest.length < n) return;
        body = rest.subarray(0, n).toString("utf8");
      } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
        const parts = [];
        for (;;) {
          const nl = rest.indexOf("\r\n");
          if (nl < 0) return;
          const size = parseInt(rest.subarray(0, nl).toString("latin1"), 16);
          if (rest.length < nl + 2 + size + 2) return;
          if (size === 0) break;
          parts.push(rest.subarray(nl + 2, nl + 2 + size));
          rest = rest.subarray(nl + 2 + size + 2);
        }
        body = Buffer.concat(parts).toString("utf8");
      } else {
        return; // wait for close
      }
      finished = true;
      sock.destroy();
      let json;
      try { json = JSON.parse(body); } catch {}
      resolve({ status, headers, body, json, sent: sentAtAnswer ?? sent });
    };
    sock.on("data", (d) => {
      if (sentAtAnswer === null) sentAtAnswer = sent;
      answer = Buffer.concat([answer, d]);
      done();
    });
    // A reset before any answer: the server closed while we were still sending (it did not read
    // the rest). The answer it sent just before may be lost with the reset (TCP discards unread
    // data on RST), so this is reported, not thrown.
    sock.on("error", () => {
      if (finished || sentAtAnswer !== null) return;
      finished = true;
      resolve({ status: 0, reset: true, headers: {}, body: "", sent });
    });
    sock.on("close", () => {
      if (finished) return;
      if (answer.length) {
        // An answer without a length, ended by the close.
        const text = answer.toString("utf8");
        const end = text.indexOf("\r\n\r\n");
        const status = Number(text.slice(0, end).split(" ")[1]);
        const body = text.slice(end + 4);
        let json;
        try { json = JSON.parse(body); } catch {}
        finished = true;
        resolve({ status, headers: {}, body, json, sent: sentAtAnswer ?? sent });
      } else {
        reject(new Error("connection closed without an answer"));
      }
    });
    sock.on("connect", async () => {
      sock.write(`${head}\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
      for (;;) {
        // Let pending reads run first: a write into a connection the server already answered
        // and reset fails synchronously, and Node then drops the unread answer.
        await new Promise((r) => setImmediate(r));
        if (sentAtAnswer !== null || finished || sock.destroyed) return;
        const c = nextChunk();
        if (c === null) {
          if (chunked) sock.write("0\r\n\r\n");
          if (halfClose) sock.end();
          return;
        }
        const framed = chunked ? Buffer.concat([Buffer.from(c.length.toString(16) + "\r\n"), c, Buffer.from("\r\n")]) : c;
        const ok = sock.write(framed);
        sent += c.length;
        if (!ok) {
          await new Promise((r) => {
            const go = () => { sock.off("drain", go); sock.off("close", go); r(); };
            sock.on("drain", go);
            sock.on("close", go);
          });
        }
      }
    });
  });
}


/**
 * One request on a new raw connection (`Connection: close`), for uploads that `fetch` will not
 * shape. `head` is the request line and headers without the blank line. The body is `total` bytes
 * of `a` in `chunk`-byte pieces, chunked unless `chunked` is false, sent as fast as the socket
 * takes it; `wire` (a string or Buffer) is written as is after the head instead. An early answer
 * stops the upload unless `keepSending`. `stallMs` then `close` sends the body, waits, and closes
 * the connection without ending the body (a client that stalls and goes away).
 * Resolves to { status, headers, body, json, sent, ms } once the answer is complete; status 0 with
 * `error` when the connection ended without one or none came within `timeoutMs`.
 */
export function upload(base, head, {
  total = 0, chunk = 16 * 1024, chunked = true, wire = null, keepSending = false, stallMs = 0, close = false,
  timeoutMs = 30_000,
} = {}) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(Number(port), hostname);
    let answer = Buffer.alloc(0);
    let sent = 0;
    let answeredAt = null;
    let finished = false;
    const timer = setTimeout(() => finish({ status: 0, error: `no answer in ${timeoutMs} ms` }), timeoutMs);
    const finish = (r) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ headers: {}, body: "", ...r, sent: answeredAt ?? sent, ms: Date.now() - t0 });
    };
    const parse = (ended) => {
      const text = answer.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return ended && finish({ status: 0, error: "no answer" });
      const lines = text.slice(0, end).split("\r\n");
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = answer.subarray(end + 4);
      let body;
      if (headers["content-length"] !== undefined) {
        if (rest.length < Number(headers["content-length"])) return ended && finish({ status: 0, error: "short answer" });
        body = rest.subarray(0, Number(headers["content-length"]));
      } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
        const parts = [];
        for (;;) {
          const nl = rest.indexOf("\r\n");
          const size = nl < 0 ? NaN : parseInt(rest.subarray(0, nl).toString("latin1"), 16);
          if (nl < 0 || rest.length < nl + 2 + size + 2) return ended && finish({ status: 0, error: "short answer" });
          if (size === 0) break;
          parts.push(rest.subarray(nl + 2, nl + 2 + size));
          rest = rest.subarray(nl + 2 + size + 2);
        }
        body = Buffer.concat(parts);
      } else if (ended) {
        body = rest;
      } else {
        return;
      }
      const text2 = body.toString("utf8");
      let json;
      try { json = JSON.parse(text2); } catch {}
      finish({ status: Number(lines[0].split(" ")[1]), headers, body: text2, json });
    };
    sock.on("data", (d) => {
      answeredAt ??= sent;
      answer = Buffer.concat([answer, d]);
      parse(false);
    });
    sock.on("error", (e) => (answer.length ? parse(true) : finish({ status: 0, error: e.code })));
    sock.on("close", () => parse(true));
    sock.on("connect", async () => {
      sock.write(`${head}\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
      if (wire !== null) sock.write(wire);
      let left = total;
      while (left > 0) {
        // Let pending reads run first (an answer may have arrived).
        await new Promise((r) => setImmediate(r));
        if (finished || sock.destroyed || (answeredAt !== null && !keepSending)) return;
        const n = Math.min(chunk, left);
        left -= n;
        const c = Buffer.alloc(n, "a");
        sent += n;
        const ok = sock.write(chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), c, Buffer.from("\r\n")]) : c);
        if (!ok) {
          await new Promise((r) => {
            const go = () => { sock.off("drain", go); sock.off("close", go); r(); };
            sock.on("drain", go);
            sock.on("close", go);
          });
        }
      }
      if (stallMs) await new Promise((r) => setTimeout(r, stallMs));
      if (close) return finish({ status: 0, error: "client closed" });
      if (chunked && wire === null && !finished && !sock.destroyed) sock.write("0\r\n\r\n");
    });
  });
}
