// Random header sets through every module (the five filters and the combined one, each on `{}`, two workers) in the
// strict host emulator: hostile methods, authorities (case, ports, dots, unicode, 4 KiB), paths, every header a filter
// reads (deadline sources with malformed grpc-timeout, request ids, x-envoy-* retry and timeout headers, routing and
// fallback headers, content types), response codes 100..999 (60% 200, so breakers are not always open), response flags, attempt counts, client resets, and time
// moving on (ticks fire). Asserted: every request is answered (continues or gets a local reply), no trap and no host
// misuse (the emulator is strict), metric series and shared-data keys stay within a bound derived from the caps.
// FUZZ_SEED=<n> repeats a run; FUZZ_REQUESTS=<n> changes the count (default 10,000 per module).
// Needs `npm run build` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FilterHeadersStatus, Host, MetricType, prop, type Vm } from "../emulator/index.js";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) >>> 0;
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000);
console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} repeats this run), ${REQUESTS} requests per module`);

/** Mulberry32: small, seeded, so a failing run repeats exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

const SERVICES = ["checkout", "inventory", "payments", "svc-a", "svc-b"];

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
    ":method": d.pick(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "get", d.token(7).toUpperCase()]),
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
  return d.pick([() => 0n, () => 0n, () => d.pick(known), () => d.pick(known) | d.pick(known), () => BigInt(d.int(0, 2 ** 31 - 1))])();
}

const MODULES = ["service-metrics", "deadline", "traffic-split", "outlier-breaker", "retry-budget", "resilience"];
/** Destination names one metric may carry on `{}`: its directory's cap (100) plus "other" and "unknown". */
const MAX_DESTINATIONS = 102;
/** The response_flags values service-metrics reports (its README omits DR, which the code emits). */
const FLAG_LABELS = new Set(["-", "UT", "UR", "UF", "UC", "UO", "UH", "NR", "LR", "DC", "URX", "DR", "other"]);
/**
 * All series of one module. With every label bounded (destinations above, codes 0 or 100..599, the flag set), what
 * 10,000 requests define is bounded by what they hit: the worst run seen defines ~2,300; a series leaked per request
 * (an unbounded label) shows as thousands more.
 */
const MAX_SERIES = 5_000;
/** Shared-data keys: no delete in ABI 0.2.1, so every table is fixed: three directories (labels, budgets, breakers) of 100 entries, each with a record, an overflow and a header, plus a few fixed keys. */
const MAX_SHARED_KEYS = 3 * (100 + 2) + 16;

/**
 * response_code values: the 43 codes service-metrics reports as themselves, the five classes (any other code in
 * 100..599), "0" (no response) and "other" (outside 100..599).
 */
const MAX_CODE_LABELS = 43 + 5 + 2;
const CODE_LABEL = /^(0|other|[1-5]xx|[1-5][0-9][0-9])$/;

/** Label values by "<metric>/<label>" and by label, over every metric name (labels tag-encoded: `name=.=value;.;`). */
function labelValues(names: string[]): Map<string, Set<string>> {
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

for (const name of MODULES) {
  const wasm = fileURLToPath(new URL(`../../build/${name}.wasm`, import.meta.url));
  describe(`${name}.wasm under ${REQUESTS} random header sets (seed ${SEED})`, () => {
    test("every request is answered, nothing traps, series and shared keys stay bounded", () => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
      const d = new Dice(prng(SEED ^ name.length * 0x9e3779b1));
      const host = new Host({ vmId: "resilience" });
      const vms: Vm[] = host.startVms(wasm, 2, { pluginConfig: "{}", pluginName: name, rootId: name });
      let replies = 0;
      let resets = 0;
      for (let i = 0; i < REQUESTS; i++) {
        const vm = d.pick(vms);
        const headers = headerSet(d);
        const s = vm.newStream({
          properties: {
            "xds.cluster_name": d.chance(0.8) ? d.pick(SERVICES) : d.token(d.int(1, 20)),
            "xds.route_name": "fuzz",
            "upstream.request_attempt_count": prop.uint(d.int(0, 6)),
          },
        });
        const where = `request ${i} (seed ${SEED}): ${JSON.stringify(headers).slice(0, 300)}`;
        const status = s.requestHeaders(headers, d.chance(0.7));
        if (s.localReply) {
          replies++;
        } else {
          assert.equal(status, FilterHeadersStatus.Continue, `${where}: neither continued nor answered`);
          if (d.chance(0.1)) {
            resets++;
            s.setProperty("response.flags", d.pick([0x10000000n, 0x4000n]));
          } else {
            s.setProperty("response.flags", responseFlags(d));
            s.responseHeaders({ ":status": String(d.chance(0.6) ? 200 : d.int(100, 999)), "content-type": d.pick(["application/grpc", "text/plain"]) }, d.chance(0.8));
          }
        }
        if (d.chance(0.05)) host.advanceMs(d.int(0, 3_000));
        else host.clock.advanceMs(d.int(0, 20));
        s.finish();
        for (const v of vms) assert.equal(v.failed, undefined, `${where}: VM ${v.index} failed`);
      }
      host.advanceMs(5_000);
      const names = [MetricType.Counter, MetricType.Gauge, MetricType.Histogram].flatMap((t) => host.metricNames(t));
      const series = names.length;
      const labels = labelValues(names);
      const keys = host.sharedDataStore.keys("resilience").length;
      console.log(`fuzz ${name}: ${REQUESTS} requests, ${replies} local replies, ${resets} client resets, ${series} metric series, ${keys} shared-data keys`);
      for (const [key, values] of labels) {
        if (key.endsWith("/destination_service")) assert.ok(values.size <= MAX_DESTINATIONS, `${key}: ${values.size} values (bound ${MAX_DESTINATIONS})`);
      }
      const codes = labels.get("response_code") ?? new Set<string>();
      assert.deepEqual([...codes].filter((c) => !CODE_LABEL.test(c)), [], "response_code labels outside the documented set");
      assert.ok(codes.size <= MAX_CODE_LABELS, `${codes.size} response_code values (bound ${MAX_CODE_LABELS})`);
      assert.deepEqual([...(labels.get("response_flags") ?? [])].filter((f) => !FLAG_LABELS.has(f)), [], "undocumented response_flags labels");
      assert.ok(series <= MAX_SERIES, `${series} metric series (bound ${MAX_SERIES})`);
      assert.ok(keys <= MAX_SHARED_KEYS, `${keys} shared-data keys (bound ${MAX_SHARED_KEYS})`);
    });
  });
}
