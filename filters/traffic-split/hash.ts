// traffic-split's sticky hash: FNV-1a 64 with a fmix64 finish, the sticky and random points, hex of a hash.

/** Sticky points are in [0, POINTS): a subset with weight w% owns w * POINTS / 100 of them. */
// @ts-ignore: decorator
@inline export const POINTS: u32 = 10000;
// @ts-ignore: decorator
@inline const FNV_OFFSET: u64 = 0xcbf29ce484222325;
// @ts-ignore: decorator
@inline const FNV_PRIME: u64 = 0x100000001b3;

@inline function fnvByte(h: u64, b: u32): u64 {
  return (h ^ <u64>(b & 0xff)) * FNV_PRIME;
}

/** FNV-1a 64 over the UTF-8 encoding of `s` (lone surrogates are hashed as their 3-byte form). */
function fnvString(h: u64, s: string): u64 {
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

/** MurmurHash3's 64-bit finalizer: spreads FNV's weak low bits over the whole word. */
@inline function fmix64(k: u64): u64 {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccd;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53;
  k ^= k >> 33;
  return k;
}

/** FNV-1a 64 of the UTF-8 encoding of `s` (the configuration's JSON, for the shared-state key). */
export function hashText(s: string): u64 {
  return fnvString(FNV_OFFSET, s);
}

/** The sticky point of a key in [0, POINTS): fmix64(FNV-1a 64(salt ‖ 0xff ‖ key)), scaled. Same key, same point. */
export function stickyPoint(salt: string, key: string): u32 {
  let h = fnvString(FNV_OFFSET, salt);
  h = fnvByte(h, 0xff); // 0xff never occurs in UTF-8: ("a", "bc") and ("ab", "c") differ
  h = fmix64(fnvString(h, key));
  return <u32>(((h >> 32) * <u64>POINTS) >> 32);
}

/** A uniformly random point in [0, POINTS) from 64 random bits (the per-request case). */
@inline export function randomPoint(bits: u64): u32 {
  return <u32>(((bits >> 32) * <u64>POINTS) >> 32);
}

/** 16 lowercase hex digits. */
export function hex64(v: u64): string {
  let s = "";
  for (let shift: i32 = 60; shift >= 0; shift -= 4) {
    const d = <i32>((v >> <u64>shift) & 0xf);
    s += String.fromCharCode(d < 10 ? 0x30 + d : 0x57 + d);
  }
  return s;
}
