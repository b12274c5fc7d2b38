/**
 * Strict JSON (RFC 8259) for plugin configuration: pure code, no host imports.
 *
 * parseJson(text) returns the value tree or null; on null, `jsonError` says why and where, e.g.
 * `syntax error at line 3 column 14 (byte 57) in "destinations[2].name": expected ',' or '}', got ']'`:
 * the line and column (1-based, columns in characters), the UTF-8 byte offset, and the member being read
 * (omitted at the top level). `jsonErrorOffset` counts UTF-16 code units for parseJson and bytes for
 * parseJsonUtf8. Rejected: trailing commas and garbage, leading zeros, lone surrogates, raw control
 * characters in strings, duplicate keys, numbers beyond f64, nesting deeper than MAX_JSON_DEPTH.
 * Time is linear in the input, escapes included.
 */
import { formatNumber, hex4, pow10, shortDecimal } from "./text";

/** Kind of a JsonValue; explicit values so they can be logged and compared as numbers. */
export enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

/** Deepest nesting of arrays/objects accepted: `[[1]]` has depth 2. */
export const MAX_JSON_DEPTH: i32 = 32;

/** Objects with more keys than this get a hash index; below it a linear scan is faster. */
@inline const INDEX_MIN_KEYS: i32 = 8;

const E_KIND = "JsonValue accessed as the wrong kind";

/** Why the last parseJson/parseJsonUtf8 failed: "" after a success. */
export let jsonError: string = "";
/** Where the last parse failed (see the header for units); -1 after a success. */
export let jsonErrorOffset: i32 = -1;
/** Line (1-based) of the last failure; 0 after a success. */
export let jsonErrorLine: i32 = 0;
/** Column (1-based, in characters) of the last failure; 0 after a success. */
export let jsonErrorColumn: i32 = 0;
/** The member being read at the last failure, e.g. `rules[0].match`; "" at the top level or after a success. */
export let jsonErrorPath: string = "";

/**
 * A parsed JSON value; check `kind`, then read it with the matching `as*` accessor (the wrong one traps).
 * The accessors test the class, not `kind`, so a hand-made `new JsonValue(JsonKind.Number)` cannot be misread.
 */
export class JsonValue {
  constructor(public readonly kind: JsonKind) {}

  isNull(): bool {
    return this.kind == JsonKind.Null;
  }

  asBool(): bool {
    assert(this instanceof JsonBool, E_KIND);
    return changetype<JsonBool>(this).value;
  }

  asNumber(): f64 {
    assert(this instanceof JsonNumber, E_KIND);
    return changetype<JsonNumber>(this).value;
  }

  asString(): string {
    assert(this instanceof JsonString, E_KIND);
    return changetype<JsonString>(this).value;
  }

  /** Elements in source order. */
  asArray(): JsonValue[] {
    assert(this instanceof JsonArray, E_KIND);
    return changetype<JsonArray>(this).items;
  }

  asObject(): JsonObject {
    assert(this instanceof JsonObject, E_KIND);
    return changetype<JsonObject>(this);
  }

  /** Compact JSON text of this value. */
  toString(): string {
    return stringifyJson(this);
  }
}

@final export class JsonBool extends JsonValue {
  constructor(public readonly value: bool) {
    super(JsonKind.Bool);
  }
}

@final export class JsonNumber extends JsonValue {
  /** `text`: the number as written in the source ("" for one made in code), echoed when no short form prints it. */
  constructor(public readonly value: f64, public readonly text: string = "") {
    super(JsonKind.Number);
  }
}

@final export class JsonString extends JsonValue {
  constructor(public readonly value: string) {
    super(JsonKind.String);
  }
}

@final export class JsonArray extends JsonValue {
  constructor(public readonly items: JsonValue[]) {
    super(JsonKind.Array);
  }
}

/** Object members in insertion order; keys are unique. Treat keys/values as read-only: add() keeps the index in step. */
@final export class JsonObject extends JsonValue {
  readonly keys: string[] = [];
  readonly values: JsonValue[] = [];
  private index: Map<string, i32> | null = null;

  constructor() {
    super(JsonKind.Object);
  }

  get size(): i32 {
    return this.keys.length;
  }

  /** Position of `key` in keys/values, or -1. */
  indexOf(key: string): i32 {
    const index = this.index;
    if (index != null) return index.has(key) ? index.get(key) : -1;
    const keys = this.keys;
    for (let i: i32 = 0, n: i32 = keys.length; i < n; i++) {
      if (keys[i] == key) return i;
    }
    return -1;
  }

  has(key: string): bool {
    return this.indexOf(key) >= 0;
  }

  get(key: string): JsonValue | null {
    const i = this.indexOf(key);
    return i < 0 ? null : this.values[i];
  }

  /** Appends a member; returns false (and changes nothing) if the key is already present. */
  add(key: string, value: JsonValue): bool {
    if (this.indexOf(key) >= 0) return false;
    const i = this.keys.length;
    this.keys.push(key);
    this.values.push(value);
    let index = this.index;
    if (index != null) {
      index.set(key, i);
    } else if (i + 1 > INDEX_MIN_KEYS) {
      index = new Map<string, i32>();
      for (let k: i32 = 0; k <= i; k++) index.set(this.keys[k], k);
      this.index = index;
    }
    return true;
  }
}

/** Shared immutable leaves: the parser makes no value object for null/true/false. */
export const JSON_NULL: JsonValue = new JsonValue(JsonKind.Null);
export const JSON_TRUE: JsonBool = new JsonBool(true);
export const JSON_FALSE: JsonBool = new JsonBool(false);

/** Parses a whole JSON document; on failure returns null and sets jsonError and its parts. */
export function parseJson(text: string): JsonValue | null {
  const parser = new JsonParser(text);
  const value = parser.document();
  if (value == null) {
    const at = parser.errorAt;
    const before = utf8Before(text, at);
    const where = lineAndColumn(before, before.byteLength);
    setError(at, before.byteLength, <i32>(where >> 32), <i32>where, parser.errorPath, parser.reason);
  } else {
    clearError();
  }
  return value;
}

/** Like parseJson for UTF-8 bytes; rejects malformed UTF-8, and error offsets count bytes. */
export function parseJsonUtf8(bytes: ArrayBuffer): JsonValue | null {
  let at = invalidUtf8At(bytes);
  let value: JsonValue | null = null;
  let path = "";
  let reason = "malformed UTF-8";
  if (at < 0) {
    const text = String.UTF8.decode(bytes);
    const parser = new JsonParser(text);
    value = parser.document();
    if (value != null) {
      clearError();
      return value;
    }
    at = utf8Before(text, parser.errorAt).byteLength;
    path = parser.errorPath;
    reason = parser.reason;
  }
  const where = lineAndColumn(bytes, at);
  setError(at, at, <i32>(where >> 32), <i32>where, path, reason);
  return null;
}

function setError(offset: i32, byte: i32, line: i32, column: i32, path: string, reason: string): void {
  jsonErrorOffset = offset;
  jsonErrorLine = line;
  jsonErrorColumn = column;
  jsonErrorPath = path;
  jsonError = "syntax error at line " + line.toString() + " column " + column.toString() + " (byte " + byte.toString() + ")" +
    (path.length > 0 ? " in " + quoteJson(path) : "") + ": " + reason;
}

function clearError(): void {
  jsonError = "";
  jsonErrorOffset = -1;
  jsonErrorLine = 0;
  jsonErrorColumn = 0;
  jsonErrorPath = "";
}

/** Line (high 32 bits) and column (low 32 bits), 1-based, of bytes[at] (UTF-8 up to `at`); columns count code points. */
function lineAndColumn(bytes: ArrayBuffer, at: i32): i64 {
  const base = changetype<usize>(bytes);
  let line: i32 = 1;
  let column: i32 = 1;
  for (let i: i32 = 0; i < at; i++) {
    const b = <u32>load<u8>(base + <usize>i);
    if (b == 0x0a) {
      line++;
      column = 1;
    } else if ((b & 0xc0) != 0x80) {
      column++; // continuation bytes belong to a character already counted
    }
  }
  return (<i64>line << 32) | <i64>column;
}

/** Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, surrogates, > U+10FFFF), or -1. */
export function invalidUtf8At(bytes: ArrayBuffer): i32 {
  const n = bytes.byteLength;
  const base = changetype<usize>(bytes);
  let i: i32 = 0;
  while (i < n) {
    const b0 = <u32>load<u8>(base + <usize>i);
    if (b0 < 0x80) {
      i++;
      continue;
    }
    if (b0 < 0xc2 || b0 > 0xf4) return i;
    const need: i32 = b0 >= 0xf0 ? 3 : b0 >= 0xe0 ? 2 : 1;
    // allowed range of the second byte: no overlongs (E0, F0), surrogates (ED) or code points past U+10FFFF (F4)
    let lo: u32 = b0 == 0xe0 ? 0xa0 : b0 == 0xf0 ? 0x90 : 0x80;
    let hi: u32 = b0 == 0xed ? 0x9f : b0 == 0xf4 ? 0x8f : 0xbf;
    if (i + need >= n) return i; // truncated sequence
    for (let k: i32 = 1; k <= need; k++) {
      const b = <u32>load<u8>(base + <usize>(i + k));
      if (b < lo || b > hi) return i;
      lo = 0x80; // the later bytes: any continuation byte
      hi = 0xbf;
    }
    i += need + 1;
  }
  return -1;
}

/** text[0, end) as UTF-8 (no lone surrogate there: the parser stops at the first one); reuses the modules' encoder. */
function utf8Before(text: string, end: i32): ArrayBuffer {
  return String.UTF8.encode(text.substring(0, end));
}

/**
 * Compact JSON text: no spaces, minimal escapes; numbers as JavaScript prints them when they have a short decimal
 * form (see text.ts shortDecimal: every integer up to 2^53, 0.25, 1e+21), others as written in the source (1e-400 is 0).
 */
export function stringifyJson(value: JsonValue): string {
  const parts: string[] = [];
  writeValue(parts, value);
  return parts.join("");
}

function writeValue(parts: string[], value: JsonValue): void {
  switch (value.kind) {
    case JsonKind.Null:
      parts.push("null");
      break;
    case JsonKind.Bool:
      parts.push(value.asBool() ? "true" : "false");
      break;
    case JsonKind.Number: {
      const n = changetype<JsonNumber>(value);
      const short = shortDecimal(value.asNumber());
      parts.push(short.length > 0 || n.text.length == 0 ? formatJsonNumber(n.value) : n.text);
      break;
    }
    case JsonKind.String:
      parts.push(quoteJson(value.asString()));
      break;
    default: {
      // an array, or an object: the same loop with each key before its value
      const isObject = value.kind == JsonKind.Object;
      const items = isObject ? value.asObject().values : value.asArray();
      parts.push(isObject ? "{" : "[");
      for (let i: i32 = 0, n: i32 = items.length; i < n; i++) {
        if (i > 0) parts.push(",");
        if (isObject) parts.push(quoteJson(value.asObject().keys[i]) + ":");
        writeValue(parts, items[i]);
      }
      parts.push(isObject ? "}" : "]");
    }
  }
}

/** `s` as a JSON string literal: quotes, backslash and control characters escaped, the rest kept. Linear time. */
export function quoteJson(s: string): string {
  const n = s.length;
  const out = new StaticArray<u16>(n * 6 + 2); // room for every unit as \u00XY; only the written part is kept
  unchecked(out[0] = 0x22);
  let o: i32 = 1;
  for (let i: i32 = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) {
      unchecked(out[o++] = <u16>c);
      continue;
    }
    unchecked(out[o++] = 0x5c);
    const letter = shortEscape(c);
    if (letter != 0) {
      unchecked(out[o++] = <u16>letter);
    } else {
      // \u00XY for the other controls, all below U+0020
      unchecked(out[o++] = 0x75);
      unchecked(out[o++] = 0x30);
      unchecked(out[o++] = 0x30);
      unchecked(out[o++] = <u16>(0x30 + (c >> 4)));
      unchecked(out[o++] = <u16>hexDigitCode(c & 0xf));
    }
  }
  unchecked(out[o] = 0x22);
  return String.UTF16.decodeUnsafe(changetype<usize>(out), <usize>(o + 1) << 1);
}

/** The letter after the backslash of a two-character escape, or 0 when `c` has none. */
function shortEscape(c: i32): i32 {
  if (c == 0x22 || c == 0x5c) return c;
  // b t n - f r for U+0008 to U+000D, one byte each
  return <u32>(c - 8) <= 5 ? <i32>((<u64>0x7266_006e_7462 >> (<u64>(c - 8) << 3)) & 0xff) : 0;
}

@inline function hexDigitCode(d: i32): i32 {
  return d < 10 ? 0x30 + d : 0x61 + d - 10;
}

/**
 * A finite number as JSON text: integers without ".0" (3600, -0 -> 0), others in JavaScript's form (0.2, 1e+21).
 * Exact for every number with a short decimal form (text.ts shortDecimal); others to 17 digits, the last approximate.
 */
export function formatJsonNumber(x: f64): string {
  return formatNumber(x);
}

/** Marks in JsonParser.levelIndex: an object level before its first key, and one inside a member. */
@inline const LEVEL_NO_KEY: i32 = -2;
@inline const LEVEL_IN_MEMBER: i32 = -1;

/** Recursive descent over one string; the first error wins and every method returns null after it. */
@final class JsonParser {
  pos: i32 = 0;
  readonly end: i32;
  errorAt: i32 = -1;
  reason: string = "";
  /** The member being read when the error was found (see jsonErrorPath). */
  errorPath: string = "";
  /** Per open array/object: the element index (arrays) or LEVEL_NO_KEY / LEVEL_IN_MEMBER with levelKey (objects). */
  private readonly levelIndex: StaticArray<i32> = new StaticArray<i32>(MAX_JSON_DEPTH);
  private readonly levelKey: StaticArray<string> = new StaticArray<string>(MAX_JSON_DEPTH);
  /** Open levels: levelIndex/levelKey beyond it are stale. */
  private levels: i32 = 0;
  /** Decoded code units of the string being read, reused; as long as the input, which no decoded string can outgrow
   * (escapes only shrink): every string costs time linear in its length. */
  private units: StaticArray<u16>;
  private unitCount: i32 = 0;

  constructor(private readonly text: string) {
    this.end = text.length;
    this.units = new StaticArray<u16>(text.length);
  }

  document(): JsonValue | null {
    this.skipSpace();
    const value = this.value(0);
    if (value == null) return null;
    this.skipSpace();
    if (this.pos < this.end) return this.fail(this.pos, "unexpected " + this.found() + " after the value");
    return value;
  }

  private fail(at: i32, reason: string): JsonValue | null {
    if (this.errorAt < 0) {
      this.errorAt = at;
      this.reason = reason;
      this.errorPath = this.path();
    }
    return null;
  }

  /** `a.b[2].c` for the open levels; stops at an object level whose next key is not read yet. */
  private path(): string {
    let path = ""; // quadratic in the depth, which is at most MAX_JSON_DEPTH
    for (let i: i32 = 0, n: i32 = this.levels; i < n; i++) {
      const index = unchecked(this.levelIndex[i]);
      if (index >= 0) {
        path += "[" + index.toString() + "]";
      } else if (index == LEVEL_IN_MEMBER) {
        path += (i > 0 ? "." : "") + unchecked(this.levelKey[i]);
      } else {
        break;
      }
    }
    return path;
  }


  /** The code unit at pos, or -1 at the end (charCodeAt's out-of-range value). */
  private peek(): i32 {
    return this.text.charCodeAt(this.pos);
  }

  /** One code unit on: a call is smaller than the load and store it replaces. */
  private advance(): void {
    this.pos++;
  }

  private skipSpace(): void {
    let c = this.peek();
    while (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) {
      this.advance();
      c = this.peek();
    }
  }

  /** What sits at pos, for messages: `'x'`, `U+00E9` or `end of input`. */
  private found(): string {
    const c = this.peek();
    if (c < 0) return "end of input";
    if (c > 0x20 && c < 0x7f) return "'" + String.fromCharCode(c) + "'";
    return "U+" + hex4(c);
  }

  private expected(what: string): JsonValue | null {
    return this.fail(this.pos, "expected " + what + ", got " + this.found());
  }

  private value(depth: i32): JsonValue | null {
    const c = this.peek();
    if ((c | 0x20) == 0x7b) { // { or [
      if (depth >= MAX_JSON_DEPTH) return this.fail(this.pos, "nested deeper than 32 levels"); // MAX_JSON_DEPTH
      return this.container(depth + 1, c == 0x7b);
    }
    if (c == 0x22) {
      const s = this.string();
      return s == null ? null : new JsonString(s);
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c == 0x74) return this.literal("true", JSON_TRUE);
    if (c == 0x66) return this.literal("false", JSON_FALSE);
    if (c == 0x6e) return this.literal("null", JSON_NULL);
    return this.expected("a value");
  }

  private literal(word: string, value: JsonValue): JsonValue | null {
    const start = this.pos;
    this.pos += word.length;
    if (this.text.substring(start, this.pos) != word) return this.fail(start, "expected '" + word + "'");
    return value;
  }

  /** An object (`{` at pos) or an array (`[`): one loop, the object's key and ':' skipped for arrays. */
  private container(depth: i32, isObject: bool): JsonValue | null {
    this.advance();
    const close = isObject ? 0x7d : 0x5d; // } or ]
    const obj = new JsonObject(); // arrays use only its values
    const items = obj.values;
    this.skipSpace();
    if (this.peek() != close) {
      const level = depth - 1; // every enclosing level is open: it is reading this value
      this.levels = depth;
      while (true) {
        unchecked(this.levelIndex[level] = isObject ? LEVEL_NO_KEY : items.length);
        this.skipSpace();
        const c = this.peek();
        if (c == close) return this.fail(this.pos, isObject ? "trailing ',' before '}'" : "trailing ',' before ']'");
        let key = "";
        const keyAt = this.pos;
        if (isObject) {
          if (c != 0x22) return this.expected("a string key");
          const read = this.string();
          if (read == null) return null;
          key = read;
          unchecked(this.levelIndex[level] = LEVEL_IN_MEMBER);
          unchecked(this.levelKey[level] = key);
          this.skipSpace();
          if (this.peek() != 0x3a) return this.expected("':' after the key");
          this.advance();
          this.skipSpace();
        }
        const member = this.value(depth);
        if (member == null) return null;
        if (!isObject) items.push(member);
        else if (!obj.add(key, member)) return this.fail(keyAt, "duplicate key " + quoteJson(key));
        this.skipSpace();
        const next = this.peek();
        if (next == close) break;
        if (next != 0x2c) return this.expected(isObject ? "',' or '}'" : "',' or ']'");
        this.advance();
      }
      this.levels = level;
    }
    this.advance();
    return isObject ? obj : new JsonArray(items);
  }

  /** -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, validated and read in one pass (see decimalValue). */
  private number(): JsonValue | null {
    const start = this.pos;
    const text = this.text;
    const negative = this.peek() == 0x2d;
    if (negative) this.advance();
    let c = this.peek();
    if (!isDigit(c)) return this.expected("a digit after '-'");
    if (c == 0x30 && isDigit(text.charCodeAt(this.pos + 1))) return this.fail(start, "leading zeros are not allowed");
    // the significant digits (from the first nonzero one): the first 19 as an integer, how many, and the count of
    // digits after the point (leading zeros there included), which scales that integer down
    let mantissa: u64 = 0;
    let digits: i32 = 0;
    let fraction: i32 = 0;
    let first: i32 = -1;
    let dot = false;
    while (true) {
      c = this.peek();
      if (isDigit(c)) {
        if (dot) fraction++;
        if (digits > 0 || c != 0x30) {
          if (first < 0) first = this.pos;
          if (++digits <= 19) mantissa = mantissa * 10 + <u64>(c - 0x30);
        }
        this.advance();
      } else if (c == 0x2e && !dot) {
        this.advance();
        if (!isDigit(this.peek())) return this.expected("a digit after '.'");
        dot = true;
      } else {
        break;
      }
    }
    let exponent: i32 = 0;
    if ((c | 0x20) == 0x65) { // e or E
      this.advance();
      c = this.peek();
      const minus = c == 0x2d;
      if (minus || c == 0x2b) this.advance();
      if (!isDigit(this.peek())) return this.expected("a digit in the exponent");
      while (isDigit((c = this.peek()))) {
        exponent = min<i32>(exponent * 10 + c - 0x30, 100000); // beyond any f64
        this.advance();
      }
      if (minus) exponent = -exponent;
    }
    const value = decimalValue(text, first, this.pos, mantissa, digits, exponent - fraction);
    if (!isFinite(value)) return this.fail(start, "number out of range");
    return new JsonNumber(negative ? -value : value, text.substring(start, this.pos));
  }

  /** Reads a string literal at pos (on the opening quote); null on error. Runs between escapes are copied whole. */
  private string(): string | null {
    const open = this.pos;
    this.advance();
    let runStart = this.pos;
    this.unitCount = 0;
    while (true) {
      const c = this.peek();
      if (c == 0x22 || c == 0x5c) {
        this.appendRun(runStart, this.pos);
        if (c == 0x22) {
          this.advance();
          return String.UTF16.decodeUnsafe(changetype<usize>(this.units), <usize>this.unitCount << 1);
        }
        if (!this.escape()) return null;
        runStart = this.pos;
        continue;
      }
      if (c < 0x20) {
        if (c < 0) this.fail(open, "unterminated string");
        else this.fail(this.pos, "control character " + this.found() + " must be escaped in a string");
        return null;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const low = this.text.charCodeAt(this.pos + 1);
        if (c > 0xdbff || low < 0xdc00 || low > 0xdfff) {
          this.fail(this.pos, "unpaired surrogate " + this.found());
          return null;
        }
        this.advance();
      }
      this.advance();
    }
  }

  /** Appends text[from, to) to `units`. */
  private appendRun(from: i32, to: i32): void {
    const n = to - from;
    memory.copy(
      changetype<usize>(this.units) + (<usize>this.unitCount << 1),
      changetype<usize>(this.text) + (<usize>from << 1),
      <usize>n << 1,
    );
    this.unitCount += n;
  }

  private appendUnit(unit: i32): void {
    unchecked(this.units[this.unitCount] = <u16>unit);
    this.unitCount++;
  }

  /** Decodes one escape at pos (on the backslash) into `units`, advancing past it; false on error. */
  private escape(): bool {
    const at = this.pos;
    this.advance();
    const c = this.peek();
    this.advance();
    let unit: i32 = c == 0x75 ? -1 : -2; // u
    if (c == 0x2f) unit = c;
    // the reverse of shortEscape: U+0008 to U+000D and the two that escape themselves
    for (let u: i32 = 8; u <= 0x5c; u++) {
      if (c > 0 && shortEscape(u) == c) unit = u;
    }
    if (unit == -2) {
      if (c < 0) this.fail(at, "unterminated string");
      else this.fail(at, "invalid escape '\\" + String.fromCharCode(c) + "'");
      return false;
    }
    if (unit >= 0) {
      this.appendUnit(unit);
      return true;
    }
    unit = this.hex4();
    if (unit < 0) return false;
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      this.fail(at, "unpaired surrogate \\u" + hex4Text(unit));
      return false;
    }
    if (unit < 0xd800 || unit > 0xdbff) {
      this.appendUnit(unit);
      return true;
    }
    // a high surrogate must be followed by an escaped low one
    if (this.peek() != 0x5c || this.text.charCodeAt(this.pos + 1) != 0x75) {
      this.fail(at, "unpaired surrogate \\u" + hex4Text(unit));
      return false;
    }
    this.pos += 2;
    const low = this.hex4();
    if (low < 0) return false;
    if (low < 0xdc00 || low > 0xdfff) {
      this.fail(at, "unpaired surrogate \\u" + hex4Text(unit));
      return false;
    }
    this.appendUnit(unit);
    this.appendUnit(low);
    return true;
  }

  /** Four hex digits at pos as a code unit, or -1 (error recorded). */
  private hex4(): i32 {
    let unit: i32 = 0;
    for (let i: i32 = 0; i < 4; i++) {
      const d = hexValue(this.peek());
      if (d < 0) {
        this.expected("4 hex digits after '\\u'");
        return -1;
      }
      unit = (unit << 4) | d;
      this.advance();
    }
    return unit;
  }
}

@inline function isDigit(c: i32): bool {
  return <u32>(c - 0x30) <= 9;
}

function hexValue(c: i32): i32 {
  if (isDigit(c)) return c - 0x30;
  const letter = (c | 0x20) - 0x61; // a-f either case
  return <u32>letter <= 5 ? letter + 10 : -1;
}

function hex4Text(unit: i32): string {
  return hex4(unit);
}

/** Significant digits read exactly; beyond them only "was any nonzero" counts (no double needs more than 767). */
@inline const MAX_DIGITS: i32 = 800;

/**
 * The f64 nearest to (the significant digits from text[first], `digits` of them, the first 19 being `mantissa`) *
 * 10^scale, ties to even; Infinity when too large for f64. Exact: one rounding for up to 16 digits and scales within
 * 22 (the common case), else big integers.
 */
function decimalValue(text: string, first: i32, end: i32, mantissa: u64, digits: i32, scale: i32): f64 {
  if (digits == 0) return 0;
  if (digits <= 19 && mantissa <= 9007199254740992 && scale >= -22 && scale <= 22) {
    // both operands exact, so one correctly rounded operation
    return scale < 0 ? <f64>mantissa / pow10(-scale) : <f64>mantissa * pow10(scale);
  }
  if (digits + scale > 310) return Infinity; // at least 10^309
  if (digits + scale < -324) return 0; // below half the smallest subnormal
  return slowDecimal(text, first, end, digits, scale);
}

/** The nearest f64 to (the up to MAX_DIGITS significant digits from text[first]) * 10^scale, by big-integer arithmetic. */
function slowDecimal(text: string, first: i32, end: i32, digits: i32, scale: i32): f64 {
  let sticky = false; // a nonzero digit was dropped past MAX_DIGITS
  if (digits > MAX_DIGITS) {
    scale += digits - MAX_DIGITS;
    digits = MAX_DIGITS;
  }
  const down = scale < 0 ? -scale : 0;
  // room for the digits (3.33 bits each), the scale and 66 bits of quotient
  const limbs = new StaticArray<u32>(((digits + down + max<i32>(scale, 0)) * 3322 / 1000 + 200) / 32 + 4);
  let n: i32 = 1;
  let read: i32 = 0;
  for (let i = first; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c == 0x2e) continue;
    if (c == 0x65 || c == 0x45) break;
    if (read < digits) {
      n = bigMulAdd(limbs, n, 10, <u32>(c - 0x30));
      read++;
    } else if (c != 0x30) {
      sticky = true;
    }
  }
  // a positive scale multiplies by 10; a negative one first shifts left far enough that the quotient keeps at least
  // 66 significant bits (the digits are at least 1), then divides by 10, `down` times
  const shift = down > 0 ? 66 + down * 3322 / 1000 + 1 : 0;
  for (let k: i32 = 0, count = down > 0 ? shift : scale; k < count; k++) n = bigMulAdd(limbs, n, down > 0 ? 2 : 10, 0);
  for (let k: i32 = 0; k < down; k++) {
    let rest: u64 = 0;
    for (let j = n - 1; j >= 0; j--) {
      const cur = (rest << 32) | <u64>unchecked(limbs[j]);
      unchecked(limbs[j] = <u32>(cur / 10));
      rest = cur % 10;
    }
    if (rest != 0) sticky = true;
    while (n > 1 && unchecked(limbs[n - 1]) == 0) n--;
  }
  // the top 64 bits, and whether anything below them is nonzero
  const bits = bigBits(limbs, n);
  let top: u64 = 0;
  for (let b = bits - 1, k = 0; k < 64 || (b >= 0 && !sticky); b--, k++) {
    const bit = b >= 0 && ((unchecked(limbs[b >> 5]) >> <u32>(b & 31)) & 1) != 0;
    if (k < 64) top = (top << 1) | <u64>bit;
    else sticky = bit;
  }
  const e = bits - 1 - shift; // the value is in [2^e, 2^(e+1))
  if (e > 1023) return Infinity;
  const keep = e >= -1022 ? 53 : e + 1075; // significant bits an f64 holds at this magnitude (fewer when subnormal)
  if (keep < 0) return 0;
  const drop = 64 - keep;
  let m: u64;
  if (drop >= 64) {
    m = top > 0x8000000000000000 || sticky ? 1 : 0; // exactly half the smallest subnormal rounds to even: 0
  } else {
    m = top >> <u64>drop;
    const rest = top & ((<u64>1 << <u64>drop) - 1);
    const half = <u64>1 << <u64>(drop - 1);
    if (rest > half || (rest == half && (sticky || (m & 1) != 0))) m++;
  }
  // a carry out of the mantissa moves into the exponent field, which is what rounding up to a power of two needs
  const raw = e >= -1022 ? (<u64>(e + 1022) << 52) + m : m;
  return raw >= 0x7ff0000000000000 ? Infinity : reinterpret<f64>(raw);
}

/** limbs[0, n) = limbs * factor + add (little-endian u32 limbs); returns the new length. */
function bigMulAdd(limbs: StaticArray<u32>, n: i32, factor: u32, add: u32): i32 {
  let carry = <u64>add;
  for (let j: i32 = 0; j < n; j++) {
    const cur = <u64>unchecked(limbs[j]) * <u64>factor + carry;
    unchecked(limbs[j] = <u32>cur);
    carry = cur >> 32;
  }
  if (carry != 0) limbs[n++] = <u32>carry;
  return n;
}

/** Index of the highest set bit plus one (0 for zero). */
function bigBits(limbs: StaticArray<u32>, n: i32): i32 {
  return (n - 1) * 32 + 32 - <i32>clz<u32>(limbs[n - 1]);
}
