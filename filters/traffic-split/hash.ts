// traffic-split's sticky point over the project's one hash (assembly/hash.ts), the random point, hex of a hash.
import { FNV_OFFSET, fmix64, fnvByte, fnvString } from "../../assembly/hash";

/** Sticky points are in [0, POINTS): a subset with weight w% owns w * POINTS / 100 of them. */
// @ts-ignore: decorator
@inline export const POINTS: u32 = 10000;
/** The configuration's JSON hash, for the shared-state key: FNV-1a 64 of its UTF-8 (assembly/hash.ts). */
export { hashText } from "../../assembly/hash";

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
