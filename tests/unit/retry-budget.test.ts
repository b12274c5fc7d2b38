// retry-budget.wasm (release and debug builds) in the host emulator, on the fake clock: the exact window arithmetic
// (deposits, grants, reservations, withdrawals learned from upstream.request_attempt_count, expiry, adaptive shrink and
// recovery), one budget for two workers, the shared-data layout, headers, metrics, the destination cap and config
// refusal. Needs `npm run build` (or `node build/build.mjs retry-budget`) first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { DEFAULT_START_NS } from "../emulator/clock.js";
import { Host, LogLevel, MetricType, prop, type Stream, type Vm } from "../emulator/index.js";

const PREFIX = "resilience.retry-budget.";
const START_MS = Number(DEFAULT_START_NS / 1_000_000n);

/** One bucket of the shared window (core.ts layout: 28 bytes per slot after an 8-byte header). */
interface Bucket {
  epoch: number;
  requests: number;
  ok: number;
  failed: number;
  retries: number;
}

function decodeWindow(bytes: Uint8Array, bucketMs = 1000): Bucket[] {
  assert.equal(bytes.byteLength, 8 + 28 * 10, "window size");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(v.getUint32(0, true), 0x31574252, "window marker");
  assert.equal(v.getUint32(4, true), bucketMs, "bucket length");
  const out: Bucket[] = [];
  for (let i = 0; i < 10; i++) {
    const p = 8 + i * 28;
    out.push({
      epoch: Number(v.getBigInt64(p, true)),
      requests: v.getUint32(p + 8, true),
      ok: v.getUint32(p + 12, true),
      failed: v.getUint32(p + 16, true),
      retries: Number(v.getBigInt64(p + 20, true)) / 1e6,
    });
  }
  return out;
}

const metric = (dest: string, what: string) => `destination_service=.=${dest};.;resilience_retry_budget_${what}`;

for (const file of ["retry-budget.wasm", "retry-budget.debug.wasm"]) {
  const wasm = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));

  describe(`retry-budget (${file}) on the emulator's fake clock`, () => {
    const start = (config: object | string = {}, workers = 1) => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`node build/build.mjs retry-budget\` first`);
      const host = new Host({ vmId: "resilience" });
      const text = typeof config === "string" ? config : JSON.stringify(config);
      const vms = host.startVms(wasm, workers, { pluginConfig: text, pluginName: "retry-budget", rootId: "retry-budget" });
      /** The shared window of a slot, with bucket epochs relative to the start (0 = the first second). */
      const window = (slot: number | "other" = 0, bucketMs = 1000): Bucket[] => {
        const e = host.sharedData(`${PREFIX}budget.${slot}`);
        assert.ok(e, `no shared window for slot ${slot}`);
        return decodeWindow(e.value, bucketMs)
          .filter((b) => b.epoch >= 0)
          .map((b) => ({ ...b, epoch: b.epoch - START_MS / bucketMs }))
          .sort((a, b) => a.epoch - b.epoch);
      };
      return { host, vms, window };
    };

    /**
     * Request headers only: the request is in flight. Returns the stream and the retries it was granted. The route
     * sends it to the cluster named like its authority (budgets are per routed cluster by default).
     */
    const begin = (vm: Vm, authority = "a.svc", headers: Record<string, string> = {}): { s: Stream; granted: number } => {
      const s = vm.newStream({ properties: { "xds.cluster_name": authority } });
      assert.equal(s.requestHeaders({ ":authority": authority, ":path": "/", ":method": "GET", ...headers }, true), 0);
      return { s, granted: Number(s.requestHeaders().get("x-envoy-max-retries")) };
    };

    /** The router's outcome: `attempts` upstream attempts, the last answered with `code`; then completion. */
    const end = (s: Stream, attempts: number, code: number) => {
      s.setProperty("upstream.request_attempt_count", prop.uint(attempts));
      s.responseHeaders({ ":status": String(code) }, true);
      s.finish();
    };

    /** A whole request making up to `attempts` attempts (fewer when fewer retries were granted); returns the grant. */
    const call = (vm: Vm, attempts: number, code: number, authority = "a.svc"): number => {
      const { s, granted } = begin(vm, authority);
      end(s, Math.min(attempts, granted + 1), code);
      return granted;
    };

    test("each request deposits retryRatio of a retry and a grant is the whole retries held, at most maxRetries", () => {
      const { host, vms, window } = start({ minRetriesPerSecond: 0, adaptive: false });
      const grants = [];
      for (let i = 1; i <= 9; i++) grants.push(call(vms[0]!, 1, 200));
      // 0.2 x D: 0.2 .. 1.8; from the 5th request on one retry is held, from the 10th two.
      assert.deepEqual(grants, [0, 0, 0, 0, 1, 1, 1, 1, 1]);
      assert.equal(call(vms[0]!, 3, 200), 2, "0.2 x 10 = 2 retries held");
      // The two retries made are withdrawn: 0.2 x 11 - 2 = 0.2.
      assert.equal(call(vms[0]!, 1, 200), 0);
      for (let i = 0; i < 8; i++) call(vms[0]!, 1, 200);
      assert.equal(call(vms[0]!, 1, 200), 2, "0.2 x 20 - 2 = 2");
      host.advanceMs(100);
      assert.deepEqual(window(), [{ epoch: 0, requests: 20, ok: 20, failed: 2, retries: 2 }]);
      assert.equal(host.gauge(metric("a.svc", "available_retries")), 2n);
      assert.equal(host.counter(metric("a.svc", "requests_total")), 20n);
      assert.equal(host.counter(metric("a.svc", "retries_total")), 2n);
    });

    test("the minimum allowance gives minRetriesPerSecond per one-second bucket, whatever the ratio holds", () => {
      const { host, vms, window } = start({ retryRatio: 0 });
      const first = [];
      for (let i = 0; i < 7; i++) first.push(call(vms[0]!, 1, 503 /* no retry made */));
      // Before any outcome the whole grant is reserved; after it, q = 1 (every attempt failed): still the whole grant.
      assert.deepEqual(first, [2, 2, 2, 2, 2, 2, 2], "reservations of failed requests that made no retry are given back");
      const spent = [];
      for (let i = 0; i < 7; i++) spent.push(call(vms[0]!, 3, 503));
      assert.deepEqual(spent, [2, 2, 2, 2, 2, 0, 0], "10 retries in this second");
      host.advanceMs(999);
      assert.equal(call(vms[0]!, 1, 503), 0, "still the same bucket at 999 ms");
      host.advanceMs(1);
      assert.equal(call(vms[0]!, 3, 503), 2, "a new bucket at 1000 ms");
      host.advanceMs(100);
      const w = window();
      assert.deepEqual(w.map((b) => [b.epoch, b.requests, b.retries]), [[0, 15, 10], [1, 1, 2]]);
      assert.equal(host.counter(metric("a.svc", "retries_denied_total")), 3n, "failed with 0 of 2 retries granted");
    });

    test("deposits and withdrawals leave the window windowSeconds after their bucket", () => {
      const { host, vms } = start({ minRetriesPerSecond: 0, adaptive: false });
      const available = () => Number(host.gauge(metric("a.svc", "available_retries")));
      for (let i = 0; i < 50; i++) call(vms[0]!, 1, 200); // bucket 0: D = 50
      host.advanceMs(5_000);
      call(vms[0]!, 3, 200); // bucket 5: D = 1, W = 2
      host.advanceMs(100);
      assert.equal(available(), 8, "0.2 x 51 - 2 = 8.2");
      host.advanceMs(4_800); // 9.9 s: bucket 0 is still in the window
      assert.equal(available(), 8);
      host.advanceMs(100); // 10.0 s: bucket 0 left
      assert.equal(available(), 0, "0.2 x 1 - 2 < 0");
      call(vms[0]!, 1, 200);
      host.advanceMs(4_900); // 14.9 s: bucket 5 (and its withdrawal) still counts
      assert.equal(available(), 0, "0.2 x 2 - 2 < 0");
      host.advanceMs(100); // 15.0 s: only the request of bucket 10 is left
      assert.equal(available(), 0, "0.2 x 1 = 0.2");
      for (let i = 0; i < 9; i++) call(vms[0]!, 1, 200);
      host.advanceMs(100);
      assert.equal(available(), 2, "0.2 x 10 with no withdrawal left");
    });

    test("the ratio shrinks with the attempt success ratio and recovers as failed attempts leave the window", () => {
      const { host, vms } = start({ minRetriesPerSecond: 0 });
      const ratio = () => Number(host.gauge(metric("a.svc", "effective_ratio_permille")));
      const available = () => Number(host.gauge(metric("a.svc", "available_retries")));
      for (let i = 0; i < 50; i++) call(vms[0]!, 1, 200);
      for (let i = 0; i < 50; i++) call(vms[0]!, 1, 503);
      host.advanceMs(100);
      assert.equal(ratio(), 100, "0.2 x 50 / 100");
      assert.equal(available(), 10, "0.1 x 100");
      host.advanceMs(4_900);
      // A request that failed after 2 retries counts 3 failed attempts: 50 ok / 103.
      call(vms[0]!, 3, 503);
      host.advanceMs(100);
      assert.equal(ratio(), Math.round((0.2 * 50 / 103) * 1000));
      assert.equal(available(), Math.floor((0.2 * 50 / 103) * 101 - 2));
      for (let i = 0; i < 100; i++) call(vms[0]!, 1, 200);
      host.advanceMs(100);
      assert.equal(ratio(), Math.round((0.2 * 150 / 203) * 1000), "successes return");
      host.advanceMs(4_800); // 10.0 s: bucket 0 (50 ok, 50 failed) left
      assert.equal(ratio(), Math.round((0.2 * 100 / 103) * 1000));
      assert.equal(available(), Math.floor((0.2 * 100 / 103) * 101 - 2));
      host.advanceMs(5_000); // 15.0 s: every failure left
      call(vms[0]!, 1, 200);
      host.advanceMs(100);
      assert.equal(ratio(), 200, "back to retryRatio");
    });

    test("at a fully failing destination only the minimum allowance is left", () => {
      const { host, vms } = start({ minRetriesPerSecond: 4 });
      // 100 requests whose single attempt failed (their grants were given back unused).
      for (let i = 0; i < 100; i++) call(vms[0]!, 1, 503);
      host.advanceMs(100);
      assert.equal(host.gauge(metric("a.svc", "effective_ratio_permille")), 0n);
      assert.equal(host.gauge(metric("a.svc", "available_retries")), 4n, "0 x 100 deposits: the 4 per second allowance only");
      assert.equal(call(vms[0]!, 3, 503), 2);
      assert.equal(call(vms[0]!, 3, 503), 2);
      assert.equal(call(vms[0]!, 3, 503), 0, "4 retries made in this second");
    });

    test("requests in flight reserve their retries, so two workers share one budget", () => {
      const { host, vms, window } = start({ retryRatio: 0 }, 2);
      const inflight = [];
      for (let i = 0; i < 7; i++) inflight.push(begin(vms[i % 2]!));
      assert.deepEqual(inflight.map((r) => r.granted), [2, 2, 2, 2, 2, 0, 0], "10 retries across both workers");
      // Each grant was written to shared data with CAS as it was made.
      assert.equal(window()[0]!.retries, 10);
      for (const r of inflight) end(r.s, r.granted + 1, 503);
      assert.equal(begin(vms[0]!).granted, 0);
      assert.equal(begin(vms[1]!).granted, 0);
      host.advanceMs(1_000);
      assert.equal(begin(vms[1]!).granted, 2, "the next second has its own allowance");
    });

    test("a worker's healthy deposits reach the other worker at the next sync, not per request", () => {
      const { host, vms, window } = start({ minRetriesPerSecond: 0 }, 2);
      for (let i = 0; i < 10; i++) call(vms[0]!, 1, 200);
      assert.equal(host.sharedData(`${PREFIX}budget.0`), undefined, "the deposits are still this worker's own");
      host.resetHostCallCount();
      host.advanceMs(100);
      assert.equal(window()[0]!.requests, 10);
      assert.ok(host.hostCallCount.proxy_set_shared_data! >= 1);
      // The other worker reads them: 0.2 x (10 + 1) = 2.2 -> 2.
      assert.equal(begin(vms[1]!).granted, 2);
    });

    test("a completion with more retries than reserved is shared at once, in the bucket of its grant", () => {
      const { host, vms, window } = start({ minRetriesPerSecond: 0 }, 2);
      for (let i = 0; i < 10; i++) call(vms[0]!, 1, 200);
      host.advanceMs(900);
      const { s, granted } = begin(vms[0]!);
      assert.equal(granted, 2);
      host.clock.advanceMs(300); // the retries happen in the next second; no tick in between
      end(s, 3, 200);
      const w = window();
      // Retries in the grant's bucket (0); the attempt outcomes where they were learned (1).
      assert.deepEqual(w.map((b) => [b.epoch, b.requests, b.retries, b.ok, b.failed]), [[0, 11, 2, 10, 0], [1, 0, 0, 1, 2]]);
      assert.equal(begin(vms[1]!).granted, 0, "0.2 x 12 - 2 < 1, seen by the other worker");
    });

    test("a reservation given back is shared at once, and a worker refusing retries looks again once its copy is 10 ms old", () => {
      const { host, vms, window } = start({ retryRatio: 0, minRetriesPerSecond: 2 }, 2);
      const a = begin(vms[0]!);
      assert.equal(a.granted, 2);
      assert.equal(begin(vms[1]!).granted, 0, "the other worker sees the reservation");
      end(a.s, 1, 200); // no retry needed: 2 retries given back
      assert.equal(window()[0]!.retries, 0, "shared without waiting for the tick");
      assert.equal(begin(vms[1]!).granted, 0, "its copy is fresh (0 ms old): no host call to look again");
      host.clock.advanceMs(10);
      assert.equal(begin(vms[1]!).granted, 2);
    });

    test("a request the router never sent counts no attempt and gives its reservation back", () => {
      const { host, vms, window } = start({ retryRatio: 0 });
      const { s, granted } = begin(vms[0]!);
      assert.equal(granted, 2);
      end(s, 0, 429);
      host.advanceMs(100);
      assert.deepEqual(window(), [{ epoch: 0, requests: 1, ok: 0, failed: 0, retries: 0 }]);
    });

    test("retries granted set retry-on and the count; none granted sets only the count 0", () => {
      const { vms } = start({ retryRatio: 0, minRetriesPerSecond: 2, perTryTimeoutMs: 250 });
      const a = begin(vms[0]!, "a.svc", { "x-envoy-retry-on": "retriable-4xx", "x-envoy-max-retries": "9" });
      assert.equal(a.s.requestHeaders().get("x-envoy-retry-on"), "5xx");
      assert.equal(a.granted, 2);
      assert.equal(a.s.requestHeaders().get("x-envoy-upstream-rq-per-try-timeout-ms"), "250");
      const b = begin(vms[0]!);
      assert.equal(b.granted, 0);
      assert.equal(b.s.requestHeaders().get("x-envoy-retry-on"), undefined);
    });

    test("with retryOn \"\" the filter sets no retry condition and removes the client's, so it only caps the route's policy", () => {
      const { vms } = start({ retryOn: "" });
      const r = begin(vms[0]!, "a.svc", { "x-envoy-retry-on": "5xx", "x-envoy-upstream-rq-per-try-timeout-ms": "5" });
      assert.equal(r.granted, 2);
      assert.equal(r.s.requestHeaders().get("x-envoy-retry-on"), undefined);
      assert.equal(r.s.requestHeaders().get("x-envoy-upstream-rq-per-try-timeout-ms"), undefined);
    });

    test("a per-try timeout an earlier deadline filter set from the caller's budget (published as filter state) is kept", () => {
      const { vms } = start();
      const s = vms[0]!.newStream({ properties: { "xds.cluster_name": "a.svc", resilience_caller_budget_ms: "40" } });
      s.requestHeaders({ ":authority": "a.svc", ":path": "/", ":method": "GET", "x-envoy-upstream-rq-per-try-timeout-ms": "40" }, true);
      assert.equal(s.requestHeaders().get("x-envoy-upstream-rq-per-try-timeout-ms"), "40");
    });

    test("trusted client headers choose the count and conditions, still capped by the budget", () => {
      const { vms } = start({ trustClientHeaders: true, retryRatio: 0, minRetriesPerSecond: 6 });
      const headers = { "x-envoy-retry-on": "gateway-error", "x-envoy-max-retries": "4", "x-envoy-upstream-rq-per-try-timeout-ms": "80" };
      const a = begin(vms[0]!, "a.svc", headers);
      assert.equal(a.granted, 4);
      assert.equal(a.s.requestHeaders().get("x-envoy-retry-on"), "gateway-error");
      assert.equal(a.s.requestHeaders().get("x-envoy-upstream-rq-per-try-timeout-ms"), "80");
      assert.equal(begin(vms[0]!, "a.svc", headers).granted, 2, "6 - 4 left");
      assert.equal(begin(vms[0]!, "a.svc", { "x-envoy-max-retries": "junk" }).granted, 0, "maxRetries (2) wanted, none left");
    });

    test("destinations beyond maxDestinations share one overflow budget, across workers", () => {
      const { host, vms, window } = start({ maxDestinations: 2, retryRatio: 0 }, 2);
      call(vms[0]!, 1, 200, "a.svc");
      call(vms[1]!, 1, 200, "b.svc");
      call(vms[0]!, 1, 200, "c.svc");
      call(vms[1]!, 1, 200, "d.svc");
      call(vms[1]!, 1, 200, "a.svc");
      host.advanceMs(100);
      assert.equal(host.sharedData(`${PREFIX}destinations`)!.text, "a.svc\nb.svc");
      assert.equal(window("other")[0]!.requests, 2);
      assert.equal(window(0)[0]!.requests, 2);
      assert.equal(host.counter(metric("other", "requests_total")), 2n);
      assert.deepEqual(host.metricNames(MetricType.Counter).filter((n) => /[cd]\.svc/.test(n)), []);
      assert.ok(host.logsAt(LogLevel.Info).some((l) => /2 destinations have budgets; later ones share the "other" budget/.test(l.message)));
    });

    test("a request no route sends anywhere gets no budget and takes no slot", () => {
      const { host, vms } = start({ maxDestinations: 2 }, 2);
      for (let i = 0; i < 300; i++) {
        const s = vms[i % 2]!.newStream();
        s.requestHeaders({ ":authority": `made-up-${i}.example`, ":path": "/", ":method": "GET" }, true);
        assert.equal(s.requestHeaders().get("x-envoy-max-retries"), undefined, "no grant for an unrouted request");
        s.setProperty("upstream.request_attempt_count", prop.uint(0));
        s.responseHeaders({ ":status": "404" }, true);
        s.finish();
      }
      host.advanceMs(100);
      assert.equal(host.sharedData(`${PREFIX}destinations`), undefined);
      assert.deepEqual(host.metricNames(MetricType.Counter).filter((n) => n.includes("made-up") || n.includes("unknown")), []);
      call(vms[0]!, 1, 200, "a.svc");
      host.advanceMs(100);
      assert.equal(host.sharedData(`${PREFIX}destinations`)!.text, "a.svc", "the first routed destination takes the first slot");
    });

    test("a timeout of the caller's own budget never lowers the success ratio; the operator's does", () => {
      const { host, vms, window } = start({ minRetriesPerSecond: 0 });
      const timeout = (callerBudgetMs: string | undefined, durationMs: number) => {
        const { s } = begin(vms[0]!);
        if (callerBudgetMs !== undefined) s.setProperty("resilience_caller_budget_ms", callerBudgetMs);
        s.setProperty("upstream.request_attempt_count", prop.uint(1));
        s.setProperty("response.flags", 0x4n); // UT
        host.clock.advanceMs(durationMs);
        s.responseHeaders({ ":status": "504" }, true);
        s.finish();
      };
      for (let i = 0; i < 5; i++) timeout("10", 12);
      host.advanceMs(100);
      assert.deepEqual(window().map((b) => [b.requests, b.ok, b.failed]), [[5, 0, 0]], "neutral: neither ok nor failed");
      timeout(undefined, 30);
      host.advanceMs(100);
      assert.deepEqual(window().map((b) => [b.requests, b.ok, b.failed]), [[6, 0, 1]], "the operator's timeout failed");
    });

    test("with destinationKey cluster, the route's cluster names the budget", () => {
      const { host, vms } = start({ destinationKey: "cluster" });
      for (const authority of ["a.svc", "b.svc"]) {
        const s = vms[0]!.newStream({ properties: { "xds.cluster_name": "outbound|80||shared.svc" } });
        s.requestHeaders({ ":authority": authority, ":path": "/", ":method": "GET" }, true);
        end(s, 1, 200);
      }
      host.advanceMs(100);
      assert.equal(host.counter(metric("outbound_80__shared.svc", "requests_total")), 2n);
      assert.equal(host.sharedData(`${PREFIX}destinations`)!.text, "outbound|80||shared.svc");
    });

    test("a warmed-up worker grants retries to a healthy destination with few host calls and no shared-data call", () => {
      const { vms } = start();
      for (let i = 0; i < 3; i++) call(vms[0]!, 1, 200);
      const { s } = begin(vms[0]!);
      end(s, 1, 200);
      const calls = s.hostCallCount;
      assert.equal(calls.proxy_get_shared_data, undefined);
      assert.equal(calls.proxy_set_shared_data, undefined);
      assert.equal(calls.proxy_define_metric, undefined);
      assert.equal(calls.proxy_increment_metric, undefined, "counters are added on the tick");
      // Budgets are per routed cluster by default (issue 10): the cluster is a property, not the :authority header,
      // and the outcome's cause reads the flags too.
      // A per-try timeout is looked for before it is removed (a deadline's, published with it, is kept).
      assert.equal(calls.proxy_get_header_map_value, 1, "only the per-try timeout: the destination is the routed cluster");
      assert.equal(calls.proxy_replace_header_map_value, 2, "retry-on and max-retries");
      assert.equal(calls.proxy_remove_header_map_value, undefined, "no client per-try timeout to remove");
      assert.equal(calls.proxy_get_property, 4, "the cluster, then attempt count, response code and flags");
    });

    const refusals: Array<[string, RegExp]> = [
      ['{"retryRatio": 11}', /field "retryRatio": expected a number between 0 and 10, got 11/],
      ['{"minRetriesPerSecond": "10"}', /field "minRetriesPerSecond": expected a number between 0 and 100000, got "10"/],
      ['{"windowSeconds": 0}', /field "windowSeconds": expected an integer between 1 and 3600, got 0/],
      ['{"maxRetries": 11}', /field "maxRetries": expected an integer between 0 and 10, got 11/],
      ['{"retryOn": "5xx, connect_failure"}', /field "retryOn": unknown retry condition "connect_failure" in "5xx, connect_failure"/],
      ['{"adaptive": "yes"}', /field "adaptive": expected true or false, got "yes"/],
      ['{"syncIntervalMs": 5}', /field "syncIntervalMs": expected an integer between 10 and 10000, got 5/],
      ['{"maxDestinations": 0}', /field "maxDestinations": expected an integer between 1 and 10000, got 0/],
      ['{"ratio": 0.2}', /unknown field "ratio"/],
    ];
    for (const [config, message] of refusals) {
      test(`the configuration ${config} is refused with one critical line naming the field`, () => {
        const host = new Host();
        assert.throws(() => host.startVm(wasm, { pluginConfig: config }), message);
        assert.equal(host.logsAt(LogLevel.Critical).length, 1);
      });
    }

    test("an empty configuration takes every default", () => {
      const { host, vms } = start("");
      const r = begin(vms[0]!);
      assert.equal(r.granted, 2);
      assert.equal(r.s.requestHeaders().get("x-envoy-retry-on"), "5xx");
      end(r.s, 1, 200);
      host.advanceMs(100);
      assert.equal(host.gauge(metric("a.svc", "effective_ratio_permille")), 200n);
      assert.equal(host.gauge(metric("a.svc", "available_retries")), 10n, "max(0.2 x 1, 10)");
    });
  });
}
