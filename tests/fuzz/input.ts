// What the fuzz tests send: seeded random choices, hostile authorities, every header a filter reads with values a
// caller might send, response flags; and the bounds on the label values of the series a module defines. Used by
// tests/unit/fuzz.test.ts (emulator) and tests/e2e/fuzz.test.ts (real Envoy).
import assert from "node:assert/strict";

export { prng } from "../harness/upstream.js";

/** One seed per module from the run's seed (FNV-1a over the name), so modules do not share a sequence. */
export function seedFor(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Random choices over one PRNG. */
export class Dice {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  token(len: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"): string {
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}

export const SERVICES = ["checkout", "inventory", "payments", "svc-a", "svc-b"];

/** An authority as a hostile caller spells it: known names in any case, ports, trailing dots, made-up, unicode, huge. */
export function authority(d: Dice): string {
  switch (d.int(0, 7)) {
    case 0: return d.pick(SERVICES);
    case 1: return d.pick(SERVICES).toUpperCase();
    case 2: return `${d.pick(SERVICES)}:${d.int(0, 70000)}`;
    case 3: return `${d.pick(SERVICES)}.${d.chance(0.5) ? `:${d.int(1, 65535)}` : ""}`;
    case 4: return `${d.token(d.int(1, 30))}.example`;
    case 5: return `${d.pick(["bücher", "日本", "ß", "ＡＢＣ"])}.${d.pick(SERVICES)}`;
    case 6: return d.token(d.int(200, 4096));
    default: return d.pick(["", ":", ".", "[::1]:80", "127.0.0.1", "a..b", "%00", "*"]);
  }
}

/** A number-ish value for a header that should hold one: in range, negative, huge, fractional, garbage. */
function numberish(d: Dice): string {
  return d.pick([
    () => String(d.int(0, 100)), () => String(d.int(0, 100_000)), () => String(-d.int(1, 1000)), () => "99999999999999999999999",
    () => `${d.int(0, 9)}.${d.int(0, 9)}`, () => "", () => " 12 ", () => "0x10", () => "1e3", () => "NaN", () => d.token(5),
  ])();
}

/** grpc-timeout values, valid and malformed. */
function grpcTimeout(d: Dice): string {
  return d.pick([
    () => `${d.int(0, 99_999_999)}${d.pick(["H", "M", "S", "m", "u", "n"])}`, () => `${d.int(0, 999_999_999)}m`, () => "m", () => "5",
    () => "5x", () => "-5m", () => "1.5S", () => "５m", () => "", () => `${d.int(1, 9)}${d.pick(["h", "s", "MM", " m"])}`,
  ])();
}

/** Every request header any filter reads, each with values a caller might send. */
const HEADERS: Record<string, (d: Dice) => string> = {
  "x-resilience-deadline-ms": numberish,
  "grpc-timeout": grpcTimeout,
  "x-envoy-expected-rq-timeout-ms": numberish,
  "x-envoy-upstream-rq-timeout-ms": numberish,
  "x-envoy-upstream-rq-per-try-timeout-ms": numberish,
  "x-envoy-max-retries": numberish,
  "x-envoy-retry-on": (d) => d.pick(["5xx", "reset,5xx", "", "gateway-error,retriable-4xx", d.token(40, "abcdefgh,-x")]),
  "x-envoy-retriable-status-codes": (d) => `${d.int(100, 999)},${d.int(100, 999)}`,
  "x-request-id": (d) => d.pick([() => "fixed-id", () => d.token(36, "0123456789abcdef-"), () => "", () => d.token(d.int(100, 2000))])(),
  "x-traffic-subset": (d) => d.pick(["canary", "stable", "", "CANARY", d.token(8)]),
  "x-user-id": (d) => d.token(d.int(0, 40)),
  "x-canary": (d) => d.pick(["always", "never", ""]),
  cookie: (d) => d.pick([`uid=${d.token(6)}`, "uid=", "=;;", `a=b; uid="${d.token(4)}"`]),
  "x-breaker-fallback": (d) => d.pick(["open", "half-open", "closed", ""]),
  "x-breaker-state": (d) => d.pick(["open", "closed", ""]),
  "content-type": (d) => d.pick(["application/grpc", "application/grpc+proto", "application/json", "text/plain", "", d.token(20)]),
  "x-forwarded-for": (d) => `${d.int(0, 255)}.${d.int(0, 255)}.${d.int(0, 255)}.${d.int(0, 255)}`,
};

/** A random request header set. */
export function headerSet(d: Dice): Record<string, string> {
  const h: Record<string, string> = {
    // Mostly methods Envoy's codec takes, so most sets reach the filter in a real Envoy (it answers the rest 400).
    ":method": d.chance(0.85) ? d.pick(["GET", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]) : d.pick(["CONNECT", "get", d.token(7).toUpperCase()]),
    ":authority": authority(d),
    ":path": d.pick([() => "/", () => `/${d.token(d.int(1, 50), "abc/?=&%.")}`, () => `/pkg.Service/${d.token(6)}`, () => `/${d.token(3000)}`])(),
    ":scheme": "http",
  };
  for (const [name, gen] of Object.entries(HEADERS)) if (d.chance(0.3)) h[name] = gen(d);
  return h;
}

/** Response flags Envoy sets (UH, UT, LR, UR, UF, UC, UO, NR, DC, URX, DR ...), alone, combined, or any 32 bits. */
export function responseFlags(d: Dice): bigint {
  const known = [0x2n, 0x4n, 0x8n, 0x10n, 0x20n, 0x40n, 0x80n, 0x100n, 0x4000n, 0x8000n, 0x10000n, 0x10000000n];
  // Mostly none, so breakers are not open most of the run and the completion path is exercised too.
  if (d.chance(0.7)) return 0n;
  return d.pick([() => d.pick(known), () => d.pick(known) | d.pick(known), () => BigInt(d.int(0, 2 ** 31 - 1))])();
}

/** Label values by "<metric>/<label>" and by label, over every metric name (labels tag-encoded: `name=.=value;.;`). */
export function labelValues(names: string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (key: string, v: string) => (out.get(key) ?? out.set(key, new Set()).get(key)!).add(v);
  for (const n of names) {
    const metric = n.replace(/[a-z_]+=\.=.*?;\.;/g, "");
    for (const m of n.matchAll(/([a-z_]+)=\.=(.*?);\.;/g)) {
      add(`${metric}/${m[1]}`, m[2]!);
      add(m[1]!, m[2]!);
    }
  }
  return out;
}

/** Destination names one metric may carry on `{}`: its directory's cap (100) plus "other" and "unknown". */
const MAX_DESTINATIONS = 102;
/** The response_flags values service-metrics reports (its README omits DR, which the code emits). */
const FLAG_LABELS = new Set(["-", "UT", "UR", "UF", "UC", "UO", "UH", "NR", "LR", "DC", "URX", "DR", "other"]);
/**
 * response_code values: the 43 codes service-metrics reports as themselves, the five classes (any other code in
 * 100..599), "0" (no response) and "other" (outside 100..599).
 */
const MAX_CODE_LABELS = 43 + 5 + 2;
const CODE_LABEL = /^(0|other|[1-5]xx|[1-5][0-9][0-9])$/;

/** Every metric's destination_service values within its directory's cap; response codes and flags in their sets. */
export function assertBoundedLabels(names: string[]): void {
  const labels = labelValues(names);
  for (const [key, values] of labels) {
    if (key.endsWith("/destination_service")) assert.ok(values.size <= MAX_DESTINATIONS, `${key}: ${values.size} values (bound ${MAX_DESTINATIONS})`);
  }
  const codes = labels.get("response_code") ?? new Set<string>();
  assert.deepEqual([...codes].filter((c) => !CODE_LABEL.test(c)), [], "response_code labels outside the documented set");
  assert.ok(codes.size <= MAX_CODE_LABELS, `${codes.size} response_code values (bound ${MAX_CODE_LABELS})`);
  assert.deepEqual([...(labels.get("response_flags") ?? [])].filter((f) => !FLAG_LABELS.has(f)), [], "undocumented response_flags labels");
}
