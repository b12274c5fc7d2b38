// Host calls and VM entries per request, counted exactly in the emulator for the request the benchmarks serve (a GET
// with a Host header, answered 200 with a 2-byte body), after warm-up: a change that adds a call or an entry on the
// common path fails here. Per filter README "Host calls per request" quotes these figures. Needs `npm run build` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { allocationsPerRequest, callsPerRequest } from "../bench/lib.js";

/** Counts per request for `module` (config `{}`) over 20 warm requests after 50 (the benchmark's own counter). */
async function perRequest(module: string, cluster: string | undefined): Promise<{ calls: Record<string, number>; entries: Record<string, number> }> {
  const wasm = fileURLToPath(new URL(`../../build/${module}.wasm`, import.meta.url));
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
  return callsPerRequest(wasm, module, "{}", { authority: "service-a", cluster }, 50, 20);
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

describe("host calls and VM entries per request (emulator, config {})", () => {
  test("service-metrics: 6 calls, no clock, no counter update (summed per worker, flushed on the tick)", async () => {
    const p = await perRequest("service-metrics", "service-a");
    assert.deepEqual(p.calls, { proxy_get_header_map_value: 1, proxy_get_property: 4, proxy_record_metric: 1 });
    assert.deepEqual(p.entries, {
      proxy_on_context_create: 1, proxy_on_request_headers: 1, malloc: 5, proxy_on_log: 1, proxy_on_delete: 1,
    });
  });

  // Three source headers read in one pairs call (assembly/stream.ts BATCH_FROM_READS); request.time only when a budget
  // applies (none here: no incoming header, no operator default).
  test("deadline: one clock read, the source headers in one call, no request.time; no entry at response or completion work", async () => {
    const p = await perRequest("deadline", "service-a");
    assert.deepEqual(p.calls, { proxy_get_current_time_nanoseconds: 1, proxy_get_header_map_pairs: 1 });
    assert.deepEqual(p.entries, {
      proxy_on_context_create: 1, proxy_on_request_headers: 1, malloc: 1, proxy_on_log: 1, proxy_on_delete: 1,
    });
  });

  // Allocations per request, counted at the allocator of the module built with names. Nothing for the stream itself: a
  // root pools the contexts of ended streams (context, view, header arrays, stage list) and renews their stages' streams
  // from a stream that never served (assembly/stage.ts). Nothing per returned value (Envoy's malloc gets a static
  // block), per header write (values are encoded into a static block), per routing write or per repeated value. What
  // is left: deadline, alone or in the combined module, copies the request headers it reads in one pairs call and
  // decodes x-request-id, a new value on every request. A change that allocates more on the common path fails here.
  const EXPECTED: Record<string, number> = {
    "retry-budget": 0, "outlier-breaker": 0, deadline: 2, "traffic-split": 0, "service-metrics": 0, resilience: 2,
  };
  for (const [module, expected] of Object.entries(EXPECTED)) {
    test(`${module}: ${expected} allocations per request`, async () => {
      const debug = fileURLToPath(new URL(`../../build/${module}.debug.wasm`, import.meta.url));
      if (!existsSync(debug)) throw new Error(`${debug} is missing: run \`npm run build\` first`);
      for (const cluster of [undefined, "service-a"]) {
        const a = await allocationsPerRequest(debug, module, "{}", { authority: "service-a", cluster }, 50, 50);
        // The fraction: the registry's map of live streams re-laying its entries now and then.
        assert.ok(a <= expected + 0.5, `${module} ${cluster ? "proxied" : "direct"}: ${a} allocations per request, at most ${expected}`);
      }
    });
  }

  // Bounds at today's counts: an added call or entry on the common path fails here.
  for (const [path, cluster, maxCalls, maxMalloc] of [["direct_response", undefined, 10, 5], ["proxied", "service-a", 12, 6]] as const) {
    test(`the combined module, ${path}: one clock read, no counter update, no on_done`, async () => {
      const p = await perRequest("resilience", cluster);
      // On request headers only: at completion the time is request start + request.duration (service-metrics reads
      // it), and on response headers no stream asks (StageStream.clockOnResponse: the breaker only for a probe, the
      // slow-call rule or its upstream chain; the budget never).
      assert.equal(p.calls.proxy_get_current_time_nanoseconds, 1, JSON.stringify(p.calls));
      assert.equal(p.calls.proxy_increment_metric, undefined);
      assert.equal(p.calls.proxy_define_metric, undefined);
      // traffic-split's header write re-selects the route by itself (Envoy, ABI 0.2.1): no clear_route_cache call.
      assert.equal(p.calls.proxy_call_foreign_function, undefined);
      const { malloc, ...callbacks } = p.entries;
      assert.deepEqual(callbacks, {
        proxy_on_context_create: 1, proxy_on_request_headers: 1, proxy_on_response_headers: 1, proxy_on_log: 1, proxy_on_delete: 1,
      });
      assert.ok(total(p.calls) <= maxCalls, `at most ${maxCalls} host calls: ${JSON.stringify(p.calls)}`);
      assert.ok(malloc! <= maxMalloc, `at most ${maxMalloc} malloc re-entries: ${malloc}`);
      console.log(`# combined ${path}: ${total(p.calls)} host calls, ${total(p.entries)} VM entries: ${JSON.stringify(p)}`);
    });
  }
});
