// The demo's scenario (tests/scenarios/mesh.ts), shortened, as the acceptance test of issue 13: a gateway and five
// services each behind a sidecar take a 10x open-loop spike with three policies. For the bundle: flaky gets at most
// 1.25 upstream attempts per client request, breakers open for down and flaky only (healthy's never, all run long),
// healthy keeps >= 99.9% success with p99 inside its SLA, and the canary is rolled back within 5 s of its first
// error; the naive run sends more attempts. Then the HTML report renders in headless Chromium.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { closeHttp, envoyModes, selectSeries } from "../harness/index.js";
import { inspectReport } from "../scenarios/mesh-browser.js";
import { CANARY, CLUSTERS, FAILING, SERVICES, SHORT_TIMING, SLA_MS, describeScenario, phasesOf, runAllPolicies, type Policy, type RunData } from "../scenarios/mesh.js";
import { formatSummary, summarize, writeReport, type Summary } from "../scenarios/mesh-report.js";

after(closeHttp);

const planned = phasesOf(SHORT_TIMING).reduce((n, p) => n + p.rps * p.seconds, 0) / SERVICES.length;

for (const mode of await envoyModes()) {
  describe(`the spike on a small mesh, three policies (${mode} mode)`, () => {
    let runs: RunData[];
    const by = {} as Record<Policy, Summary>;
    const dir = mkdtempSync(join(tmpdir(), "mesh-demo-"));
    after(() => rmSync(dir, { recursive: true, force: true }));

    // The three runs are the fixture of every case below.
    before(async () => {
      runs = await runAllPolicies({ timing: SHORT_TIMING, mode });
      for (const r of runs) by[r.policy] = summarize(r);
      console.log(Object.values(by).map(formatSummary).join("\n\n"));
    }, { timeout: 240_000 });

    test("every run carried the whole schedule and every request was answered", () => {
      for (const r of runs) {
        for (const s of SERVICES) {
          const mine = r.client.filter((c) => c.service === s);
          assert.equal(mine.length, planned, `${r.policy} ${s}: requests sent`);
          assert.equal(mine.filter((c) => c.status === 0).length, 0, `${r.policy} ${s}: requests without an answer`);
        }
        assert.ok(r.samples.length >= 10, `${r.policy}: ${r.samples.length} samples of the gateway's stats`);
      }
    });

    test("the bundle's gateway module counted every request per service; the other runs ran without it", () => {
      const bundle = runs.find((r) => r.policy === "bundle")!;
      for (const s of SERVICES) {
        const counted = [s, ...(s === "checkout" ? [CANARY] : [])].reduce((n, c) =>
          n + selectSeries(bundle.final, "resilience_requests_total", { reporter: "outbound", destination_service: c }).reduce((m, x) => m + x.value, 0), 0);
        assert.equal(counted, planned, `service-metrics counted ${s}'s requests`);
      }
      for (const r of runs.filter((x) => x.policy !== "bundle")) {
        assert.deepEqual([...new Set(r.final.filter((x) => x.name.startsWith("resilience_")).map((x) => x.name))], [], `${r.policy}: module series`);
      }
    });

    test("bundle: retries stay under the limit and every service's p99 inside its SLA (the failing ones fail fast)", () => {
      const [retries, , latency] = by.bundle.verdict;
      assert.ok(retries.pass, retries.figure);
      assert.ok(latency.pass, latency.figure);
      // Down is hardly tried: its breaker answers instead (the naive run tries it about three times per request).
      const down = by.bundle.rows.find((x) => x.service === "down")!;
      assert.ok(down.attempts <= 10 * by.bundle.seconds + 10, `down: ${down.attempts} connection attempts in ${by.bundle.seconds.toFixed(1)} s`);
      assert.equal(down.ok, 0, "down never answered");
    });

    test("bundle: flaky gets at most 1.25 upstream attempts per client request", () => {
      const flaky = by.bundle.rows.find((x) => x.service === "flaky")!;
      assert.ok(flaky.attempts <= 1.25 * flaky.requests, `flaky: ${flaky.attempts} attempts for ${flaky.requests} requests`);
      // The spike did make it fail: the breaker and budget had something to hold back.
      assert.ok(flaky.success < 0.9, `flaky succeeded ${flaky.ok} of ${flaky.requests}`);
    });

    test("bundle: breakers open for down and flaky only, healthy's never (every sample of the run)", () => {
      const bundle = runs.find((r) => r.policy === "bundle")!;
      for (const s of FAILING) assert.ok((by.bundle.opened[s] ?? 0) >= 1, `${s}'s breaker opened`);
      assert.deepEqual(Object.keys(by.bundle.opened).sort(), [...FAILING].sort(), "the breakers that opened");
      for (const c of CLUSTERS.filter((x) => !FAILING.includes(x as never))) {
        const states = bundle.samples.map((x) => x.breaker[c]);
        assert.deepEqual([...new Set(states)], [0], `${c}'s breaker state over the run`);
      }
    });

    test("bundle: healthy keeps >= 99.9% success with p99 inside its SLA", () => {
      const healthy = by.bundle.rows.find((x) => x.service === "healthy")!;
      assert.ok(healthy.success >= 0.999, `healthy: ${healthy.ok} of ${healthy.requests}`);
      assert.ok(healthy.p99ms <= SLA_MS.healthy, `healthy p99 ${healthy.p99ms.toFixed(0)} ms, SLA ${SLA_MS.healthy}`);
    });

    test("bundle: the canary is rolled back within 5 s of its first error", () => {
      const c = by.bundle.canary;
      assert.notEqual(c.errorsBeganMs, undefined, "the canary answered errors");
      assert.equal(c.weightAtEnd, 0, "its weight at the end");
      assert.ok(c.rollbackMs !== undefined && c.rollbackMs <= 5_000, `its last request came ${c.rollbackMs} ms after its first error`);
      // The fixed-weight runs keep sending it traffic to the end.
      assert.equal(by.naive.canary.rollbackMs, undefined);
      assert.ok(by.naive.canary.hitsAfterErrors > by.bundle.canary.hitsAfterErrors, `${CANARY} hits after errors: naive ${by.naive.canary.hitsAfterErrors}, bundle ${by.bundle.canary.hitsAfterErrors}`);
    });

    test("the naive run sends more upstream attempts than the bundle", () => {
      const total = (s: Summary) => s.rows.reduce((n, x) => n + x.attempts, 0);
      assert.ok(total(by.naive) > total(by.bundle), `attempts: naive ${total(by.naive)}, bundle ${total(by.bundle)}`);
      for (const s of FAILING) {
        const naive = by.naive.rows.find((x) => x.service === s)!;
        const bundle = by.bundle.rows.find((x) => x.service === s)!;
        assert.ok(naive.attemptsPerRequest > bundle.attemptsPerRequest, `${s}: naive ${naive.attemptsPerRequest.toFixed(2)}, bundle ${bundle.attemptsPerRequest.toFixed(2)} attempts per request`);
      }
      assert.ok(by.naive.rows.find((x) => x.service === "down")!.attemptsPerRequest >= 2, "naive: down is tried about three times per request");
    });

    test("the HTML report renders in headless Chromium: every chart painted, no console error", async () => {
      const path = join(dir, "report.html");
      writeReport(path, runs, Object.values(by), describeScenario(SHORT_TIMING));
      const r = await inspectReport(path);
      assert.deepEqual(r.errors, []);
      assert.equal(r.charts, 3 * 7, "seven charts per run");
      assert.equal(r.painted, r.canvases, `${r.painted} of ${r.canvases} canvases painted`);
    });
  });
}
