// patgate's token format in JS, for tests and the benchmark (the Rust source of truth is
// src/token.rs): prefix `pgp_`/`pga_` + 43 base62 characters + 6 base62 characters of CRC32 (IEEE)
// over the first 47 characters, big-endian, zero-padded.
import { randomInt } from "node:crypto";
import zlib from "node:zlib";

export const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

let CRC_TABLE;
/** CRC32 (IEEE, as zlib). Uses node's zlib.crc32 where available. */
export function crc32(buf) {
  if (typeof zlib.crc32 === "function") return zlib.crc32(buf) >>> 0;
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The 6 base62 checksum characters for the first 47 characters of a token. */
export function checksum(head) {
  let crc = crc32(Buffer.from(head, "ascii"));
  let sum = "";
  for (let i = 0; i < 6; i++) {
    sum = ALPHABET[crc % 62] + sum;
    crc = Math.floor(crc / 62);
  }
  return sum;
}

/** A well-formed token (prefix, length, alphabet, checksum) that the server never issued. */
export function makeToken(prefix = "pgp_") {
  let s = prefix;
  for (let i = 0; i < 43; i++) s += ALPHABET[randomInt(62)];
  return s + checksum(s);
}
