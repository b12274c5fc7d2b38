// The spike scenario (tests/scenarios/spike.ts) as the acceptance test of the filters working together: traffic jumps
// from 50 to 400 requests/s with one service down and one flaky. With the combined module, retries stay within the
// budget, only the failing service's breaker opens, and latency stays within the SLA; the no-filter twin with the
// mesh-default retry policy shows the amplification the filters prevent.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { closeHttp, envoyModes } from "../harness/index.js";
import { report, runSpike, type RunResult } from "../scenarios/spike.js";

after(closeHttp);

const SLA_MS = 1000;

// Process mode only: the scenario measures behaviour under load, and container mode runs the same binary.
const [mode] = await envoyModes();

describe(`a traffic spike with one service down (${mode} mode)`, () => {
  let filtered: RunResult;
  let baseline: RunResult;

  test("runs against the combined module and the no-filter twin", { timeout: 180_000 }, async () => {
    filtered = await runSpike("resilience", undefined, mode);
    baseline = await runSpike("baseline", undefined, mode);
    console.log(report([filtered, baseline]).split("\n").map((l) => `# ${l}`).join("\n"));
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
    assert.ok(filtered.breakerOpens.payments >= 1, "payments' breaker opened");
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
