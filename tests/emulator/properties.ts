// Property values as Envoy encodes them for proxy_get_property (reference section 8), and property paths.
import { EmulatorError } from "./errors.js";
import { encodePairs, toBytes } from "./pairs.js";

/** A typed property value for the cases a plain JS value cannot say (uint vs int, double, duration, map, list). */
export type TypedProperty =
  | { kind: "int"; value: bigint }
  | { kind: "uint"; value: bigint }
  | { kind: "double"; value: number }
  | { kind: "timestamp"; ns: bigint }
  | { kind: "duration"; ns: bigint }
  | { kind: "map"; entries: [string, PropertyValue][] }
  | { kind: "list"; items: PropertyValue[] };

/**
 * What a test may set as a property: string (raw UTF-8), Uint8Array (raw bytes), bigint (8-byte LE int64, or uint64
 * above the int64 range), boolean (1 byte), Date (timestamp: i64 ns), or a TypedProperty built with `prop.*`.
 * Plain numbers are refused: say `503n` for an int or `prop.double(0.5)` for a double.
 */
export type PropertyValue = string | Uint8Array | bigint | boolean | Date | TypedProperty;

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

/** Constructors for typed property values. */
export const prop = {
  int: (value: bigint | number): TypedProperty => ({ kind: "int", value: BigInt(value) }),
  uint: (value: bigint | number): TypedProperty => ({ kind: "uint", value: BigInt(value) }),
  double: (value: number): TypedProperty => ({ kind: "double", value }),
  timestamp: (ns: bigint): TypedProperty => ({ kind: "timestamp", ns }),
  duration: (ns: bigint): TypedProperty => ({ kind: "duration", ns }),
  durationMs: (ms: number): TypedProperty => ({ kind: "duration", ns: BigInt(ms) * 1_000_000n }),
  map: (entries: Record<string, PropertyValue> | [string, PropertyValue][]): TypedProperty => ({
    kind: "map",
    entries: Array.isArray(entries) ? entries : Object.entries(entries),
  }),
  list: (items: PropertyValue[]): TypedProperty => ({ kind: "list", items }),
};

function int64Bytes(v: bigint, signed: boolean, what: string): Uint8Array {
  const ok = signed ? v >= I64_MIN && v <= I64_MAX : v >= 0n && v <= U64_MAX;
  if (!ok) throw new EmulatorError(`property value ${v} is out of the ${signed ? "int64" : "uint64"} range (${what})`);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  if (signed) view.setBigInt64(0, v, true);
  else view.setBigUint64(0, v, true);
  return out;
}

/** Encodes a value the way Envoy serializes a CEL value for proxy_get_property. */
export function encodeProperty(value: PropertyValue, what = "value"): Uint8Array {
  if (typeof value === "string" || value instanceof Uint8Array) return toBytes(value);
  if (typeof value === "bigint") return int64Bytes(value, value <= I64_MAX, what);
  if (typeof value === "boolean") return Uint8Array.of(value ? 1 : 0);
  if (value instanceof Date) return int64Bytes(BigInt(value.getTime()) * 1_000_000n, true, what);
  if (typeof value !== "object" || value === null || !("kind" in value)) {
    throw new EmulatorError(
      `property ${what}: unsupported value ${String(value)} (${typeof value}); use a string, Uint8Array, bigint, boolean, Date or prop.*()`,
    );
  }
  switch (value.kind) {
    case "int":
      return int64Bytes(value.value, true, what);
    case "uint":
      return int64Bytes(value.value, false, what);
    case "double": {
      const out = new Uint8Array(8);
      new DataView(out.buffer).setFloat64(0, value.value, true);
      return out;
    }
    case "timestamp":
    case "duration":
      return int64Bytes(value.ns, true, what);
    case "map":
      return encodePairs(value.entries.map(([k, v]) => [toBytes(k), encodeProperty(v, `${what}.${k}`)]));
    case "list":
      return encodePairs(value.items.map((v, i) => [encodeProperty(v, `${what}[${i}]`), new Uint8Array(0)]));
  }
}

/**
 * Canonical path key: segments joined with NUL. Accepts a dotted path ("response.code"), a NUL-separated one
 * ("xds\0cluster_name") or an array of segments (needed when a segment itself contains a dot, e.g. "envoy.lb").
 */
export function propertyPath(path: string | readonly string[]): string {
  let segments: readonly string[];
  if (Array.isArray(path)) segments = path;
  else if ((path as string).includes("\0")) segments = (path as string).replace(/\0$/, "").split("\0");
  else segments = (path as string).split(".");
  if (segments.length === 0 || segments.some((s) => s === "")) {
    throw new EmulatorError(`property path ${JSON.stringify(path)} has an empty segment`);
  }
  return segments.join("\0");
}

/** The path a module sent, as a canonical key (a trailing NUL is harmless in Envoy). */
export function pathFromWire(raw: string): string {
  return raw.endsWith("\0") ? raw.slice(0, -1) : raw;
}

/** Human-readable form of a canonical path. */
export function showPath(key: string): string {
  return key.split("\0").join(".");
}

/** Descends into a map by key or a list by index, as Envoy's getProperty does; undefined when unresolvable. */
export function descend(value: PropertyValue, rest: readonly string[]): PropertyValue | undefined {
  let v: PropertyValue | undefined = value;
  for (const part of rest) {
    if (v === undefined || typeof v !== "object" || v instanceof Uint8Array || v instanceof Date) return undefined;
    if (v.kind === "map") v = v.entries.find(([k]) => k === part)?.[1];
    else if (v.kind === "list") v = /^\d+$/.test(part) ? v.items[Number(part)] : undefined;
    else return undefined;
  }
  return v;
}

/** A set of properties keyed by canonical path; a lookup may descend into a stored map or list. */
export class PropertyTree {
  private readonly values = new Map<string, PropertyValue>();

  set(path: string | readonly string[], value: PropertyValue): void {
    const key = propertyPath(path);
    encodeProperty(value, showPath(key)); // validate now, so a bad value fails where the test set it
    this.values.set(key, value);
  }

  delete(path: string | readonly string[]): void {
    this.values.delete(propertyPath(path));
  }

  /** The value at `key` (canonical), descending from the longest stored prefix. */
  lookup(key: string): PropertyValue | undefined {
    const segments = key.split("\0");
    for (let i = segments.length; i > 0; i--) {
      const stored = this.values.get(segments.slice(0, i).join("\0"));
      if (stored !== undefined) return descend(stored, segments.slice(i));
    }
    return undefined;
  }

  /** True when a stored path equals `key` or is a prefix of it. */
  covers(key: string): boolean {
    const segments = key.split("\0");
    for (let i = segments.length; i > 0; i--) if (this.values.has(segments.slice(0, i).join("\0"))) return true;
    return false;
  }
}
