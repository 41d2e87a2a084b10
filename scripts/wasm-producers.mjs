// Adds `sdk: workers-rs <version>` to a wasm module's `producers` custom section, as worker-build
// does (its producers.rs), so that the build is byte for byte what worker-build would produce. The
// section is metadata only (tools and Cloudflare read which SDK built a Worker).

function readLeb(bytes, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos.at >= bytes.length) throw new Error("wasm: truncated LEB128");
    const b = bytes[pos.at++];
    result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result >>> 0;
    shift += 7;
    if (shift >= 32) throw new Error("wasm: LEB128 overflow");
  }
}

function leb(value) {
  const out = [];
  do {
    let b = value & 0x7f;
    value >>>= 7;
    if (value !== 0) b |= 0x80;
    out.push(b);
  } while (value !== 0);
  return out;
}

function readName(bytes, pos, limit) {
  const len = readLeb(bytes, pos);
  if (pos.at + len > limit) throw new Error("wasm: bad name");
  const s = Buffer.from(bytes.subarray(pos.at, pos.at + len)).toString("utf8");
  pos.at += len;
  return s;
}

const name = (s) => {
  const b = Buffer.from(s, "utf8");
  return [...leb(b.length), ...b];
};

/** Returns the module with `field: name version` merged into its producers section. */
export function addProducer(wasm, { field = "sdk", tool = "workers-rs", version }) {
  const bytes = new Uint8Array(wasm);
  if (bytes.length < 8 || Buffer.from(bytes.subarray(0, 8)).toString("hex") !== "0061736d01000000") throw new Error("wasm: bad header");
  let found = null;
  const pos = { at: 8 };
  while (pos.at < bytes.length) {
    const start = pos.at;
    const id = bytes[pos.at++];
    const len = readLeb(bytes, pos);
    const end = pos.at + len;
    if (end > bytes.length) throw new Error("wasm: bad section length");
    if (id === 0 && readName(bytes, pos, end) === "producers") {
      found = { start, end, content: pos.at };
      break;
    }
    pos.at = end;
  }
  const entries = [];
  if (found) {
    const p = { at: found.content };
    const fields = readLeb(bytes, p);
    for (let i = 0; i < fields; i++) {
      const f = readName(bytes, p, found.end);
      const n = readLeb(bytes, p);
      for (let j = 0; j < n; j++) entries.push({ field: f, name: readName(bytes, p, found.end), version: readName(bytes, p, found.end) });
    }
    if (p.at !== found.end) throw new Error("wasm: bad producers section");
  }
  if (!entries.some((e) => e.field === field && e.name === tool)) entries.push({ field, name: tool, version });
  const fields = [...new Set(entries.map((e) => e.field))];
  const content = [...leb(fields.length)];
  for (const f of fields) {
    const of = entries.filter((e) => e.field === f);
    content.push(...name(f), ...leb(of.length));
    for (const e of of) content.push(...name(e.name), ...name(e.version));
  }
  const payload = [...name("producers"), ...content];
  const section = Buffer.from([0, ...leb(payload.length), ...payload]);
  if (!found) return Buffer.concat([Buffer.from(bytes), section]);
  return Buffer.concat([Buffer.from(bytes.subarray(0, found.start)), section, Buffer.from(bytes.subarray(found.end))]);
}
