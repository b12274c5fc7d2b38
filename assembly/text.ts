/**
 * Text helpers the binding and the filters share. ASCII only on purpose: header names, host names and the keys of a
 * configuration are ASCII, and the standard library's Unicode case mapping would add its tables to every module.
 */

/** ASCII letters to lower case; other characters as they are. Returns `s` itself when nothing changes. */
export function asciiLower(s: string): string {
  return mapUnits(s, false);
}

/*
 * ASCII character sets as 128-bit masks for inSet/allIn: bit c of LO for code units 0-63, bit c - 64 of HI for 64-127.
 * One bit test replaces a chain of comparisons, and every name check shares allIn.
 */
/** Metric label values: [A-Za-z0-9._-:/] (SPIFFE URIs keep theirs). */
// @ts-ignore: decorator
@inline export const LABEL_LO: u64 = 0x7ffe00000000000;
// @ts-ignore: decorator
@inline export const LABEL_HI: u64 = 0x7fffffe87fffffe;
/** [a-z0-9_-] (NAME_LO) or [a-z0-9._-] (NAME_DOT_LO) with NAME_HI; [A-Za-z0-9._-] is NAME_DOT_LO with LABEL_HI. */
// @ts-ignore: decorator
@inline export const NAME_LO: u64 = 0x3ff200000000000;
// @ts-ignore: decorator
@inline export const NAME_DOT_LO: u64 = 0x3ff600000000000;
// @ts-ignore: decorator
@inline export const NAME_HI: u64 = 0x7fffffe80000000;
/** Lower-case RFC 9110 token characters: [a-z0-9!#$%&'*+.^_`|~-]. */
// @ts-ignore: decorator
@inline export const TOKEN_LO: u64 = 0x3ff6cfa00000000;
// @ts-ignore: decorator
@inline export const TOKEN_HI: u64 = 0x57ffffffc0000000;

/** True when `c` is in the ASCII set (lo, hi). */
export function inSet(c: u32, lo: u64, hi: u64): bool {
  return c < 64 ? ((lo >> c) & 1) != 0 : c < 128 && ((hi >> (c - 64)) & 1) != 0;
}

/** True when every code unit of `s` is in the ASCII set (lo, hi); true for "". */
export function allIn(s: string, lo: u64, hi: u64): bool {
  for (let i: i32 = 0, n: i32 = s.length; i < n; i++) {
    if (!inSet(<u32>s.charCodeAt(i), lo, hi)) return false;
  }
  return true;
}

/**
 * `s` with each code unit mapped (label: any non-label character to "_"; else ASCII upper to lower case); `s` itself
 * when nothing changes. One copy-on-first-change loop for both, so each module carries it once.
 */
export function mapUnits(s: string, label: bool): string {
  let buf: ArrayBuffer | null = null;
  for (let i: i32 = 0, n: i32 = s.length; i < n; i++) {
    const c = <u32>s.charCodeAt(i);
    let d = c;
    if (label) {
      if (!inSet(c, LABEL_LO, LABEL_HI)) d = 0x5f;
    } else if (c >= 0x41 && c <= 0x5a) {
      d = c + 0x20;
    }
    if (d == c) continue;
    if (buf === null) buf = String.UTF16.encode(s);
    store<u16>(changetype<usize>(buf) + (<usize>i << 1), <u16>d);
  }
  return buf === null ? s : String.UTF16.decode(buf);
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

/** 10^k for 0 <= k <= 22: every product is exact in f64, so the result is too. */
export function pow10(k: i32): f64 {
  let p: f64 = 1.0;
  while (k-- > 0) p *= 10.0;
  return p;
}

/**
 * A finite number as JavaScript prints it (3600, 0.2, 1.5e-9, 1e+21; -0 as 0) when it has a decimal form of at most
 * 16 significant digits that parses back to it within 22 decimal places; "" otherwise. No float-printing tables needed.
 */
export function shortDecimal(x: f64): string {
  const a = Math.abs(x);
  const sign = x < 0 ? "-" : "";
  if (a == Math.floor(a) && a <= 9007199254740992.0) return sign + (<u64>a).toString();
  // the fewest fraction digits k whose nearest k-digit decimal m / 10^k parses back to x (one rounding: exact test)
  for (let k: i32 = 1; k <= 22; k++) {
    const p = pow10(k);
    const m = Math.round(a * p);
    if (m > 9007199254740992.0) break;
    if (m / p == a) return sign + decimalText(<u64>m, -k);
  }
  // large numbers: the most trailing zeros j with m * 10^j == x
  for (let j: i32 = 22; j >= 1; j--) {
    const p = pow10(j);
    const m = Math.round(a / p);
    if (m >= 1 && m <= 9007199254740992.0 && m * p == a) return sign + decimalText(<u64>m, j);
  }
  return "";
}

/**
 * Any number as text: shortDecimal's exact form when it has one, else 17 significant digits scaled in f64 (the last
 * may be off by one); for bounds and computed values in messages, never for parsed input (see json.ts).
 */
export function formatNumber(x: f64): string {
  if (x != x) return "NaN";
  if (x == Infinity) return "Infinity";
  if (x == -Infinity) return "-Infinity";
  const exact = shortDecimal(x);
  if (exact.length > 0) return exact;
  // find e with |x| / 10^e in [1e16, 1e17), then scale once (twice past 10^22) so only the last digit can be off
  const a = Math.abs(x);
  let probe = a;
  let e: i32 = 0;
  while (probe >= 1e17) { probe /= 10.0; e++; }
  while (probe < 1e16) { probe *= 10.0; e--; }
  let s = a;
  let k = e;
  while (k > 22) { s /= 1e22; k -= 22; }
  while (k < -22) { s *= 1e22; k += 22; }
  s = k >= 0 ? s / pow10(k) : s * pow10(-k);
  return (x < 0 ? "-" : "") + decimalText(<u64>Math.round(s), e);
}

/** m * 10^e in JavaScript's Number#toString layout: plain up to 21 integer digits and down to 1e-6, else d.ddde+N. */
function decimalText(m: u64, e: i32): string {
  while (m != 0 && m % 10 == 0) {
    m /= 10;
    e++;
  }
  const digits = m.toString();
  const k = digits.length;
  const n = k + e; // the decimal point sits after n digits
  if (k <= n && n <= 21) return digits + zeros(n - k);
  if (0 < n && n <= 21) return digits.substring(0, n) + "." + digits.substring(n);
  if (-6 < n && n <= 0) return "0." + zeros(-n) + digits;
  const exponent = n - 1;
  return digits.substring(0, 1) + (k > 1 ? "." + digits.substring(1) : "") + "e" + (exponent < 0 ? "-" : "+") + abs<i32>(exponent).toString();
}

function zeros(count: i32): string {
  let s = "";
  for (let i: i32 = 0; i < count; i++) s += "0";
  return s;
}

/** `s` cut at every `sep` (one character or more), as String#split does for a non-empty separator; written here so that
 *  the modules do not carry the library's general split. */
export function splitOn(s: string, sep: string): string[] {
  const out = new Array<string>();
  let from = 0;
  for (let at = s.indexOf(sep); at >= 0; at = s.indexOf(sep, from)) {
    out.push(s.substring(from, at));
    from = at + sep.length;
  }
  out.push(s.substring(from));
  return out;
}
