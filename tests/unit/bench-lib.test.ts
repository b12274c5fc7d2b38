// The arithmetic and parsing `npm run bench` rests on (tests/bench/lib.ts): wrk's report, /proc schedstat, medians and
// spreads, per-round pairing, the per-call cost fit, and the emulator's per-request count on the empty filter.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  countPerRequest,
  durationUs,
  fitCallCosts,
  median,
  paired,
  pairedRatio,
  parseSchedstat,
  parseWrk,
  processCpuNs,
  summarize,
} from "../bench/lib.js";

// A real `wrk -t1 -c1 -d1s --latency` report, with the line wrk adds when some answers were not 2xx/3xx.
const REPORT = `Running 1s test @ http://127.0.0.1:18777/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.69ms    5.30ms  29.72ms   85.14%
    Req/Sec    71.80     18.59    99.00     70.00%
  Latency Distribution
     50%   12.48ms
     75%   15.75ms
     90%   21.49ms
     99%   29.72ms
  72 requests in 1.01s, 4.02MB read
  Non-2xx or 3xx responses: 7
Requests/sec:     71.59
Transfer/sec:      4.00MB
`;

describe("wrk's report", () => {
  test("durations in us, ms and s become microseconds; anything else is NaN", () => {
    assert.equal(durationUs("45.12us"), 45.12);
    assert.equal(durationUs("1.20ms"), 1200);
    assert.equal(durationUs("2.00s"), 2_000_000);
    assert.ok(Number.isNaN(durationUs("12.48")));
    assert.ok(Number.isNaN(durationUs("")));
  });

  test("totals, non-2xx answers and the 50th/99th percentiles", () => {
    assert.deepEqual(parseWrk(REPORT), { requests: 72, rps: 71.59, non2xx: 7, p50us: 12480, p99us: 29720 });
  });

  test("a report without the non-2xx line counts none; one without --latency has no percentiles", () => {
    const r = parseWrk(REPORT.replace(/^.*Non-2xx.*\n/m, "").replace(/^\s+\d+%.*\n/gm, ""));
    assert.equal(r.non2xx, 0);
    assert.equal(r.requests, 72);
    assert.ok(Number.isNaN(r.p50us) && Number.isNaN(r.p99us));
  });
});

describe("CPU time from /proc", () => {
  test("schedstat's first field is the task's time on CPU in ns", () => {
    assert.equal(parseSchedstat("123456789 4567 89\n"), 123456789);
    assert.throws(() => parseSchedstat(""), /unreadable/);
    assert.throws(() => parseSchedstat("x y z"), /unreadable/);
  });

  test("a process's CPU time grows by about the CPU it burned", () => {
    const before = processCpuNs(process.pid);
    const start = process.cpuUsage();
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += i % 7;
    const burnedNs = (process.cpuUsage(start).user + process.cpuUsage(start).system) * 1e3;
    const grown = processCpuNs(process.pid) - before;
    assert.ok(x > 0);
    assert.ok(grown >= burnedNs * 0.5 && grown <= burnedNs * 2 + 50e6, `schedstat grew ${grown} ns, cpuUsage says ${burnedNs} ns`);
  });
});

describe("medians, spreads and paired rounds", () => {
  test("median of odd and even counts, without reordering the input", () => {
    const xs = [5, 1, 3];
    assert.equal(median(xs), 3);
    assert.deepEqual(xs, [5, 1, 3]);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  test("summarize: median, range and half-range, non-finite samples left out", () => {
    assert.deepEqual(summarize([10, 14, NaN, 11]), { median: 11, min: 10, max: 14, spread: 2 });
    assert.ok(Number.isNaN(summarize([NaN]).median));
  });

  test("differences and ratios are taken round by round", () => {
    // A noisy second round moves both variants: the paired difference stays 2, the unpaired one would not.
    assert.deepEqual(paired([12, 22, 13], [10, 20, 11]), [2, 2, 2]);
    assert.deepEqual(pairedRatio([12, 30], [6, 10]), [2, 3]);
  });

  test("the per-call fit recovers the costs that made the points, and says NaN when it cannot tell them apart", () => {
    const points = [
      { hostCalls: 3, extraVmEntries: 0 },
      { hostCalls: 8, extraVmEntries: 5 },
      { hostCalls: 18, extraVmEntries: 7 },
      { hostCalls: 5, extraVmEntries: 1 },
    ].map((p) => ({ ...p, aboveFloorUs: 1.5 * p.hostCalls + 0.75 * p.extraVmEntries }));
    const fit = fitCallCosts(points);
    assert.ok(Math.abs(fit.hostCallUs - 1.5) < 1e-9 && Math.abs(fit.vmEntryUs - 0.75) < 1e-9, JSON.stringify(fit));
    const collinear = fitCallCosts([{ hostCalls: 2, extraVmEntries: 1, aboveFloorUs: 3 }, { hostCalls: 4, extraVmEntries: 2, aboveFloorUs: 6 }]);
    assert.ok(Number.isNaN(collinear.hostCallUs));
  });
});

describe("host calls and VM entries per request (emulator)", () => {
  test("the empty filter makes no host call and is entered four times: create, request headers, log, delete (no on_done export)", async () => {
    const c = await countPerRequest("build/fixtures/empty-filter.wasm", "empty-filter", "", { authority: "service-a", cluster: "service-a" });
    assert.equal(c.hostCalls, 0);
    assert.equal(c.vmEntries, 4);
    assert.deepEqual(Object.keys(c.byName).sort(), ["vm:proxy_on_context_create", "vm:proxy_on_delete", "vm:proxy_on_log", "vm:proxy_on_request_headers"]);
  });
});
