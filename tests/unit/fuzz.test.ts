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
import { assertBoundedLabels, Dice, headerSet, prng, responseFlags, seedFor, SERVICES } from "../fuzz/input.js";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) >>> 0;
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000);
console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} repeats this run), ${REQUESTS} requests per module`);

const MODULES = ["service-metrics", "deadline", "traffic-split", "outlier-breaker", "retry-budget", "resilience"];
/**
 * All series of one module. With every label bounded (destinations above, codes 0 or 100..599, the flag set), what
 * 10,000 requests define is bounded by what they hit: the worst run seen defines ~2,300; a series leaked per request
 * (an unbounded label) shows as thousands more.
 */
const MAX_SERIES = 5_000;
/** Shared-data keys: no delete in ABI 0.2.1, so every table is fixed: three directories (labels, budgets, breakers) of 100 entries, each with a record, an overflow and a header, plus a few fixed keys. */
const MAX_SHARED_KEYS = 3 * (100 + 2) + 16;

for (const name of MODULES) {
  const wasm = fileURLToPath(new URL(`../../build/${name}.wasm`, import.meta.url));
  describe(`${name}.wasm under ${REQUESTS} random header sets (seed ${SEED})`, () => {
    test("every request is answered, nothing traps, series and shared keys stay bounded", () => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
      const d = new Dice(prng(seedFor(SEED, name)));
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
      const keys = host.sharedDataStore.keys("resilience").length;
      console.log(`fuzz ${name}: ${REQUESTS} requests, ${replies} local replies, ${resets} client resets, ${series} metric series, ${keys} shared-data keys`);
      assertBoundedLabels(names);
      assert.ok(series <= MAX_SERIES, `${series} metric series (bound ${MAX_SERIES})`);
      assert.ok(keys <= MAX_SHARED_KEYS, `${keys} shared-data keys (bound ${MAX_SHARED_KEYS})`);
    });
  });
}
