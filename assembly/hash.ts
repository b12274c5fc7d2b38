/**
 * The one hash of the project (host-free): FNV-1a 64 over a string's UTF-8 bytes, and MurmurHash3's 64-bit finalizer
 * to spread its weak low bits. Values derived from it are persisted (traffic-split's sticky assignment and state key,
 * deadline's cross-hop slots): its output must never change.
 */

// @ts-ignore: decorator
@inline export const FNV_OFFSET: u64 = 0xcbf29ce484222325;
// @ts-ignore: decorator
@inline const FNV_PRIME: u64 = 0x100000001b3;

/** One FNV-1a 64 step over byte `b`. */
// @ts-ignore: decorator
@inline export function fnvByte(h: u64, b: u32): u64 {
  return (h ^ <u64>(b & 0xff)) * FNV_PRIME;
}

/** FNV-1a 64 from state `h` over the UTF-8 encoding of `s` (lone surrogates are hashed as their 3-byte form). */
export function fnvString(h: u64, s: string): u64 {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    if (c < 0x80) {
      h = fnvByte(h, c);
    } else if (c < 0x800) {
      h = fnvByte(h, 0xc0 | (c >> 6));
      h = fnvByte(h, 0x80 | (c & 0x3f));
    } else {
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
        const d = <u32>s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          h = fnvByte(h, 0xf0 | (c >> 18));
          h = fnvByte(h, 0x80 | ((c >> 12) & 0x3f));
          h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
          h = fnvByte(h, 0x80 | (c & 0x3f));
          continue;
        }
      }
      h = fnvByte(h, 0xe0 | (c >> 12));
      h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
      h = fnvByte(h, 0x80 | (c & 0x3f));
    }
  }
  return h;
}

/** FNV-1a 64 of the UTF-8 encoding of `s`. */
export function hashText(s: string): u64 {
  return fnvString(FNV_OFFSET, s);
}

/** MurmurHash3's 64-bit finalizer: every input bit reaches every output bit (FNV's low bits see only low input bits). */
// @ts-ignore: decorator
@inline export function fmix64(k: u64): u64 {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccd;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53;
  k ^= k >> 33;
  return k;
}
