/**
 * Typed, path-aware reading of plugin configuration (UTF-8 JSON bytes): pure code, no host imports.
 *
 *   const r = ConfigReader.fromBytes(bytes, "retry-budget");
 *   const ratio = r.number("retryRatio", 0.2, 0.0, 1.0);
 *   const rollback = r.object("rollback");            // reads "rollback.*"
 *   r.done();                                         // unknown keys, at every level read
 *   if (r.error != null) ...                          // the FIRST problem, one line
 *
 * Every reader made from a reader (object, objects) shares its error, so one check at the end is
 * enough, and done() on the root also checks every child. A missing key, or JSON null, means the
 * default; a present key of the wrong type or out of range is an error, and the default is returned.
 * An empty (or all-whitespace) configuration means "all defaults"; one larger than MAX_CONFIG_BYTES is refused
 * before it is parsed.
 */
import { asciiLower } from "./text";
import { JsonKind, JsonObject, JsonValue, formatJsonNumber, jsonError, parseJson, parseJsonUtf8, quoteJson, stringifyJson } from "./json";

/** Largest plugin configuration accepted, in UTF-8 bytes (256 KiB): the biggest legitimate one is a few KiB. */
export const MAX_CONFIG_BYTES: i32 = 262144;

/** Longest JSON text of an offending value quoted in a message; longer text is cut and ends in "...". */
@inline const MAX_QUOTED_CHARS: i32 = 64;

/** The error slot shared by a root reader and every reader made from it. */
@final class ConfigProblem {
  message: string | null = null;

  constructor(readonly name: string) {}

  /** Records `text` unless an earlier problem was recorded. */
  report(text: string): void {
    if (this.message == null) this.message = this.name.length > 0 ? this.name + ": " + text : text;
  }
}

/** Reads one JSON object level; the path prefix ("", "rollback.", "rules[0].") makes messages exact. */
export class ConfigReader {
  /** seen[i]: obj.keys[i] was read; what done() reports as unknown is the rest. */
  private readonly seen: StaticArray<bool>;
  /** Every key asked for at this level, present or not: the candidates for "did you mean". */
  private readonly asked: string[] = [];
  private readonly children: ConfigReader[] = [];
  private checked: bool = false;

  /** Use fromBytes, fromString or fromValue; readers for nested objects come from object()/objects(). */
  constructor(private readonly problem: ConfigProblem, private readonly obj: JsonObject, readonly prefix: string) {
    this.seen = new StaticArray<bool>(obj.size);
  }

  /** Reads UTF-8 JSON bytes; empty or whitespace-only bytes mean an empty object (all defaults). */
  static fromBytes(bytes: ArrayBuffer, name: string): ConfigReader {
    if (bytes.byteLength > MAX_CONFIG_BYTES) return ConfigReader.oversize(bytes.byteLength, name);
    if (isBlankBytes(bytes)) return new ConfigReader(new ConfigProblem(name), new JsonObject(), "");
    return ConfigReader.fromParsed(parseJsonUtf8(bytes), name);
  }

  /** Reads JSON text; empty or whitespace-only text means an empty object (all defaults). */
  static fromString(text: string, name: string): ConfigReader {
    const size = String.UTF8.byteLength(text);
    if (size > MAX_CONFIG_BYTES) return ConfigReader.oversize(size, name);
    if (isBlankText(text)) return new ConfigReader(new ConfigProblem(name), new JsonObject(), "");
    return ConfigReader.fromParsed(parseJson(text), name);
  }

  /** Reads an already parsed value, which must be an object. */
  static fromValue(value: JsonValue, name: string): ConfigReader {
    return ConfigReader.fromParsed(value, name);
  }

  /** A reader holding only the size error: a configuration past the cap is never parsed. */
  private static oversize(size: i32, name: string): ConfigReader {
    const problem = new ConfigProblem(name);
    problem.report("configuration is " + size.toString() + " bytes, more than the cap of " + MAX_CONFIG_BYTES.toString() +
      " bytes (" + (MAX_CONFIG_BYTES / 1024).toString() + " KiB)");
    return new ConfigReader(problem, new JsonObject(), "");
  }

  private static fromParsed(value: JsonValue | null, name: string): ConfigReader {
    const problem = new ConfigProblem(name);
    if (value == null) {
      problem.report(jsonError);
    } else if (value.kind == JsonKind.Object) {
      return new ConfigReader(problem, value.asObject(), "");
    } else {
      problem.report("expected a JSON object at the top level, got " + quoteValue(value));
    }
    return new ConfigReader(problem, new JsonObject(), "");
  }

  /** The first problem found by any reader of this configuration, or null. */
  get error(): string | null {
    return this.problem.message;
  }

  /** This level's object as compact JSON, keys in source order: a fingerprint of a configuration (section). */
  toJson(): string {
    return stringifyJson(this.obj);
  }

  /** True if `key` is present and not null; does not count as reading it. */
  has(key: string): bool {
    const value = this.obj.get(key);
    return value != null && value.kind != JsonKind.Null;
  }

  /** Records a problem the caller found (e.g. across fields): `name: field "<path>": <reason>`. */
  fail(key: string, reason: string): void {
    this.problem.report("field " + quoteJson(this.prefix + key) + ": " + reason);
  }

  /** A number in [min, max] (either bound may be infinite). */
  number(key: string, def: f64, min: f64, max: f64): f64 {
    const value = this.take(key);
    if (value == null) return def;
    if (value.kind == JsonKind.Number) {
      const x = value.asNumber();
      if (x >= min && x <= max) return x;
    }
    this.wrong(key, numberRange(min, max), value, "");
    return def;
  }

  /** A whole number in [min, max]; 3, 3.0 and 3e0 are all 3. */
  u32(key: string, def: u32, min: u32, max: u32): u32 {
    const value = this.take(key);
    if (value == null) return def;
    if (isU32In(value, min, max)) return <u32>value.asNumber();
    this.wrong(key, integerRange(min, max, "an integer"), value, "");
    return def;
  }

  /** true or false. */
  bool(key: string, def: bool): bool {
    const value = this.take(key);
    if (value == null) return def;
    if (value.kind == JsonKind.Bool) return value.asBool();
    this.wrong(key, "true or false", value, "");
    return def;
  }

  /** Any string, including "". */
  string(key: string, def: string): string {
    const value = this.take(key);
    if (value == null) return def;
    if (value.kind == JsonKind.String) return value.asString();
    this.wrong(key, "a string", value, "");
    return def;
  }

  /** One of `choices` exactly (case-sensitive); a near miss gets a "did you mean". */
  oneOf(key: string, def: string, choices: string[]): string {
    const value = this.take(key);
    if (value == null) return def;
    let hint = "";
    if (value.kind == JsonKind.String) {
      const s = value.asString();
      if (choices.includes(s)) return s;
      hint = didYouMean(s, choices);
    }
    this.wrong(key, "one of " + quoteList(choices), value, hint);
    return def;
  }

  /** An array of whole numbers, each in [min, max]; `def` is returned as is when the key is absent. */
  u32List(key: string, def: u32[], min: u32, max: u32): u32[] {
    const value = this.take(key);
    if (value == null) return def;
    const path = this.prefix + key;
    if (value.kind != JsonKind.Array) {
      this.wrongAt(path, integerRange(min, max, "an array of integers"), value);
      return def;
    }
    const items = value.asArray();
    const out = new Array<u32>(items.length);
    for (let i: i32 = 0, n: i32 = items.length; i < n; i++) {
      const item = items[i];
      if (!isU32In(item, min, max)) {
        this.wrongAt(indexPath(path, i), integerRange(min, max, "an integer"), item);
        return def;
      }
      out[i] = <u32>item.asNumber();
    }
    return out;
  }

  /** An array of strings; `def` is returned as is when the key is absent. */
  stringList(key: string, def: string[]): string[] {
    const value = this.take(key);
    if (value == null) return def;
    const path = this.prefix + key;
    if (value.kind != JsonKind.Array) {
      this.wrongAt(path, "an array of strings", value);
      return def;
    }
    const items = value.asArray();
    const out = new Array<string>(items.length);
    for (let i: i32 = 0, n: i32 = items.length; i < n; i++) {
      const item = items[i];
      if (item.kind != JsonKind.String) {
        this.wrongAt(indexPath(path, i), "a string", item);
        return def;
      }
      out[i] = item.asString();
    }
    return out;
  }

  /** A reader for the nested object at `key`; absent, null or wrong type (an error) gives an empty one. */
  object(key: string): ConfigReader {
    const value = this.take(key);
    const path = this.prefix + key;
    let obj: JsonObject;
    if (value != null && value.kind == JsonKind.Object) {
      obj = value.asObject();
    } else {
      if (value != null) this.wrongAt(path, "an object", value);
      obj = new JsonObject();
    }
    return this.child(obj, path + ".");
  }

  /** One reader per element of the array of objects at `key` (paths "key[0].", ...); absent gives []. */
  objects(key: string): ConfigReader[] {
    const value = this.take(key);
    const out: ConfigReader[] = [];
    if (value == null) return out;
    const path = this.prefix + key;
    if (value.kind != JsonKind.Array) {
      this.wrongAt(path, "an array of objects", value);
      return out;
    }
    const items = value.asArray();
    for (let i: i32 = 0, n: i32 = items.length; i < n; i++) {
      const item = items[i];
      const itemPath = indexPath(path, i);
      let obj: JsonObject;
      if (item.kind == JsonKind.Object) {
        obj = item.asObject();
      } else {
        this.wrongAt(itemPath, "an object", item);
        obj = new JsonObject();
      }
      out.push(this.child(obj, itemPath + "."));
    }
    return out;
  }

  /**
   * Call once after reading every field: reports the first key nobody read, here or in any reader
   * made from this one, as `unknown field "<path>"` with a "did you mean" for a near miss.
   */
  done(): void {
    if (!this.checked) {
      this.checked = true;
      const keys = this.obj.keys;
      for (let i: i32 = 0, n: i32 = keys.length; i < n; i++) {
        if (this.seen[i]) continue;
        const key = keys[i];
        this.problem.report("unknown field " + quoteJson(this.prefix + key) + didYouMean(key, this.asked));
        break;
      }
    }
    const children = this.children;
    for (let i: i32 = 0, n: i32 = children.length; i < n; i++) children[i].done();
  }

  /** The value at `key`, marked as read; null when absent or JSON null. */
  private take(key: string): JsonValue | null {
    if (!this.asked.includes(key)) this.asked.push(key);
    const i = this.obj.indexOf(key);
    if (i < 0) return null;
    this.seen[i] = true;
    const value = this.obj.values[i];
    return value.kind == JsonKind.Null ? null : value;
  }

  private child(obj: JsonObject, prefix: string): ConfigReader {
    const reader = new ConfigReader(this.problem, obj, prefix);
    this.children.push(reader);
    return reader;
  }

  /** `field "<prefix><key>": expected ..., got ...<hint>`. */
  private wrong(key: string, expected: string, got: JsonValue, hint: string): void {
    this.problem.report("field " + quoteJson(this.prefix + key) + ": expected " + expected + ", got " + quoteValue(got) + hint);
  }

  /** wrong() for a full path (an array or its element), no hint. */
  private wrongAt(path: string, expected: string, got: JsonValue): void {
    this.problem.report("field " + quoteJson(path) + ": expected " + expected + ", got " + quoteValue(got));
  }
}

function isU32In(value: JsonValue, min: u32, max: u32): bool {
  if (value.kind != JsonKind.Number) return false;
  const x = value.asNumber();
  return x == Math.floor(x) && x >= <f64>min && x <= <f64>max;
}

function integerRange(min: u32, max: u32, what: string): string {
  return what + " between " + min.toString() + " and " + max.toString();
}

/** "a number between 0 and 1", "a number of at least 0", "a number of at most 5" or "a number". */
function numberRange(min: f64, max: f64): string {
  const what = "a number";
  const hasMin = min != -Infinity;
  const hasMax = max != Infinity;
  if (hasMin && hasMax) return what + " between " + formatJsonNumber(min) + " and " + formatJsonNumber(max);
  if (hasMin) return what + " of at least " + formatJsonNumber(min);
  if (hasMax) return what + " of at most " + formatJsonNumber(max);
  return what;
}

function indexPath(path: string, i: i32): string {
  return path + "[" + i.toString() + "]";
}

/** `"a", "b", "c"`: each item quoted as JSON, comma-separated (the filters' lists of choices too). */
export function quoteList(items: string[]): string {
  let out = "";
  for (let i: i32 = 0, n: i32 = items.length; i < n; i++) {
    if (i > 0) out += ", ";
    out += quoteJson(items[i]);
  }
  return out;
}

/** The value as JSON text, cut to MAX_QUOTED_CHARS (never inside a surrogate pair). */
function quoteValue(value: JsonValue): string {
  const text = stringifyJson(value);
  if (text.length <= MAX_QUOTED_CHARS) return text;
  let cut = MAX_QUOTED_CHARS - 3;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return text.substring(0, cut) + "...";
}

/**
 * ` (did you mean "x"?)` for the closest candidate, ignoring case, else "". Allowed edits grow with
 * length (1 per 4 characters, 1 to 3) and must leave part of the word intact: "b" never suggests "a".
 */
function didYouMean(word: string, candidates: string[]): string {
  const lower = asciiLower(word);
  let best = "";
  let bestDistance = i32.MAX_VALUE;
  for (let i: i32 = 0, n: i32 = candidates.length; i < n; i++) {
    const candidate = candidates[i];
    if (candidate == word) continue;
    const shorter = min<i32>(lower.length, candidate.length);
    const allowed = min<i32>(min<i32>(max<i32>(1, max<i32>(lower.length, candidate.length) / 4), 3), shorter - 1);
    const d = editDistance(lower, asciiLower(candidate), allowed + 1);
    if (d <= allowed && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best.length > 0 ? " (did you mean " + quoteJson(best) + "?)" : "";
}

/**
 * Optimal string alignment distance (insert, delete, substitute, swap neighbours = 1 each), capped at `limit`.
 * One (m+1) x (n+1) table: the length check keeps it small (m < n + limit), and one loop is less code than rolling rows.
 */
function editDistance(a: string, b: string, limit: i32): i32 {
  const m = a.length;
  const n = b.length;
  if (abs<i32>(m - n) >= limit) return limit;
  const w = n + 1;
  const d = new StaticArray<i32>((m + 1) * w);
  const pa = changetype<usize>(a) - 2; // pa + 2i: the i-th character, counted from 1
  const pb = changetype<usize>(b) - 2;
  let k: i32 = 0;
  for (let i: i32 = 0; i <= m; i++) {
    for (let j: i32 = 0; j <= n; j++) {
      let v = i + j; // the first row and column: j or i edits
      if (i > 0 && j > 0) {
        const ca = load<u16>(pa + (<usize>i << 1));
        const cb = load<u16>(pb + (<usize>j << 1));
        v = min<i32>(min<i32>(unchecked(d[k - w]), unchecked(d[k - 1])) + 1, unchecked(d[k - w - 1]) + i32(ca != cb));
        if (i > 1 && j > 1 && ca == load<u16>(pb + (<usize>(j - 1) << 1)) && load<u16>(pa + (<usize>(i - 1) << 1)) == cb) {
          v = min<i32>(v, unchecked(d[k - 2 * w - 2]) + 1);
        }
      }
      unchecked(d[k++] = v);
    }
  }
  return min<i32>(unchecked(d[k - 1]), limit);
}

@inline function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function isBlankBytes(bytes: ArrayBuffer): bool {
  const base = changetype<usize>(bytes);
  for (let i: i32 = 0, n: i32 = bytes.byteLength; i < n; i++) {
    if (!isSpace(<i32>load<u8>(base + <usize>i))) return false;
  }
  return true;
}

function isBlankText(text: string): bool {
  for (let i: i32 = 0, n: i32 = text.length; i < n; i++) {
    if (!isSpace(text.charCodeAt(i))) return false;
  }
  return true;
}
