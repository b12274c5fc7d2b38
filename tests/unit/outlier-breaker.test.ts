// outlier-breaker.wasm (release and debug builds) in the host emulator: several workers sharing one breaker record,
// a fake clock for exact state-machine timing (open time, doubling, jitter bounds, window edges), half-open probe
// slots across VMs. Needs `npm run build` (or `node build/build.mjs outlier-breaker`) first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, LogLevel, MetricType, WasmResult, prop, type PropertyValue, type Stream, type Vm } from "../emulator/index.js";

const PREFIX = "resilience.outlier-breaker.";
const STATES = ["closed", "open", "half-open"] as const;

/** The breaker record the filter keeps in shared data (core.ts layout). */
interface BreakerRecord {
  state: (typeof STATES)[number];
  epoch: number;
  consecutive: number;
  reopens: number;
  probesInFlight: number;
  probeSuccesses: number;
  trip: number;
  openUntilMs: number;
  lastProbeMs: number;
  bodyProbesInFlight: number;
  probeGen: number;
  bodyProbeGen: number;
}

function decodeRecord(bytes: Uint8Array): BreakerRecord {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(bytes.byteLength, 72 + 24 * 10, "record size");
  assert.equal(v.getUint32(0, true), 0x4f420002, "record magic");
  return {
    state: STATES[v.getUint32(4, true)]!,
    epoch: v.getUint32(8, true),
    consecutive: v.getUint32(12, true),
    reopens: v.getUint32(16, true),
    probesInFlight: v.getUint32(20, true),
    probeSuccesses: v.getUint32(24, true),
    trip: v.getUint32(28, true),
    openUntilMs: Number(v.getBigInt64(32, true)),
    lastProbeMs: Number(v.getBigInt64(40, true)),
    bodyProbesInFlight: v.getUint32(48, true),
    probeGen: v.getUint32(52, true),
    bodyProbeGen: v.getUint32(56, true),
  };
}

/** Calls counted in the record's window buckets (those still inside the window and not: the test keeps to one window). */
function windowTotal(bytes: Uint8Array): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let n = 0;
  for (let i = 0; i < 10; i++) n += v.getUint32(72 + 24 * i + 8, true);
  return n;
}

const metric = (dest: string, what: string, state?: string) =>
  `destination_service=.=${dest};.;` + (state ? `state=.=${state};.;` : "") + `resilience_outlier_breaker_${what}`;

interface Call {
  authority?: string;
  /** Upstream status; undefined: the stream ends without response headers (reset/timeout, or client gone). */
  status?: number;
  /** Time from request to response headers. */
  latencyMs?: number;
  props?: Record<string, PropertyValue>;
  headers?: Record<string, string>;
}

for (const file of ["outlier-breaker.wasm", "outlier-breaker.debug.wasm"]) {
  const wasm = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));

  describe(`outlier-breaker (${file}) in emulated workers`, () => {
    const start = (config: object | string = {}, workers = 2, seed?: number) => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`node build/build.mjs outlier-breaker\` first`);
      const host = new Host({ randomSeed: seed, vmId: "resilience" });
      const text = typeof config === "string" ? config : JSON.stringify(config);
      const vms = host.startVms(wasm, workers, { pluginConfig: text, pluginName: "outlier-breaker", rootId: "outlier-breaker" });
      const record = (slot = 0) => {
        const e = host.sharedData(`${PREFIX}b.${slot}`);
        assert.ok(e, `no record for slot ${slot}`);
        return decodeRecord(e.value);
      };
      return { host, vms, record };
    };

    /** Request headers only: the stream stays open (a request in flight). */
    const begin = (vm: Vm, c: Call = {}): Stream => {
      // Routed to a cluster named like the authority: breakers are per cluster by default, and only for routed requests.
      const s = vm.newStream({ properties: { "xds.cluster_name": c.authority ?? "a.svc", ...c.props } });
      s.requestHeaders({ ":authority": c.authority ?? "a.svc", ":path": "/", ":method": "GET", ...c.headers }, true);
      return s;
    };

    /** Upstream answer (after latencyMs) and completion of a stream begun with begin(). */
    const end = (host: Host, s: Stream, c: Call = {}) => {
      if (s.requestForwarded) {
        if (c.latencyMs) host.clock.advanceMs(c.latencyMs);
        if (c.status !== undefined) s.responseHeaders({ ":status": String(c.status) }, true);
      }
      s.finish();
      return s;
    };

    /** One whole request; returns the stream (look at requestForwarded and localReply). */
    const call = (host: Host, vm: Vm, c: Call = {}) => end(host, begin(vm, c), { status: 200, ...c });

    const replyHeader = (s: Stream, name: string) => s.localReply?.headers.find(([k]) => k === name)?.[1];

    test("an empty configuration starts with the documented defaults: 5 failures in a row open the breaker", () => {
      const { host, vms, record } = start("");
      for (let i = 0; i < 4; i++) assert.ok(call(host, vms[i % 2]!, { status: 503 }).requestForwarded);
      assert.equal(record().state, "closed");
      assert.equal(record().consecutive, 4);
      assert.ok(call(host, vms[0]!, { status: 503 }).requestForwarded);
      assert.equal(record().state, "open");
      const s = call(host, vms[1]!);
      assert.equal(s.requestForwarded, false);
      assert.equal(s.localReply?.status, 503);
    });

    test("failures alternating between two workers open the breaker after exactly consecutiveFailures", () => {
      const { host, vms, record } = start({ consecutiveFailures: 3, jitter: 0 });
      const t0 = host.clock.nowMs;
      for (let i = 0; i < 3; i++) {
        assert.equal(call(host, vms[i % 2]!, { status: 500 }).requestForwarded, true, `request ${i + 1} reaches the upstream`);
      }
      const r = record();
      assert.equal(r.state, "open");
      assert.equal(r.trip, 1, "tripped by consecutive-failures");
      assert.equal(r.openUntilMs, t0 + 5000);
      assert.equal(host.counter(metric("a.svc", "opens_total")), 1n);
      assert.equal(host.counter(metric("a.svc", "transitions_total", "open")), 1n);
      assert.equal(host.gauge(metric("a.svc", "state")), 1n);
      const lines = host.logsAt(LogLevel.Info).map((l) => l.message).filter((m) => m.includes("a.svc -> open"));
      assert.deepEqual(lines, ["outlier-breaker: a.svc -> open (consecutive-failures) for 5000 ms, open #1"]);
    });

    test("an open breaker answers 503 at once with retry-after, a state header and a details string", () => {
      const { host, vms } = start({ consecutiveFailures: 2, jitter: 0 });
      call(host, vms[0]!, { status: 500 });
      call(host, vms[1]!, { status: 500 });
      host.clock.advanceMs(1);
      const s = begin(vms[0]!);
      assert.equal(s.requestForwarded, false);
      assert.equal(s.localReply?.status, 503);
      assert.equal(s.localReply?.details, "outlier_breaker_open");
      assert.equal(s.localReply?.bodyText, "upstream circuit open\n");
      assert.equal(replyHeader(s, "retry-after"), "5", "4999 ms left rounds up to 5 s");
      assert.equal(replyHeader(s, "x-breaker-state"), "open");
      s.finish();
      host.clock.advanceMs(3998); // 1001 ms left
      assert.equal(replyHeader(call(host, vms[1]!), "retry-after"), "2");
      host.clock.advanceMs(1); // 1000 ms left
      assert.equal(replyHeader(call(host, vms[1]!), "retry-after"), "1");
      assert.equal(host.counter(metric("a.svc", "rejections_total")), 0n, "rejections are counted in memory until the next tick");
      host.tick();
      assert.equal(host.counter(metric("a.svc", "rejections_total")), 3n);
    });

    test("a success between failures resets the consecutive count", () => {
      const { host, vms, record } = start({ consecutiveFailures: 3 });
      for (const status of [500, 500, 200, 500, 500, 404, 500, 500]) call(host, vms[0]!, { status });
      assert.equal(record().state, "closed");
      assert.equal(record().consecutive, 2);
    });

    test("the open time ends exactly after baseOpenMs: the first request then is a probe", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, baseOpenMs: 2000, halfOpenProbes: 1, halfOpenSuccesses: 1 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(1999);
      assert.equal(call(host, vms[1]!).requestForwarded, false, "1 ms before the end: still open");
      host.clock.advanceMs(1);
      const probe = begin(vms[1]!);
      assert.equal(probe.requestForwarded, true, "at the end: a probe goes through");
      assert.equal(record().state, "half-open");
      assert.equal(record().probesInFlight, 1);
      assert.equal(host.counter(metric("a.svc", "probes_total")), 1n);
      end(host, probe, { status: 200 });
      assert.equal(record().state, "closed");
      assert.equal(record().reopens, 0);
      assert.deepEqual(
        STATES.map((s) => host.counter(metric("a.svc", "transitions_total", s))),
        [1n, 1n, 1n],
      );
      assert.equal(host.gauge(metric("a.svc", "state")), 0n);
    });

    test("half-open admits halfOpenProbes concurrent requests across three workers and rejects the rest", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 2, halfOpenSuccesses: 3 }, 3);
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const p1 = begin(vms[0]!);
      const p2 = begin(vms[1]!);
      const extra = begin(vms[2]!);
      assert.deepEqual([p1.requestForwarded, p2.requestForwarded, extra.requestForwarded], [true, true, false]);
      assert.equal(extra.localReply?.details, "outlier_breaker_half_open");
      assert.equal(replyHeader(extra, "x-breaker-state"), "half-open");
      assert.equal(replyHeader(extra, "retry-after"), "1");
      extra.finish();
      assert.equal(record().probesInFlight, 2);
      end(host, p1, { status: 200 });
      assert.equal(record().probesInFlight, 1);
      assert.equal(record().probeSuccesses, 1);
      const p3 = begin(vms[2]!);
      assert.equal(p3.requestForwarded, true, "a finished probe frees its slot for another worker");
      assert.equal(begin(vms[0]!).requestForwarded, false);
      end(host, p2, { status: 200 });
      assert.equal(record().state, "half-open");
      end(host, p3, { status: 200 });
      assert.equal(record().state, "closed", "halfOpenSuccesses (3) successes close it");
      assert.equal(host.counter(metric("a.svc", "transitions_total", "half-open")), 1n, "one worker made the half-open transition");
      assert.equal(host.counter(metric("a.svc", "probes_total")), 3n);
    });

    test("a failed probe re-opens with the open time doubled each time, capped at maxOpenMs", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, baseOpenMs: 1000, maxOpenMs: 5000, halfOpenProbes: 1, halfOpenSuccesses: 1 });
      call(host, vms[0]!, { status: 500 });
      const durations: number[] = [];
      let openedAt = host.clock.nowMs;
      for (let i = 0; i < 5; i++) {
        durations.push(record().openUntilMs - openedAt);
        host.clock.advanceMs(record().openUntilMs - host.clock.nowMs);
        openedAt = host.clock.nowMs;
        assert.equal(call(host, vms[(i + 1) % 2]!, { status: 503 }).requestForwarded, true, `probe ${i + 1}`);
        assert.equal(record().state, "open");
        assert.equal(record().trip, 4, "re-opened by a failed probe");
      }
      assert.deepEqual(durations, [1000, 2000, 4000, 5000, 5000]);
      assert.equal(record().reopens, 5);
      assert.equal(host.counter(metric("a.svc", "opens_total")), 6n);
      // One successful probe closes it and the next opening starts from baseOpenMs again.
      host.clock.advanceMs(5000);
      call(host, vms[0]!, { status: 200 });
      assert.equal(record().state, "closed");
      openedAt = host.clock.nowMs;
      call(host, vms[1]!, { status: 500 });
      assert.equal(record().openUntilMs - openedAt, 1000);
    });

    test("jitter draws each open time from [(1 - jitter) x d, d] and varies between openings", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0.5, baseOpenMs: 10000, maxOpenMs: 40000, halfOpenProbes: 1 }, 2, 7);
      const seen: Record<number, number[]> = { 10000: [], 20000: [], 40000: [] };
      call(host, vms[0]!, { status: 500 });
      let openedAt = host.clock.nowMs;
      for (let i = 0; i < 60; i++) {
        const r = record();
        const d = Math.min(10000 * 2 ** r.reopens, 40000);
        seen[d]!.push(r.openUntilMs - openedAt);
        host.clock.advanceMs(r.openUntilMs - host.clock.nowMs);
        openedAt = host.clock.nowMs;
        // Alternate: a failed probe doubles; after two doublings a success closes and a failure re-opens from base.
        if (r.reopens < 2) {
          call(host, vms[i % 2]!, { status: 500 });
        } else {
          for (let k = 0; k < 3; k++) call(host, vms[k % 2]!, { status: 200 });
          assert.equal(record().state, "closed");
          openedAt = host.clock.nowMs;
          call(host, vms[i % 2]!, { status: 500 });
        }
      }
      for (const [d, list] of Object.entries(seen)) {
        assert.ok(list.length >= 15, `enough openings of ${d} ms`);
        for (const x of list) assert.ok(x >= Number(d) * 0.5 && x <= Number(d), `open time ${x} outside [${Number(d) * 0.5}, ${d}]`);
        assert.ok(new Set(list).size > list.length / 2, `open times of ${d} ms vary: ${list.join(", ")}`);
        const spread = Math.max(...list) - Math.min(...list);
        assert.ok(spread > Number(d) * 0.25, `jitter spreads over the range (${spread} ms for ${d})`);
      }
    });

    test("the failure rate opens the breaker at exactly minimumRequests calls at the threshold", () => {
      const { host, vms, record } = start({ consecutiveFailures: 0, failureRateThreshold: 50, minimumRequests: 20 });
      for (let i = 0; i < 19; i++) call(host, vms[i % 2]!, { status: i % 2 === 0 ? 500 : 200 });
      assert.equal(record().state, "closed", "10 failures of 19 calls: not enough calls yet");
      call(host, vms[1]!, { status: 200 });
      assert.equal(record().state, "open", "10 of 20 = 50%");
      assert.equal(record().trip, 2, "tripped by failure-rate");
    });

    test("a rate below the threshold never opens the breaker", () => {
      const { host, vms, record } = start({ consecutiveFailures: 0, failureRateThreshold: 50, minimumRequests: 20 });
      for (let i = 0; i < 400; i++) call(host, vms[i % 2]!, { status: i % 5 === 0 ? 500 : 200 });
      assert.equal(record().state, "closed");
      assert.equal(host.counter(metric("a.svc", "opens_total")), 0n);
    });

    test("calls leave the sliding window exactly windowSeconds after their bucket began", () => {
      const cfg = { consecutiveFailures: 0, failureRateThreshold: 100, minimumRequests: 20, windowSeconds: 10 };
      for (const [gapMs, opens] of [[9999, true], [10000, false]] as const) {
        const { host, vms, record } = start(cfg);
        for (let i = 0; i < 15; i++) call(host, vms[i % 2]!, { status: 500 });
        host.clock.advanceMs(gapMs);
        for (let i = 0; i < 5; i++) call(host, vms[i % 2]!, { status: 500 });
        assert.equal(record().state, opens ? "open" : "closed", `after a gap of ${gapMs} ms`);
      }
    });

    test("the slow-call rule opens the breaker on calls slower than slowCallMs, even when they succeed", () => {
      const cfg = { consecutiveFailures: 0, failureRateThreshold: 0, slowCallRateThreshold: 50, slowCallMs: 100, minimumRequests: 4 };
      {
        const { host, vms, record } = start(cfg);
        for (let i = 0; i < 8; i++) call(host, vms[i % 2]!, { status: 200, latencyMs: 100 });
        assert.equal(record().state, "closed", "exactly slowCallMs is not slow");
      }
      const { host, vms, record } = start(cfg);
      call(host, vms[0]!, { status: 200, latencyMs: 5 });
      call(host, vms[1]!, { status: 200, latencyMs: 101 });
      call(host, vms[0]!, { status: 200, latencyMs: 5 });
      assert.equal(record().state, "closed");
      call(host, vms[1]!, { status: 200, latencyMs: 250 });
      assert.equal(record().state, "open", "2 slow of 4 = 50%");
      assert.equal(record().trip, 3, "tripped by slow-call-rate");
    });

    test("a slow probe re-opens the breaker when the slow-call rule is on", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, slowCallRateThreshold: 50, slowCallMs: 100, jitter: 0, halfOpenProbes: 1 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      call(host, vms[1]!, { status: 200, latencyMs: 150 });
      assert.equal(record().state, "open");
      assert.equal(record().reopens, 1);
    });

    test("failures are classified by status, failOn classes, failureStatusCodes and response flags", () => {
      const UF = 0x20n;
      const UT = 0x4n;
      const cases: { cfg: object; status?: number; props?: Record<string, PropertyValue>; fails: boolean; why: string }[] = [
        { cfg: {}, status: 500, fails: true, why: "500 with 5xx" },
        { cfg: {}, status: 404, fails: false, why: "404" },
        { cfg: {}, status: 429, fails: false, why: "429 not listed" },
        { cfg: { failureStatusCodes: [429] }, status: 429, fails: true, why: "429 listed" },
        { cfg: { failOn: ["gateway-error"] }, status: 500, fails: false, why: "500 with gateway-error only" },
        { cfg: { failOn: ["gateway-error"] }, status: 504, fails: true, why: "504 with gateway-error" },
        { cfg: { failOn: ["connect-failure"] }, status: 503, props: { "response.flags": UF }, fails: true, why: "UF" },
        { cfg: { failOn: ["timeout"] }, status: 503, props: { "response.flags": UF }, fails: false, why: "UF without connect-failure" },
        { cfg: { failOn: ["timeout"] }, status: 504, props: { "response.flags": UT }, fails: true, why: "UT" },
        { cfg: {}, status: 503, props: { "upstream.request_attempt_count": prop.uint(0) }, fails: false, why: "never sent upstream" },
      ];
      for (const k of cases) {
        const { host, vms, record } = start({ consecutiveFailures: 1, ...k.cfg });
        call(host, vms[0]!, { status: k.status, props: k.props });
        const rec = host.sharedData(`${PREFIX}b.0`) ? record() : undefined;
        assert.equal(rec?.state === "open", k.fails, k.why);
      }
    });

    test("a client that goes away without a response counts for nothing", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1 });
      end(host, begin(vms[0]!), { status: undefined });
      assert.equal(host.sharedData(`${PREFIX}b.0`), undefined, "no outcome was written");
      call(host, vms[0]!, { status: 200 });
      assert.equal(record().state, "closed");
    });

    test("late answers from before a transition never move the breaker", () => {
      const { host, vms, record } = start({ consecutiveFailures: 2, jitter: 0, halfOpenProbes: 2, halfOpenSuccesses: 1 });
      const slowFailure = begin(vms[0]!);
      call(host, vms[1]!, { status: 500 });
      call(host, vms[1]!, { status: 500 });
      assert.equal(record().state, "open");
      end(host, slowFailure, { status: 500 });
      assert.equal(record().epoch, 1, "the closed-epoch failure arriving while open changes nothing");
      host.clock.advanceMs(5000);
      const a = begin(vms[0]!);
      const b = begin(vms[1]!);
      end(host, a, { status: 503 });
      const reopened = record();
      assert.equal(reopened.state, "open");
      end(host, b, { status: 503 });
      assert.deepEqual(record(), reopened, "the second probe's failure belongs to the old epoch: one re-open, one doubling");
      assert.equal(host.counter(metric("a.svc", "opens_total")), 2n);
    });

    test("the breaker's own rejections never count as failures", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenSuccesses: 1 });
      call(host, vms[0]!, { status: 500 });
      for (let i = 0; i < 50; i++) call(host, vms[i % 2]!);
      assert.equal(record().openUntilMs, host.clock.nowMs + 5000);
      host.clock.advanceMs(5000);
      call(host, vms[0]!, { status: 200 });
      assert.equal(record().state, "closed");
      assert.equal(record().reopens, 0);
    });

    test("probes unanswered for probeTimeoutMs give their slots back, and their late answers still count", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 1, probeTimeoutMs: 30000, halfOpenSuccesses: 1 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const lost = begin(vms[0]!);
      assert.equal(lost.requestForwarded, true);
      host.clock.advanceMs(29999);
      assert.equal(call(host, vms[1]!).requestForwarded, false);
      host.clock.advanceMs(1);
      const next = begin(vms[1]!);
      assert.equal(next.requestForwarded, true, "the lost probe's slot is reclaimed");
      assert.deepEqual([record().probesInFlight, record().probeGen, record().epoch], [1, 1, 2], "a new slot generation, the same epoch");
      end(host, lost, { status: 500 });
      // Changed with issue 10: the late answer is the upstream's own, so it counts (it used to be dropped with a new epoch).
      assert.equal(record().state, "open", "the presumed-lost probe's late failure re-opens the breaker");
      assert.equal(record().trip, 4);
      end(host, next, { status: 200 });
      assert.equal(record().state, "open", "the other probe's answer belongs to the old epoch");
    });

    test("a slow but healthy upstream closes the breaker though each probe outlives probeTimeoutMs", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 1, halfOpenSuccesses: 2, probeTimeoutMs: 1000 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const first = begin(vms[0]!);
      host.clock.advanceMs(1000);
      const second = begin(vms[1]!);
      assert.equal(second.requestForwarded, true, "the first probe's slot is reclaimed after 1000 ms");
      assert.equal(begin(vms[0]!).requestForwarded, false, "one probe at a time");
      host.clock.advanceMs(500);
      first.responseHeaders({ ":status": "200" }, true);
      assert.deepEqual([record().state, record().probeSuccesses, record().probesInFlight], ["half-open", 1, 1],
        "the first probe's success counts 1500 ms after it was sent; its old-generation slot frees nothing");
      host.clock.advanceMs(1000);
      second.responseHeaders({ ":status": "200" }, true);
      assert.equal(record().state, "closed", "two slow successes close it");
      first.finish();
      second.finish();
      assert.equal(record().state, "closed");
      assert.equal(host.counter(metric("a.svc", "opens_total")), 1n);
    });

    test("a probe is decided by its response headers: a response body never finished holds no slot", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 1, halfOpenSuccesses: 2 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const p1 = begin(vms[0]!);
      p1.responseHeaders({ ":status": "200" }, false);
      assert.deepEqual([record().probesInFlight, record().probeSuccesses], [0, 1], "decided at the status line");
      const p2 = begin(vms[1]!);
      assert.equal(p2.requestForwarded, true, "the slot is free while p1's body is still streaming");
      p2.responseHeaders({ ":status": "200" }, false);
      assert.equal(record().state, "closed");
      p1.responseBody("late", true);
      p1.finish();
      p2.finish();
      assert.equal(record().state, "closed", "completion does not count a decided probe twice");
      assert.equal(record().consecutive, 0);
      const failing = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 1 });
      call(failing.host, failing.vms[0]!, { status: 500 });
      failing.host.clock.advanceMs(5000);
      const bad = begin(failing.vms[0]!);
      bad.responseHeaders({ ":status": "503" }, false);
      assert.equal(failing.record().state, "open", "a failed probe re-opens at its response headers");
      assert.equal(failing.record().reopens, 1);
      bad.finish();
      assert.equal(failing.record().reopens, 1);
    });

    test("requests whose body the client withholds cannot hog half-open: body-less requests keep their own slots", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 2, halfOpenSuccesses: 2 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const withBody = (vm: Vm) => {
        const s = vm.newStream({ properties: { "xds.cluster_name": "a.svc" } });
        s.requestHeaders({ ":authority": "a.svc", ":path": "/upload", ":method": "POST" }, false);
        return s;
      };
      const slow = [withBody(vms[0]!), withBody(vms[1]!), withBody(vms[0]!)];
      assert.deepEqual(slow.map((s) => s.requestForwarded), [true, true, false], "requests with a body share the halfOpenProbes slots");
      assert.equal(slow[2]!.localReply?.status, 503);
      assert.deepEqual([record().bodyProbesInFlight, record().probesInFlight], [2, 0]);
      const a = begin(vms[1]!);
      const b = begin(vms[0]!);
      assert.deepEqual([a.requestForwarded, b.requestForwarded], [true, true], "body-less requests still probe");
      assert.equal(begin(vms[1]!).requestForwarded, false, "up to halfOpenProbes of them");
      assert.equal(withBody(vms[1]!).requestForwarded, false, "a request with a body waits for a free slot of either pool");
      end(host, a, { status: 200 });
      end(host, b, { status: 200 });
      assert.equal(record().state, "closed", "the upstream recovered: closed while the slow bodies are still held");
      for (const s of slow.slice(0, 2)) {
        s.requestBody("x", false);
        s.finish();
      }
      assert.equal(record().state, "closed");
      assert.equal(record().consecutive, 0, "the withheld requests, ended by their clients, count for nothing");
    });

    test("a probe is classified at its response headers: the caller's own timeout frees the slot, the upstream's reset re-opens", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 1, halfOpenSuccesses: 1 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const own = begin(vms[1]!, { props: { "response.flags": 0x4n, resilience_caller_budget_ms: "200" } });
      host.clock.advanceMs(200);
      own.responseHeaders({ ":status": "504" }, true);
      assert.deepEqual([record().state, record().probesInFlight, record().probeSuccesses], ["half-open", 0, 0],
        "a timeout of the caller's 200 ms budget says nothing about the upstream: neutral, slot freed at once");
      const reset = begin(vms[0]!, { props: { "response.flags": 0x10n } });
      assert.equal(reset.requestForwarded, true, "the freed slot admits the next probe");
      reset.responseHeaders({ ":status": "503" }, true);
      assert.equal(record().state, "open", "an upstream reset (UR) answered by Envoy's 503 re-opens at response headers");
      assert.equal(record().reopens, 1);
      own.finish();
      reset.finish();
      assert.equal(record().reopens, 1);
    });

    test("a client withholding bodies cannot trip the breaker: unanswered probes are neutral, their slots come back", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, halfOpenProbes: 2, halfOpenSuccesses: 1, probeTimeoutMs: 10000 });
      call(host, vms[0]!, { status: 500 });
      host.clock.advanceMs(5000);
      const held: Stream[] = [];
      for (let round = 0; round < 3; round++) {
        for (let k = 0; k < 2; k++) {
          const s = vms[k]!.newStream({ properties: { "xds.cluster_name": "a.svc" } });
          s.requestHeaders({ ":authority": "a.svc", ":path": "/", ":method": "POST" }, false);
          assert.equal(s.requestForwarded, true, `round ${round}: the slots came back after probeTimeoutMs`);
          held.push(s);
        }
        const s = vms[0]!.newStream({ properties: { "xds.cluster_name": "a.svc" } });
        s.requestHeaders({ ":authority": "a.svc", ":path": "/", ":method": "POST" }, false);
        assert.equal(s.requestForwarded, false);
        s.finish();
        host.clock.advanceMs(10000);
      }
      assert.deepEqual([record().state, record().reopens, record().bodyProbeGen, record().epoch], ["half-open", 0, 2, 2]);
      for (const s of held) s.finish(); // clients give up: no response, neutral
      assert.equal(record().state, "half-open", "never tripped by what clients did");
      assert.equal(host.counter(metric("a.svc", "opens_total")), 1n);
      call(host, vms[1]!, { status: 200 });
      assert.equal(record().state, "closed");
    });

    test("with fallbackHeader an open breaker re-routes instead of answering, and fallback calls do not count", () => {
      const { host, vms, record } = start({ consecutiveFailures: 1, jitter: 0, fallbackHeader: "x-breaker-fallback" });
      const forged = call(host, vms[0]!, { headers: { "x-breaker-fallback": "open" } });
      assert.equal(forged.requestHeaders().get("x-breaker-fallback"), undefined, "a client's own fallback header is removed");
      assert.equal(forged.routeCacheClears, 1);
      call(host, vms[0]!, { status: 500 });
      const s = begin(vms[1]!);
      assert.equal(s.requestForwarded, true);
      assert.equal(s.localReply, undefined);
      assert.equal(s.requestHeaders().get("x-breaker-fallback"), "open");
      assert.equal(s.routeCacheClears, 1, "the route is re-selected");
      end(host, s, { status: 500 });
      assert.equal(record().epoch, 1, "the fallback cluster's failure does not touch the breaker");
      assert.equal(host.counter(metric("a.svc", "fallbacks_total")), 1n);
      assert.equal(host.counter(metric("a.svc", "rejections_total")), 0n);
      const closed = call(host, vms[0]!, { authority: "b.svc" });
      assert.equal(closed.routeCacheClears, 0, "no header, no route change while closed");
    });

    test("destinations beyond maxBreakers share one overflow breaker, still guarded, and are counted", () => {
      const { host, vms } = start({ maxBreakers: 2, consecutiveFailures: 1 });
      call(host, vms[0]!, { authority: "a.svc" });
      call(host, vms[1]!, { authority: "b.svc" });
      // Behaviour changed on purpose (issue 10): beyond the cap a destination used to pass unguarded; now the
      // overflow breaker "other" guards it, so its first failure (consecutiveFailures 1) opens it.
      assert.equal(call(host, vms[0]!, { authority: "c.svc", status: 500 }).requestForwarded, true);
      for (let i = 0; i < 4; i++) assert.equal(call(host, vms[i % 2]!, { authority: "c.svc", status: 500 }).requestForwarded, false);
      assert.equal(host.sharedData(`${PREFIX}breakers`)?.text, "a.svc\nb.svc");
      assert.equal(host.counter(metric("other", "untracked_total")), 5n);
      assert.equal(host.counter(metric("other", "opens_total")), 1n);
      assert.deepEqual(host.metricNames(MetricType.Counter).filter((n) => n.includes("c.svc")), []);
      assert.equal(host.sharedData(`${PREFIX}b.2`), undefined);
      assert.ok(host.sharedData(`${PREFIX}b.other`), "the overflow breaker has its own record");
      const later = call(host, vms[0]!, { authority: "d.svc" });
      assert.equal(later.requestForwarded, false, "another destination beyond the cap shares the open overflow breaker");
      assert.equal(later.hostCallCount.proxy_get_shared_data, 1, "a full registry is kept: the overflow record is read, the registry is not");
      assert.equal(call(host, vms[0]!, { authority: "b.svc", status: 500 }).requestForwarded, true);
      assert.equal(call(host, vms[1]!, { authority: "b.svc" }).requestForwarded, false, "b.svc, admitted by the other worker, is guarded");
    });

    test("a request no route sends anywhere creates no breaker and takes no slot", () => {
      const { host, vms } = start({ maxBreakers: 2, consecutiveFailures: 1 });
      for (let i = 0; i < 300; i++) {
        const s = vms[i % 2]!.newStream();
        s.requestHeaders({ ":authority": `made-up-${i}.example`, ":path": "/", ":method": "GET" }, true);
        assert.equal(s.requestForwarded, true);
        s.setProperty("upstream.request_attempt_count", prop.uint(0));
        s.setProperty("response.flags", 0x100n); // NR
        s.responseHeaders({ ":status": "404" }, true);
        s.finish();
      }
      assert.equal(host.sharedData(`${PREFIX}breakers`), undefined);
      assert.equal(host.counter(metric("other", "untracked_total")), 0n);
      assert.deepEqual(host.metricNames(MetricType.Counter).filter((n) => n.includes("made-up")), []);
      assert.equal(call(host, vms[0]!, { authority: "a.svc", status: 500 }).requestForwarded, true);
      assert.equal(call(host, vms[1]!, { authority: "a.svc" }).requestForwarded, false, "the real destination has its own breaker, open");
      assert.equal(host.sharedData(`${PREFIX}breakers`)?.text, "a.svc");
    });

    test("with destinationKey authority, every spelling of one host is one breaker", () => {
      const { host, vms, record } = start({ destinationKey: "authority", consecutiveFailures: 2 });
      call(host, vms[0]!, { authority: "checkout.example.com", status: 500 });
      call(host, vms[1]!, { authority: "Checkout.EXAMPLE.com.:8080", status: 500 });
      assert.equal(record(0).state, "open");
      for (const spelling of ["CHECKOUT.example.com", "checkout.example.com:443", "checkout.example.com.", "checkout.example.com"]) {
        assert.equal(call(host, vms[0]!, { authority: spelling }).requestForwarded, false, spelling);
      }
      assert.equal(host.sharedData(`${PREFIX}breakers`)?.text, "checkout.example.com");
    });

    test("timeouts of the caller's own budget never open the breaker; the operator's do", () => {
      const { host, vms, record } = start({ consecutiveFailures: 2 });
      const timeout = (vm: Vm, props: Record<string, PropertyValue>, ms: number) => {
        const s = begin(vm, { props: { ...props, "response.flags": 0x4n } });
        host.clock.advanceMs(ms);
        s.responseHeaders({ ":status": "504" }, true);
        s.finish();
        return s;
      };
      for (let i = 0; i < 12; i++) timeout(vms[i % 2]!, { resilience_caller_budget_ms: "10" }, 12);
      assert.equal(host.sharedData(`${PREFIX}b.0`), undefined, "neutral outcomes write nothing: the breaker stays closed");
      assert.equal(call(host, vms[0]!).requestForwarded, true);
      // A huge caller budget does not hide a timeout the operator's bound made (the request ended long before it).
      for (let i = 0; i < 2; i++) timeout(vms[i % 2]!, { resilience_caller_budget_ms: "15000" }, 1000);
      assert.equal(record().state, "open");
    });

    test("a request re-routed by a header change is guarded by the breaker of the cluster it goes to, once a completed one taught it", () => {
      // Envoy names the first route's cluster until its router re-selects the route; at completion the final one.
      const { host, vms } = start({ fallbackHeader: "x-breaker-fallback", consecutiveFailures: 2 }, 1);
      const forged = (status: number) => {
        const s = vms[0]!.newStream({ properties: { "xds.cluster_name": "fallback" } });
        s.requestHeaders({ ":authority": "a.svc", ":path": "/", ":method": "GET", "x-breaker-fallback": "open" }, true);
        const sent = s.requestHeaders().get("x-breaker-fallback");
        s.setProperty("xds.cluster_name", "a.svc");
        s.setProperty("upstream.request_attempt_count", prop.uint(1));
        s.responseHeaders({ ":status": String(status) }, true);
        s.finish();
        return sent;
      };
      assert.equal(forged(500), undefined, "the client's header is removed; the cluster is not known on request yet");
      assert.equal(host.sharedData(`${PREFIX}breakers`)?.text, "a.svc", "at completion its failure counted for a.svc, not for the first route's cluster");
      call(host, vms[0]!, { authority: "a.svc", status: 500 });
      assert.equal(begin(vms[0]!, { authority: "a.svc" }).requestHeaders().get("x-breaker-fallback"), "open", "two failures in a row: open, re-routed");
      assert.equal(forged(500), "open", "now known on request: the forged request meets a.svc's open breaker and is re-routed to the fallback");
      assert.equal(host.sharedData(`${PREFIX}breakers`)?.text, "a.svc");
    });

    test("each destination has its own breaker", () => {
      const { host, vms, record } = start({ consecutiveFailures: 2 });
      call(host, vms[0]!, { authority: "a.svc", status: 500 });
      call(host, vms[1]!, { authority: "b.svc", status: 200 });
      call(host, vms[1]!, { authority: "a.svc", status: 500 });
      assert.equal(record(0).state, "open");
      assert.equal(record(1).state, "closed");
      assert.equal(call(host, vms[0]!, { authority: "b.svc" }).requestForwarded, true);
    });

    test("ticks keep the state gauge current, showing half-open once the open time is over", () => {
      const { host, vms } = start({ consecutiveFailures: 1, jitter: 0, baseOpenMs: 2500 });
      call(host, vms[0]!, { status: 500 });
      host.advanceMs(1000);
      assert.equal(host.gauge(metric("a.svc", "state")), 1n);
      host.advanceMs(2000);
      assert.equal(host.gauge(metric("a.svc", "state")), 2n);
    });

    test("perHost keys breakers by the upstream host known on request, as in an upstream filter chain", () => {
      const { host, vms, record } = start({ perHost: true, consecutiveFailures: 2, jitter: 0 });
      const at = (addr: string) => ({ "upstream.address": addr });
      // Envoy runs no on_log for upstream filters: outcomes come from response headers, or the stream's end without them.
      for (const vm of vms) {
        const s = begin(vm, { props: at("10.0.0.1:80") });
        s.responseHeaders({ ":status": "503" }, true);
        s.done();
      }
      const reset = begin(vms[0]!, { props: at("10.0.0.2:80") });
      reset.done();
      const other = begin(vms[1]!, { props: at("10.0.0.3:80") });
      other.responseHeaders({ ":status": "200" }, true);
      other.done();
      assert.equal(host.sharedData(`${PREFIX}breakers`)?.text, "a.svc@10.0.0.1:80\na.svc@10.0.0.2:80\na.svc@10.0.0.3:80");
      assert.deepEqual([record(0).state, record(1).consecutive, record(2).consecutive], ["open", 1, 0]);
      const rejected = begin(vms[1]!, { props: at("10.0.0.1:80") });
      assert.equal(rejected.localReply?.status, 503);
      assert.equal(begin(vms[1]!, { props: at("10.0.0.3:80") }).requestForwarded, true);
      assert.equal(host.counter(metric("a.svc_10.0.0.1:80", "opens_total")), 1n);
    });

    test("perHost where no host is known on request warns once and lets requests pass", () => {
      const { host, vms } = start({ perHost: true, consecutiveFailures: 1 });
      for (let i = 0; i < 3; i++) assert.equal(call(host, vms[0]!, { status: 500 }).requestForwarded, true);
      const warnings = host.logsAt(LogLevel.Warn).filter((l) => l.message.includes("perHost"));
      assert.equal(warnings.length, 1);
      assert.equal(host.sharedData(`${PREFIX}breakers`), undefined);
    });

    // Changed with issue 11: a closed breaker costs one metric read on request (it read the record: 1 get), and a success
    // on a quiet one nothing at completion (it read + CAS-wrote the record: 1 get, 1 set); other outcomes still do.
    test("a warmed-up worker passes a quiet closed breaker's successes with one metric read and no shared-data call", () => {
      const { host, vms, record } = start({ consecutiveFailures: 4 });
      call(host, vms[0]!);
      const closed = call(host, vms[0]!).hostCallCount;
      assert.equal(closed.proxy_get_metric, 1, "the changes counter, on request");
      assert.equal(closed.proxy_get_shared_data, undefined);
      assert.equal(closed.proxy_set_shared_data, undefined);
      assert.equal(closed.proxy_increment_metric, undefined);
      assert.equal(closed.proxy_define_metric, undefined);
      const closedTotal = Object.values(closed).reduce((a, b) => a + b, 0);
      assert.ok(closedTotal <= 8, `closed: ${closedTotal} host calls ${JSON.stringify(closed)}`);
      const first = call(host, vms[0]!, { status: 500 }).hostCallCount;
      assert.deepEqual([first.proxy_get_metric, first.proxy_get_shared_data, first.proxy_set_shared_data, first.proxy_increment_metric], [1, 1, 1, 1],
        "a first failure: read and CAS-write at completion, then the changes counter bumped for the other workers");
      const second = call(host, vms[0]!, { status: 500 }).hostCallCount;
      assert.deepEqual([second.proxy_get_metric, second.proxy_get_shared_data, second.proxy_set_shared_data, second.proxy_increment_metric], [1, 2, 1, undefined],
        "its own bump makes the writer read the record once on request");
      const third = call(host, vms[0]!, { status: 500 }).hostCallCount;
      assert.deepEqual([third.proxy_get_metric, third.proxy_get_shared_data, third.proxy_set_shared_data, third.proxy_increment_metric], [1, 1, 1, undefined],
        "closed at the counter's value: no read on request; read + CAS write at completion, no bump");
      const success = call(host, vms[0]!).hostCallCount;
      assert.deepEqual([success.proxy_get_metric, success.proxy_get_shared_data, success.proxy_set_shared_data], [1, 1, 1], "a success resetting the count is written at once");
      assert.equal(record().consecutive, 0);
      for (let i = 0; i < 4; i++) call(host, vms[0]!, { status: 500 });
      assert.equal(record().state, "open");
      const open = call(host, vms[0]!).hostCallCount;
      assert.equal(open.proxy_get_metric, 1);
      assert.equal(open.proxy_get_shared_data, 1);
      assert.equal(open.proxy_set_shared_data, undefined);
      assert.equal(open.proxy_send_local_response, 1);
      assert.equal(open.proxy_increment_metric, undefined, "the rejection counter is flushed on ticks");
      const openTotal = Object.values(open).reduce((a, b) => a + b, 0);
      assert.ok(openTotal <= 7, `open: ${openTotal} host calls ${JSON.stringify(open)}`);
    });

    test("a worker whose view of the breaker was quiet refuses at once when another worker opens it, with no tick between", () => {
      const { host, vms, record } = start({ consecutiveFailures: 2, jitter: 0 });
      for (let i = 0; i < 3; i++) assert.ok(call(host, vms[1]!).requestForwarded);
      assert.equal(call(host, vms[1]!).hostCallCount.proxy_get_shared_data, undefined, "worker 1 passes on its quiet view");
      call(host, vms[0]!, { status: 500 });
      call(host, vms[0]!, { status: 500 });
      assert.equal(record().state, "open");
      const s = call(host, vms[1]!);
      assert.equal(s.requestForwarded, false, "the changes counter moved: worker 1 reads the record and refuses");
      assert.equal(s.localReply?.status, 503);
    });

    test("a success on another worker resets the consecutive count once a failure was written", () => {
      const { host, vms, record } = start({ consecutiveFailures: 2 });
      call(host, vms[1]!);
      call(host, vms[1]!);
      for (let i = 0; i < 3; i++) {
        call(host, vms[0]!, { status: 500 });
        call(host, vms[1]!, { status: 200 });
      }
      assert.equal(record().state, "closed", "failures never came two in a row");
      assert.equal(record().consecutive, 0);
    });

    test("successes counted on a quiet view reach the shared window on the tick and weigh in the failure rate exactly", () => {
      const { host, vms, record } = start({ consecutiveFailures: 0, failureRateThreshold: 50, minimumRequests: 20, windowSeconds: 10 });
      for (let i = 0; i < 12; i++) call(host, vms[1]!);
      const e = () => host.sharedData(`${PREFIX}b.0`)!.value;
      assert.equal(windowTotal(e()), 1, "the first success created the record; 11 wait on worker 1");
      host.advanceMs(1000);
      assert.equal(windowTotal(e()), 12, "merged on worker 1's tick (windowSeconds x 100 ms = 1 s)");
      for (let i = 0; i < 11; i++) call(host, vms[0]!, { status: 500 });
      assert.equal(record().state, "closed", "11 failures of 23 calls: under 50%");
      call(host, vms[0]!, { status: 500 });
      assert.equal(record().state, "open", "12 of 24 = 50%");
      assert.equal(record().trip, 2);
    });

    test("a worker's pending successes go with its next write, and successes of a past epoch are dropped", () => {
      const { host, vms, record } = start({ consecutiveFailures: 3, jitter: 0, halfOpenSuccesses: 1, halfOpenProbes: 1 });
      for (let i = 0; i < 5; i++) call(host, vms[0]!);
      const e = () => host.sharedData(`${PREFIX}b.0`)!.value;
      assert.equal(windowTotal(e()), 1);
      for (let i = 0; i < 2; i++) call(host, vms[1]!);
      assert.equal(windowTotal(e()), 1, "worker 1's successes wait too");
      call(host, vms[0]!, { status: 500 });
      assert.equal(windowTotal(e()), 6, "worker 0's 4 pending successes and the failure in one write");
      for (let i = 0; i < 2; i++) call(host, vms[0]!, { status: 500 });
      assert.equal(record().state, "open");
      host.clock.advanceMs(5000);
      call(host, vms[0]!);
      assert.equal(record().state, "closed");
      host.advanceMs(1000);
      assert.equal(windowTotal(e()), 0, "nothing of the epoch before the opening is merged into the new one");
    });

    test("an update that loses every CAS race is dropped, counted and said once per worker", () => {
      const { host, vms } = start({ consecutiveFailures: 1 });
      call(host, vms[0]!);
      const store = host.sharedDataStore;
      const set = store.set.bind(store);
      let races = 0;
      store.set = (vmId, key, value, cas) => {
        if (key === `${PREFIX}b.0` && cas !== 0) { races++; return WasmResult.CasMismatch; }
        return set(vmId, key, value, cas);
      };
      call(host, vms[0]!, { status: 500 });
      call(host, vms[0]!, { status: 500 });
      assert.equal(races, 16, "8 tries per update");
      assert.equal(host.counter("filter=.=outlier-breaker;.;resilience_shared_update_dropped_total"), 2n);
      const said = host.logsAt(LogLevel.Warn).filter((l) => l.message.includes("CAS races"));
      assert.equal(said.length, 1);
      assert.match(said[0]!.message, /outlier-breaker: an update of shared key resilience\.outlier-breaker\.b\.0 lost 8 CAS races/);
      store.set = set;
      call(host, vms[0]!, { status: 500 });
      assert.equal(call(host, vms[1]!).requestForwarded, false, "the next failure that lands opens it");
    });

    for (const [config, message] of [
      ['{"consecutiveFailure": 3}', /unknown field "consecutiveFailure" \(did you mean "consecutiveFailures"\?\)/],
      ['{"failOn": ["5xx", "teapot"]}', /field "failOn\[1\]": expected one of "5xx", "gateway-error", "reset", "connect-failure", "timeout", got "teapot"/],
      ['{"baseOpenMs": 10000, "maxOpenMs": 5000}', /field "maxOpenMs": must be at least baseOpenMs \(10000\), got 5000/],
      ['{"consecutiveFailures": 0, "failureRateThreshold": 0}', /nothing could open the breaker/],
      ['{"failureRateThreshold": 101}', /field "failureRateThreshold": expected an integer between 0 and 100, got 101/],
      ['{"jitter": -0.1}', /field "jitter": expected a number between 0 and 1, got -0.1/],
      ['{"stateHeader": "X-State"}', /field "stateHeader": expected a lower-case header name \(\[a-z0-9._-\]\), got "X-State"/],
      ['{"failOn": [], "failureStatusCodes": []}', /field "failOn": empty, and no failureStatusCodes/],
      ['{"destinationKey": "header"}', /field "destinationHeader": required when destinationKey is "header"/],
      // Combinations that would misbehave (issue 10): each refused with one line naming every field involved.
      ['{"probeTimeoutMs": 999}', /field "probeTimeoutMs": expected an integer between 1000 and 86400000, got 999/],
      ['{"probeTimeoutMs": 0}', /field "probeTimeoutMs": expected an integer between 1000 and 86400000, got 0/],
      ['{"slowCallRateThreshold": 50, "slowCallMs": 2000, "probeTimeoutMs": 1500}', /field "probeTimeoutMs": must be above slowCallMs \(2000\) while slowCallRateThreshold is set.*got 1500/],
      ['{"slowCallRateThreshold": 1, "slowCallMs": 5000, "probeTimeoutMs": 5000}', /field "probeTimeoutMs": must be above slowCallMs \(5000\) while slowCallRateThreshold/],
      ['{"slowCallRateThreshold": 50, "slowCallMs": 120000}', /field "probeTimeoutMs": must be above slowCallMs \(120000\)/],
      ['{"baseOpenMs": 100000, "maxOpenMs": 60000}', /field "maxOpenMs": must be at least baseOpenMs \(100000\), got 60000/],
      ['{"baseOpenMs": 200, "maxOpenMs": 150}', /field "maxOpenMs": must be at least baseOpenMs \(200\), got 150/],
      ['{"baseOpenMs": 99, "maxOpenMs": 1000}', /field "baseOpenMs": expected an integer between 100 and 86400000, got 99/],
      ['{"jitter": 1}', /field "jitter": with baseOpenMs 5000 an open time could be as short as 0 ms \(under 100\)/],
      ['{"baseOpenMs": 1000, "jitter": 0.95}', /field "jitter": with baseOpenMs 1000 an open time could be as short as 50 ms.*got "0.95"/],
      ['{"baseOpenMs": 150, "jitter": 0.5}', /field "jitter": with baseOpenMs 150 an open time could be as short as 75 ms/],
      ['{"perHost": true, "destinationKey": "cluster", "fallbackHeader": "x-fallback"}', /field "fallbackHeader": cannot be used with perHost/],
      ['{"failOn": [], "slowCallRateThreshold": 50}', /field "failOn": empty, and no failureStatusCodes, yet consecutiveFailures \(5\) or failureRateThreshold \(50\) is set/],
      ['{"failOn": [], "consecutiveFailures": 0, "slowCallRateThreshold": 50}', /field "failOn": empty.*failureRateThreshold \(50\) is set/],
      ['{"consecutiveFailures": 0, "failureRateThreshold": 0, "slowCallRateThreshold": 0}', /consecutiveFailures, failureRateThreshold and slowCallRateThreshold are all 0/],
      ['{"failureStatusCodes": [200]}', /field "failureStatusCodes\[0\]": expected an integer between 400 and 599, got 200/],
      ['{"failureStatusCodes": [429, 302]}', /field "failureStatusCodes\[1\]": expected an integer between 400 and 599, got 302/],
      ['{"stateHeader": "retry-after"}', /field "stateHeader": must not be a header the breaker's reply sets or frames, got "retry-after"/],
      ['{"stateHeader": "content-length"}', /field "stateHeader": must not be a header the breaker's reply sets or frames, got "content-length"/],
      ['{"fallbackHeader": "authorization"}', /field "fallbackHeader": must not be a header clients send or routing needs.*got "authorization"/],
      ['{"fallbackHeader": "host"}', /field "fallbackHeader": must not be a header clients send or routing needs.*got "host"/],
      ['{"fallbackHeader": "x-envoy-upstream-rq-timeout-ms"}', /field "fallbackHeader": must not be a header clients send or routing needs/],
    ] as const) {
      test(`the configuration ${config} is refused with one critical line naming the field`, () => {
        const host = new Host();
        assert.throws(() => host.startVm(wasm, { pluginConfig: config, rootId: "outlier-breaker" }), message);
        assert.equal(host.logsAt(LogLevel.Critical).length, 1);
      });
    }
  });
}

