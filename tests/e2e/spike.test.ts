// The spike scenario (tests/scenarios/spike.ts) as the acceptance test of the filters working together: traffic jumps
// from 50 to 400 requests/s with one service down and one flaky. With the combined module, retries stay within the
// budget, only the failing service's breaker opens, and latency stays within the SLA; the no-filter twin with the
// mesh-default retry policy shows the amplification the filters prevent.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeHttp, envoyModes } from "../harness/index.js";
import { planned, report, runSpike, type RunResult } from "../scenarios/spike.js";

after(closeHttp);

const SLA_MS = 1000;

// Process mode only: the scenario measures behaviour under load, and container mode runs the same binary.
const [mode] = await envoyModes();

describe(`a traffic spike with one service down (${mode} mode)`, () => {
  let filtered: RunResult;
  let baseline: RunResult;

  // The runs are the fixture of every case below, so they happen in before(), not in a case the others depend on.
  before(async () => {
    filtered = await runSpike("resilience", undefined, mode);
    baseline = await runSpike("baseline", undefined, mode);
    console.log(report([filtered, baseline]).split("\n").map((l) => `# ${l}`).join("\n"));
  }, { timeout: 180_000 });

  test("both variants carried the whole schedule, every request answered, and the module saw and counted each one", () => {
    const plan = planned();
    for (const run of [filtered, baseline]) {
      for (const s of ["inventory", "checkout", "payments"] as const) {
        const x = run.services[s];
        assert.equal(x.requests, plan[s], `${run.variant} ${s}: requests sent`);
        assert.equal(x.status["0"], undefined, `${run.variant} ${s}: ${x.status["0"]} requests got no answer`);
      }
    }
    // The filtered run went through the module: service-metrics counted every request of every service, and the
    // breaker and budget stages keep a series for each (so "0 retries" or "0 opens" below is a reading, not an absence).
    for (const s of ["inventory", "checkout", "payments"] as const) {
      assert.equal(filtered.counted[s], filtered.services[s].requests, `service-metrics counted ${s}'s requests`);
      assert.notEqual(filtered.retries[s], undefined, `retry-budget has a retries series for ${s}`);
      assert.notEqual(filtered.breakerOpens[s], undefined, `outlier-breaker has an opens series for ${s}`);
      assert.notEqual(filtered.breakerState[s], undefined, `outlier-breaker has a state series for ${s}`);
    }
    // ...and the twin did not: no module series at all.
    assert.deepEqual(baseline.series.filter((x) => x.name.startsWith("resilience_")).map((x) => x.name), []);
    // Payments is down in both: every answer a 503, from the upstream (twin) or the breaker (filtered).
    assert.equal(filtered.services.payments.status["503"], filtered.services.payments.requests);
    assert.equal(baseline.services.payments.status["503"], baseline.services.payments.requests);
  });

  test("retries stay under the budget: 20% of requests plus 10 per second per destination", () => {
    const requests = Object.values(filtered.services).reduce((s, x) => s + x.requests, 0);
    const limit = 0.2 * requests + 10 * filtered.seconds * 3;
    assert.ok(filtered.retriesMade <= limit, `${filtered.retriesMade} retries, limit ${limit.toFixed(0)}`);
    const p = filtered.services.payments;
    assert.ok(p.upstreamAttempts <= 10 * filtered.seconds + 10, `payments, down, got ${p.upstreamAttempts} attempts in ${filtered.seconds.toFixed(1)} s`);
    // The control shows what the filters prevent: a mesh-default policy triples the load on the failing service.
    assert.ok(baseline.services.payments.upstreamAttempts >= 2.5 * baseline.services.payments.requests);
  });

  test("breakers open only for the truly failing service", () => {
    assert.ok((filtered.breakerOpens.payments ?? 0) >= 1, "payments' breaker opened");
    assert.equal(filtered.breakerOpens.inventory, 0, "healthy inventory's breaker never opened");
    assert.equal(filtered.breakerOpens.checkout, 0, "flaky (1%) checkout's breaker never opened");
  });

  test("the healthy and flaky services keep their success and latency within the SLA", () => {
    for (const s of ["inventory", "checkout"] as const) {
      const x = filtered.services[s];
      assert.ok(x.ok / x.requests >= 0.999, `${s}: ${x.ok}/${x.requests} succeeded`);
      assert.ok(x.p99ms < SLA_MS, `${s}: p99 ${x.p99ms.toFixed(0)} ms`);
    }
    assert.ok(filtered.services.payments.p99ms < SLA_MS, "the failing service fails fast");
  });
});
