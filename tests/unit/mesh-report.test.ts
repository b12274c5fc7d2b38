// The mesh demo's figures and verdict (tests/scenarios/mesh-report.ts) on a made-up run: exact numbers, and each
// criterion failing when its figure says so.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CANARY, CLUSTERS, SERVICES, SLA_MS, type ClientRecord, type RunData, type Sample, type Service } from "../scenarios/mesh.js";
import { summarize, timeSeries } from "../scenarios/mesh-report.js";

const SECONDS = 10;

/** 100 requests per service over 10 s, each answered 200 in `ms`; one app hit per request; breakers closed. */
function run(edit: (r: RunData) => void = () => undefined): RunData {
  const client: ClientRecord[] = [];
  const hits: RunData["hits"] = Object.fromEntries(CLUSTERS.map((c) => [c, []]));
  for (const s of SERVICES) {
    for (let i = 0; i < 100; i++) {
      const sentMs = i * 100;
      client.push({ service: s, sentMs, doneMs: sentMs + 10 + (i % 10), status: 200, by: s });
      if (s !== "down") hits[s === "checkout" && i % 5 === 0 ? CANARY : s].push({ tMs: sentMs, status: 200 });
    }
  }
  const zero = () => Object.fromEntries(CLUSTERS.map((c) => [c, 0]));
  const sample = (tMs: number): Sample => ({ tMs, retries: zero(), connectFailures: zero(), breaker: zero(), opens: zero(), canaryWeight: 20 });
  const r: RunData = {
    policy: "bundle", timing: { baseSeconds: 2, spikeSeconds: 6, afterSeconds: 2, baseRps: 10 }, seconds: SECONDS, spikeStartMs: 2000, spikeEndMs: 8000,
    client, hits, samples: [sample(0), sample(5000), sample(10_000)], final: [],
  };
  // The scenario's failing services: both breakers opened once.
  r.samples.at(-1)!.opens.down = 1;
  r.samples.at(-1)!.opens.flaky = 1;
  edit(r);
  return r;
}

const row = (r: RunData, s: Service) => summarize(r).rows.find((x) => x.service === s)!;

test("figures: attempts per request from the app hits (checkout with its canary), p50/p99 from the client, the retry limit", () => {
  const r = run((x) => {
    x.hits.flaky.push(...Array.from({ length: 25 }, () => ({ tMs: 3000, status: 503 })));
    x.samples.at(-1)!.retries.flaky = 25;
    x.samples.at(-1)!.connectFailures.down = 7;
  });
  assert.equal(row(r, "flaky").attempts, 125);
  assert.equal(row(r, "flaky").attemptsPerRequest, 1.25);
  assert.equal(row(r, "flaky").retries, 25);
  assert.equal(row(r, "flaky").retryLimit, 0.2 * 100 + 10 * SECONDS);
  assert.equal(row(r, "checkout").attempts, 100, "checkout's stable and canary hits");
  assert.equal(row(r, "down").attempts, 7, "down: refused connections");
  assert.equal(row(r, "healthy").p50ms, 14);
  assert.equal(row(r, "healthy").p99ms, 19);
  assert.equal(row(r, "healthy").success, 1);
  assert.deepEqual(summarize(r).verdict.map((v) => v.pass), [true, true, true]);
});

test("verdict: retries over the limit fail, naming the service and both figures", () => {
  const v = summarize(run((x) => (x.samples.at(-1)!.retries.down = 121))).verdict[0];
  assert.equal(v.pass, false);
  assert.match(v.figure, /down 121 > 120/);
});

test("verdict: a breaker for a healthy service, or none for a failing one, fails", () => {
  const healthy = summarize(run((x) => (x.samples.at(-1)!.opens.healthy = 1))).verdict[1];
  assert.equal(healthy.pass, false);
  assert.match(healthy.figure, /opened for healthy, not failing/);
  const canary = summarize(run((x) => (x.samples.at(-1)!.opens[CANARY] = 2))).verdict[1];
  assert.equal(canary.pass, false);
  const missing = summarize(run((x) => (x.samples.at(-1)!.opens.flaky = 0))).verdict[1];
  assert.equal(missing.pass, false);
  assert.match(missing.figure, /never opened for failing flaky/);
});

test("verdict: a p99 past its SLA fails, even for a service that fails (it must fail fast)", () => {
  const v = summarize(run((x) => {
    for (const c of x.client.filter((c) => c.service === "down").slice(0, 2)) c.doneMs = c.sentMs + SLA_MS.down + 1;
  })).verdict[2];
  assert.equal(v.pass, false);
  assert.match(v.figure, new RegExp(`down p99 ${SLA_MS.down + 1} ms > ${SLA_MS.down}`));
});

test("canary: rolled back only when its weight went to 0, timed from its first error to its last hit", () => {
  const failing = (x: RunData) => {
    x.hits[CANARY] = [{ tMs: 1000, status: 200 }, { tMs: 2500, status: 503 }, { tMs: 2600, status: 200 }, { tMs: 3700, status: 503 }];
    x.client.push({ service: "checkout", sentMs: 3690, doneMs: 3710, status: 503, by: CANARY });
  };
  const rolled = summarize(run((x) => { failing(x); x.samples.at(-1)!.canaryWeight = 0; })).canary;
  assert.equal(rolled.errorsBeganMs, 2500);
  assert.equal(rolled.hitsAfterErrors, 3);
  assert.equal(rolled.checkoutFailuresAfter, 1);
  assert.equal(rolled.rollbackMs, 1200);
  const kept = summarize(run(failing)).canary;
  assert.equal(kept.rollbackMs, undefined);
  assert.equal(kept.weightAtEnd, 20);
});

test("time series: 7 charts over 0.5 s buckets, rates per second", () => {
  const t = timeSeries(run());
  assert.equal(t.charts.length, 7);
  assert.equal(t.x.length, 21);
  const sent = t.charts[0];
  assert.deepEqual(sent.names, [...SERVICES]);
  // 10 requests a second per service, 5 per half-second bucket.
  assert.deepEqual(sent.data[0].slice(0, 20), new Array(20).fill(10));
  assert.ok(t.charts.every((c) => c.data.every((d) => d.length === t.x.length)), "every series as long as the x axis");
});
