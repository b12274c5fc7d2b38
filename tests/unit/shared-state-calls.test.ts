// Host calls per request on the shared-state path (issue 11), in the emulator with two workers: outlier-breaker and
// retry-budget alone and in the combined module, on `{}`. The shared-data and metric-read calls are counted exactly
// (they are what this path decides); the whole request's calls have a ceiling, so either count going up fails here.
// Needs `node build/build.mjs outlier-breaker retry-budget resilience` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, prop, type Vm } from "../emulator/index.js";

type Calls = Record<string, number>;

const total = (c: Calls) => Object.values(c).reduce((a, b) => a + b, 0);
/** The calls reading or writing state other workers share: shared data, and the breaker's changes counter. */
const shared = (c: Calls) => ({
  get: c.proxy_get_shared_data ?? 0,
  set: c.proxy_set_shared_data ?? 0,
  metricRead: c.proxy_get_metric ?? 0,
});

function start(file: string, rootId: string) {
  const wasm = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`node build/build.mjs ${rootId}\` first`);
  const host = new Host({ vmId: "resilience" });
  const vms = host.startVms(wasm, 2, { pluginConfig: "{}", pluginName: rootId, rootId });
  /** One routed request answered `status` after `attempts` attempts; its host calls. */
  const one = (vm: Vm, status: number, attempts = 1): Calls => {
    const s = vm.newStream({ properties: { "xds.cluster_name": "a.svc", "upstream.request_attempt_count": prop.uint(attempts) } });
    s.requestHeaders({ ":authority": "a.svc", ":path": "/", ":method": "GET" }, true);
    host.clock.advanceMs(1);
    if (s.requestForwarded) {
      s.setProperty("response.code", BigInt(status));
      s.responseHeaders({ ":status": String(status) }, true);
    }
    s.finish();
    return s.hostCallCount;
  };
  // Warm both workers (breakers, budgets, series met), let the ticks run, then measure on worker 0.
  for (let i = 0; i < 3; i++) { one(vms[0]!, 200); one(vms[1]!, 200); }
  host.advanceMs(2000);
  for (let i = 0; i < 3; i++) one(vms[0]!, 200);
  return { host, vms, one };
}

interface Expected {
  success: { shared: ReturnType<typeof shared>; max: number };
  firstFailure: { shared: ReturnType<typeof shared>; max: number };
  failure: { shared: ReturnType<typeof shared>; max: number };
}

// Before issue 11 (same tree, emulator): breaker 10 calls (2 gets + 1 set) on success and failure alike; combined 23
// on success (2 gets + 1 set), 24 on a first failure.
const CASES: Array<[string, string, Expected]> = [
  ["outlier-breaker.wasm", "outlier-breaker", {
    success: { shared: { get: 0, set: 0, metricRead: 1 }, max: 8 },
    firstFailure: { shared: { get: 1, set: 1, metricRead: 1 }, max: 11 },
    failure: { shared: { get: 1, set: 1, metricRead: 1 }, max: 10 },
  }],
  ["retry-budget.wasm", "retry-budget", {
    success: { shared: { get: 0, set: 0, metricRead: 0 }, max: 9 },
    firstFailure: { shared: { get: 0, set: 0, metricRead: 0 }, max: 9 },
    // Two failures in: the grant's reservation reaches 0.1 retries, so it is decided and reserved in shared data.
    failure: { shared: { get: 1, set: 1, metricRead: 0 }, max: 11 },
  }],
  ["resilience.wasm", "resilience", {
    success: { shared: { get: 0, set: 0, metricRead: 1 }, max: 21 },
    firstFailure: { shared: { get: 1, set: 1, metricRead: 1 }, max: 25 },
    failure: { shared: { get: 2, set: 2, metricRead: 1 }, max: 23 },
  }],
];

describe("host calls per request on the shared-state path", () => {
  for (const [file, rootId, want] of CASES) {
    test(`${file}: a success on a closed, quiet breaker and a healthy budget touches no shared data`, () => {
      const { vms, one } = start(file, rootId);
      const c = one(vms[0]!, 200);
      assert.deepEqual(shared(c), want.success.shared, JSON.stringify(c));
      assert.ok(total(c) <= want.success.max, `${total(c)} host calls: ${JSON.stringify(c)}`);
    });

    test(`${file}: a breaker's failures are read and CAS-written at completion, a failing budget's grants reserve`, () => {
      const { vms, one } = start(file, rootId);
      const first = one(vms[0]!, 503);
      assert.deepEqual(shared(first), want.firstFailure.shared, JSON.stringify(first));
      assert.ok(total(first) <= want.firstFailure.max, `${total(first)} host calls: ${JSON.stringify(first)}`);
      one(vms[0]!, 503); // the writer's own bump of the changes counter costs it one record read here
      const next = one(vms[0]!, 503);
      assert.deepEqual(shared(next), want.failure.shared, JSON.stringify(next));
      assert.ok(total(next) <= want.failure.max, `${total(next)} host calls: ${JSON.stringify(next)}`);
    });
  }

  test("retry-budget: a retry spent beyond its reservation is shared at completion (one read, one CAS write)", () => {
    const { vms, one } = start("retry-budget.wasm", "retry-budget");
    const c = one(vms[0]!, 503, 2);
    assert.deepEqual(shared(c), { get: 1, set: 1, metricRead: 0 }, JSON.stringify(c));
    assert.ok(total(c) <= 11, `${total(c)} host calls: ${JSON.stringify(c)}`);
  });
});
