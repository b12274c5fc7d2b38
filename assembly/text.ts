/**
 * Text helpers the binding and the filters share. ASCII only on purpose: header names, host names and the keys of a
 * configuration are ASCII, and the standard library's Unicode case mapping would add its tables to every module.
 */

/** ASCII letters to lower case; other characters as they are. Returns `s` itself when nothing changes. */
export function asciiLower(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) break;
    i++;
  }
  if (i == n) return s;
  const buf = String.UTF16.encode(s);
  const base = changetype<usize>(buf);
  for (; i < n; i++) {
    const at = base + (<usize>i << 1);
    const c = load<u16>(at);
    if (c >= 0x41 && c <= 0x5a) store<u16>(at, c + 0x20);
  }
  return String.UTF16.decode(buf);
}

/** A UTF-16 code unit as four upper-case hex digits (`00E9`). */
export function hex4(unit: i32): string {
  let s = "";
  for (let shift = 12; shift >= 0; shift -= 4) {
    const d = (unit >> shift) & 0xf;
    s += String.fromCharCode(d < 10 ? 0x30 + d : 0x41 + d - 10);
  }
  return s;
}
