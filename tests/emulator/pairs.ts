// Header/metadata pair serialization (reference section 4):
//   u32 N | N x (u32 key_len, u32 value_len) | N x (key bytes, 0x00, value bytes, 0x00), all little-endian.
import { EmulatorError } from "./errors.js";

/** Ordered header pairs; a repeated header appears as several pairs. */
export type HeaderPairs = [string, string][];
export type BytePairs = [Uint8Array, Uint8Array][];

/** Limits of cpp-host's parser: beyond these Envoy silently reads an empty map. */
export const MAX_PAIRS = 1024;
export const MAX_PAIRS_BYTES = 1 << 20;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function toBytes(s: string | Uint8Array): Uint8Array {
  return typeof s === "string" ? utf8.encode(s) : s;
}

export function bytesToString(b: Uint8Array): string {
  return fromUtf8.decode(b);
}

/** Serializes pairs exactly as the host does; an empty list gives the 4-byte form (count 0). */
export function encodePairs(pairs: ReadonlyArray<readonly [string | Uint8Array, string | Uint8Array]>): Uint8Array {
  const encoded = pairs.map(([k, v]) => [toBytes(k), toBytes(v)] as const);
  const size = encoded.reduce((n, [k, v]) => n + 8 + k.length + 1 + v.length + 1, 4);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, encoded.length, true);
  let sizes = 4;
  let data = 4 + 8 * encoded.length;
  for (const [k, v] of encoded) {
    view.setUint32(sizes, k.length, true);
    view.setUint32(sizes + 4, v.length, true);
    sizes += 8;
    out.set(k, data);
    data += k.length + 1; // NUL already zero
    out.set(v, data);
    data += v.length + 1;
  }
  return out;
}

/** The pair-format size of `pairs` (4 + sum of 8 + klen + 1 + vlen + 1). */
export function pairsSize(pairs: ReadonlyArray<readonly [string | Uint8Array, string | Uint8Array]>): number {
  return pairs.reduce((n, [k, v]) => n + 10 + toBytes(k).length + toBytes(v).length, 4);
}

/**
 * Parses pair bytes sent by a module. Anything Envoy would silently read as an empty map (wrong size, missing NUL,
 * too many pairs, too large) throws an EmulatorError naming `what` and the exact defect.
 * Empty input and the single byte 0x00 are the two legal spellings of an empty map.
 */
export function decodePairBytes(bytes: Uint8Array, what: string): BytePairs {
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) return [];
  const fail = (why: string): never => {
    throw new EmulatorError(`${what}: malformed header pairs (${why}); Envoy would silently treat them as an empty map`);
  };
  if (bytes.length > MAX_PAIRS_BYTES) fail(`${bytes.length} bytes exceeds the 1 MiB limit`);
  if (bytes.length < 4) fail(`${bytes.length} bytes is shorter than the 4-byte count`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true);
  if (n > MAX_PAIRS) fail(`count ${n} exceeds the limit of ${MAX_PAIRS} pairs`);
  const headerEnd = 4 + 8 * n;
  if (bytes.length < headerEnd) fail(`count ${n} needs ${headerEnd} bytes of sizes but only ${bytes.length} bytes were given`);
  let expected = headerEnd;
  for (let i = 0; i < n; i++) {
    expected += view.getUint32(4 + 8 * i, true) + 1 + view.getUint32(8 + 8 * i, true) + 1;
  }
  if (expected !== bytes.length) fail(`the sizes add up to ${expected} bytes but ${bytes.length} bytes were given`);
  const out: BytePairs = [];
  let pos = headerEnd;
  for (let i = 0; i < n; i++) {
    const klen = view.getUint32(4 + 8 * i, true);
    const vlen = view.getUint32(8 + 8 * i, true);
    const key = bytes.slice(pos, pos + klen);
    if (bytes[pos + klen] !== 0) fail(`pair ${i}: key is not followed by a NUL byte`);
    pos += klen + 1;
    const value = bytes.slice(pos, pos + vlen);
    if (bytes[pos + vlen] !== 0) fail(`pair ${i}: value is not followed by a NUL byte`);
    pos += vlen + 1;
    out.push([key, value]);
  }
  return out;
}

/** As decodePairBytes, with keys and values decoded as UTF-8. */
export function decodePairs(bytes: Uint8Array, what: string): HeaderPairs {
  return decodePairBytes(bytes, what).map(([k, v]) => [bytesToString(k), bytesToString(v)]);
}
