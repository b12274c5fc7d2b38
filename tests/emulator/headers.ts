// An ordered header map with Envoy's editing rules: lower-case keys, pseudo-headers kept in front,
// replace = remove every entry of the key then add (HeaderMapImpl::setCopy), get returns the first value.
import { EmulatorError } from "./errors.js";
import type { HeaderPairs } from "./pairs.js";

/** What a test may pass as headers: an object (one value per key) or ordered pairs (repeats allowed). */
export type HeadersInit = Record<string, string> | ReadonlyArray<readonly [string, string]>;

export class HeaderMap {
  private entries: HeaderPairs = [];

  constructor(init: HeadersInit = []) {
    const pairs = Array.isArray(init) ? init : Object.entries(init as Record<string, string>);
    for (const [k, v] of pairs) {
      if (typeof k !== "string" || typeof v !== "string") {
        throw new EmulatorError(`header ${JSON.stringify(k)}: keys and values must be strings, got ${typeof k}/${typeof v}`);
      }
      this.add(k, v);
    }
  }

  /** The entries in Envoy's iteration order (a copy). */
  get pairs(): HeaderPairs {
    return this.entries.map(([k, v]) => [k, v]);
  }

  /** Number of entries (what Envoy passes as num_headers). */
  get size(): number {
    return this.entries.length;
  }

  /** Sum of key and value lengths in bytes (Envoy's HeaderMap::byteSize). */
  get byteSize(): number {
    const enc = new TextEncoder();
    return this.entries.reduce((n, [k, v]) => n + enc.encode(k).length + enc.encode(v).length, 0);
  }

  /** The first value of `key` (case-insensitive), or undefined. */
  get(key: string): string | undefined {
    const k = key.toLowerCase();
    return this.entries.find(([ek]) => ek === k)?.[1];
  }

  getAll(key: string): string[] {
    const k = key.toLowerCase();
    return this.entries.filter(([ek]) => ek === k).map(([, v]) => v);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Appends an entry; a pseudo-header goes after the existing pseudo-headers, before regular ones. */
  add(key: string, value: string): void {
    const k = key.toLowerCase();
    if (k.startsWith(":")) {
      const firstRegular = this.entries.findIndex(([ek]) => !ek.startsWith(":"));
      this.entries.splice(firstRegular === -1 ? this.entries.length : firstRegular, 0, [k, value]);
    } else {
      this.entries.push([k, value]);
    }
  }

  remove(key: string): void {
    const k = key.toLowerCase();
    this.entries = this.entries.filter(([ek]) => ek !== k);
  }

  replace(key: string, value: string): void {
    this.remove(key);
    this.add(key, value);
  }

  /** Removes every entry, then adds the given pairs (proxy_set_header_map_pairs). */
  setAll(pairs: HeaderPairs): void {
    this.entries = [];
    for (const [k, v] of pairs) this.add(k, v);
  }

  /** One value per key, repeated values joined with "," (as Envoy's request.headers property does). */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.entries) out[k] = k in out ? `${out[k]},${v}` : v;
    return out;
  }
}
