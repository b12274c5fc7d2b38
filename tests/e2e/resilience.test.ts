// The combined module (build/resilience.wasm, envoy-configs/resilience.yaml) in a real Envoy at concurrency 2: all five
// stages in one Wasm filter, each doing its job and seeing the others' effects.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  closeHttp, envoyModes, request, seriesValue, startEnvoy, startEnvoyExpectFailure, startUpstream, waitUntil, type Envoy, type Upstream,
} from "../harness/index.js";

const CONFIG = "envoy-configs/resilience.yaml";
const WASM = { resilience: "build/resilience.wasm" };

after(closeHttp);

for (const mode of await envoyModes()) {
  describe(`the combined module in ${mode} mode`, () => {
    let stable: Upstream, canary: Upstream, inventory: Upstream, payments: Upstream;
    let envoy: Envoy;

    before(async () => {
      stable = await startUpstream({ name: "checkout-stable" });
      canary = await startUpstream({ name: "checkout-canary" });
      inventory = await startUpstream({ name: "inventory" });
      payments = await startUpstream({ name: "payments", status: 503 });
      envoy = await startEnvoy({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        clusters: { "checkout-stable": stable, "checkout-canary": canary, inventory, payments },
      });
    });
    after(async () => {
      await envoy?.stop();
      for (const u of [stable, canary, inventory, payments]) await u?.close();
    });

    test("a healthy request carries its SLA budget to the next hop and is counted once", async () => {
      const r = await request(envoy.url() + "/items", { headers: { host: "inventory" } });
      assert.equal(r.status, 200);
      const seen = inventory.requests.at(-1)!;
      const budget = Number(seen.headers["x-resilience-deadline-ms"]);
      assert.ok(budget > 900 && budget <= 995, `inventory saw a budget of ${seen.headers["x-resilience-deadline-ms"]} ms (SLA 1000, margin 5)`);
      assert.equal(seen.headers["x-traffic-subset"], undefined, "traffic-split is scoped to checkout: inventory is not split");
    });

    test("traffic-split routes by rule and sticky user, and later stages see the re-selected cluster", async () => {
      const before = canary.hits.total;
      const r = await request(envoy.url() + "/", { headers: { host: "checkout", "x-canary": "always" } });
      assert.equal(r.status, 200);
      assert.equal(canary.hits.total, before + 1, "x-canary: always reached the canary cluster");
      // Sticky: the same user lands on the same subset every time.
      for (const user of ["u1", "u2", "u3", "u4", "u5", "u6"]) {
        const subsets = new Set<string>();
        for (let i = 0; i < 4; i++) {
          const res = await request(envoy.url() + "/", { headers: { host: "checkout", "x-user-id": user } });
          subsets.add(JSON.parse(res.body).upstream);
        }
        assert.equal(subsets.size, 1, `user ${user} moved between subsets: ${[...subsets]}`);
      }
    });

    test("a spent budget is refused with 504 before any upstream, and metrics count it as a local reply", async () => {
      const hits = inventory.hits.total;
      const r = await request(envoy.url() + "/", { headers: { host: "inventory", "x-resilience-deadline-ms": "0", "x-traffic-subset": "canary" } });
      assert.equal(r.status, 504);
      assert.equal(inventory.hits.total, hits, "inventory never saw the expired request");
      // Per-request counters are flushed on the 1 s housekeeping tick: wait for them, then check them exactly.
      const localReplies = { reporter: "outbound", destination_service: "inventory" };
      await envoy.waitForSeries("resilience_local_replies_total", localReplies, 1);
      await envoy.waitForSeries("resilience_requests_total", { ...localReplies, response_code: "504" }, 1);
      const series = await envoy.promSeries();
      assert.equal(seriesValue(series, "resilience_local_replies_total", { reporter: "outbound", destination_service: "inventory" }), 1);
      assert.equal(seriesValue(series, "resilience_requests_total", {
        reporter: "outbound", destination_service: "inventory", response_code: "504", response_code_class: "5xx", response_flags: "-",
      }), 1);
    });

    test("a failing service gets budgeted retries, then its breaker opens and answers at once; healthy ones stay closed", async () => {
      // Healthy inventory traffic in this test, so its breaker exists here whatever ran before.
      for (let i = 0; i < 5; i++) assert.equal((await request(envoy.url() + "/items", { headers: { host: "inventory" } })).status, 200);
      const before = payments.hits.total;
      // Sequential: five failed requests open the breaker (consecutiveFailures 5).
      for (let i = 0; i < 5; i++) {
        const r = await request(envoy.url() + "/pay", { headers: { host: "payments" } });
        assert.equal(r.status, 503);
        assert.equal(r.headers["x-breaker-state"], undefined, `request ${i} reached the upstream`);
      }
      const attempts = payments.hits.total - before;
      assert.ok(attempts >= 5 && attempts <= 15, `${attempts} upstream attempts for 5 requests (2 retries each at most)`);
      for (let i = 0; i < 10; i++) {
        const r = await request(envoy.url() + "/pay", { headers: { host: "payments" } });
        assert.equal(r.status, 503);
        assert.equal(r.headers["x-breaker-state"], "open");
        assert.ok(Number(r.headers["retry-after"]) >= 1, "retry-after names the seconds left");
      }
      assert.equal(payments.hits.total - before, attempts, "while open, payments received nothing");
      // The healthy service keeps being served while payments' breaker is open.
      const healthy = await request(envoy.url() + "/items", { headers: { host: "inventory" } });
      assert.equal(healthy.status, 200);
      assert.equal(healthy.headers["x-breaker-state"], undefined);
      const series = await envoy.promSeries();
      assert.equal(seriesValue(series, "resilience_outlier_breaker_state", { destination_service: "payments" }), 1);
      // The other services' breakers stay closed: only the truly failing one opened. Inventory's breaker exists
      // (it served requests) and reads closed, not merely "not open": an absent series or half-open would fail.
      assert.notEqual(seriesValue(series, "resilience_outlier_breaker_state", { destination_service: "inventory" }), 1);
      assert.equal(seriesValue(series, "resilience_outlier_breaker_state", { destination_service: "inventory" }), 0, "inventory's breaker is known and closed");
      assert.equal(seriesValue(series, "resilience_outlier_breaker_opens_total", { destination_service: "inventory" }), 0, "inventory's breaker never opened");
      assert.equal(seriesValue(series, "resilience_outlier_breaker_opens_total", { destination_service: "payments" }), 1);
      // Breaker answers and the router's retries are counted on the housekeeping tick: wait for them, then exactly.
      const paymentsLabels = { destination_service: "payments" };
      await envoy.waitForSeries("resilience_local_replies_total", { reporter: "outbound", ...paymentsLabels }, 10);
      await envoy.waitForSeries("resilience_retry_budget_retries_total", paymentsLabels, attempts - 5);
      const later = await envoy.promSeries();
      assert.equal(seriesValue(later, "resilience_local_replies_total", { reporter: "outbound", destination_service: "payments" }), 10,
        "service-metrics, first in the pass, counts the breaker's answers");
      const retries = seriesValue(later, "resilience_retry_budget_retries_total", { destination_service: "payments" }) ?? 0;
      assert.equal(retries, attempts - 5, "retry-budget learned every retry the router made");
    });

    test("traffic-split counts only the destinations it splits, each request once, under the subset that served it", async () => {
      // Self-contained: counts are deltas over this test's own requests, whatever earlier tests sent.
      const routed = async (subset: string) => seriesValue(await envoy.promSeries(), "resilience_traffic_split_requests_total", { subset }) ?? 0;
      const [stableBefore, canaryBefore] = [await routed("stable"), await routed("canary")];
      const [stableHits, canaryHits] = [stable.hits.total, canary.hits.total];
      // Not split: inventory and payments (whose breaker may be open) go first, so a miscount would be flushed with them.
      for (let i = 0; i < 5; i++) await request(envoy.url() + "/", { headers: { host: "inventory" } });
      for (let i = 0; i < 3; i++) await request(envoy.url() + "/", { headers: { host: "payments" } });
      // Split: 1 forced to the canary plus 24 sticky ones.
      assert.equal((await request(envoy.url() + "/", { headers: { host: "checkout", "x-canary": "always" } })).status, 200);
      for (let i = 0; i < 24; i++) {
        assert.equal((await request(envoy.url() + "/", { headers: { host: "checkout", "x-user-id": `count-${i % 6}` } })).status, 200);
      }
      // Counters are added at each sync (250 ms) per worker: wait until each subset's count matches what its upstream
      // received (a miscount never gets there), then check the total exactly.
      const deltas = async () => ({ stable: (await routed("stable")) - stableBefore, canary: (await routed("canary")) - canaryBefore });
      const received = () => ({ stable: stable.hits.total - stableHits, canary: canary.hits.total - canaryHits });
      const counted = await waitUntil("traffic-split's per-subset counts to match what each subset received", deltas,
        (d) => d.stable === received().stable && d.canary === received().canary);
      assert.equal(counted.stable + counted.canary, 25, "the 25 checkout requests, and nothing else, were counted");
      assert.deepEqual(counted, received(), "each request counted under the subset that served it");
      assert.ok(canary.hits.total - canaryHits >= 1, "x-canary: always reached the canary");
    });

    test("the module reports its memory under its own name", async () => {
      const v = seriesValue(await envoy.promSeries(), "resilience_wasm_memory_bytes", { filter: "resilience" });
      assert.ok(v !== undefined && v > 0);
    });
  });

  describe(`the combined module's configuration in ${mode} mode`, () => {
    const withConfig = (json: string) => (cfg: any) => {
      const hcm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
      hcm.http_filters[0].typed_config.config.configuration.value = json;
    };

    test("a bad field inside one filter's section is refused with its full path", async () => {
      const r = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: withConfig('{"retry-budget": {"retryRatio": "lots"}}'),
      });
      assert.notEqual(r.exitCode, 0);
      assert.match(r.log, /resilience: field "retry-budget\.retryRatio": expected a number/);
    });

    test("an unknown filter name in the filters list is refused", async () => {
      const r = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: withConfig('{"filters": ["service-metrics", "rate-limit"]}'),
      });
      assert.notEqual(r.exitCode, 0);
      assert.match(r.log, /unknown filter "rate-limit"/);
    });

    test("an empty configuration runs all five stages on their defaults", async () => {
      const up = await startUpstream({ name: "any" });
      const envoy = await startEnvoy({
        config: CONFIG, wasm: WASM, concurrency: 2, mode, mutate: withConfig("{}"),
        clusters: { "checkout-stable": up, "checkout-canary": up, inventory: up, payments: up },
      });
      try {
        const r = await request(envoy.url() + "/", { headers: { host: "inventory" } });
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body).headers["x-traffic-subset"], "stable");
        assert.equal(JSON.parse(r.body).headers["x-envoy-max-retries"], undefined, "the router consumed the retry headers");
      } finally {
        await envoy.stop();
        await up.close();
      }
    });
  });
}
