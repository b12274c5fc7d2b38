// Issue 10's attacks in a real Envoy at --concurrency 2: what a hostile caller sends (its own short deadline, other
// spellings of a destination, made-up Hosts, a longer budget, withheld bodies, spoofed headers, dropped requests), and
// that no breaker, budget or rollback moves on it. Each single module where the attack applies and the combined module,
// on `{}` (a generated route table: tests/e2e/hostile/bootstrap.ts) and on the shipped configs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeHttp, envoyModes, startEnvoy, type Bootstrap, type EnvoyMode } from "../harness/index.js";
import * as attack from "./hostile/attacks.js";
import { clusterNames, writeBootstrap, type ChainFilter, type Service } from "./hostile/bootstrap.js";
import { Farm, send } from "./hostile/clients.js";

after(closeHttp);

/** The generated route table: one service per attack, each its own cluster (slow3s: a 1 s route timeout). */
const SERVICES: Service[] = [
  { name: "healthy60" }, { name: "spelled" }, { name: "squat" }, { name: "slow3s", timeoutMs: 1_000 }, { name: "hog" },
  { name: "ts", headerRoute: { header: "x-traffic-subset", exact: "canary", cluster: "canary" } }, { name: "fail503" },
  { name: "fb", headerRoute: { header: "x-breaker-fallback", cluster: "fallback" } }, { name: "slowok" }, { name: "counted" },
];
const SHIPPED_COMBINED = { clusters: ["checkout-stable", "checkout-canary", "inventory", "payments"], config: "envoy-configs/resilience.yaml" };
const CANARY = { "x-canary": "always" };
/**
 * Upstream attempts a failing destination may receive before its breaker answers: consecutiveFailures (5) requests,
 * plus one that can overtake the last failure's record (on_log runs after the answer left); in the combined module each
 * with up to maxRetries (2) retries the budget grants.
 */
const PER_OPEN_SINGLE = 5 + 1;
const PER_OPEN_COMBINED = (5 + 1) * (1 + 2);
/** The edge gateway as shipped, but speaking HTTP/1.1 upstream (the test's upstreams are HTTP/1.1 servers). */
const GATEWAY = {
  clusters: ["service-a", "service-a-canary"], config: "envoy-configs/gateway.yaml",
  mutate: (c: Bootstrap) => {
    for (const cluster of (c as any).static_resources.clusters) delete cluster.typed_extension_protocol_options;
  },
};

/** Starts the upstreams and an Envoy for one target; returns the context its tests share. */
function target(mode: EnvoyMode, setup: {
  chain?: ChainFilter[]; shipped?: { clusters: string[]; config: string; mutate?: (c: Bootstrap) => void }; internal?: boolean; strip?: string[];
}) {
  const ctx = {} as attack.Ctx;
  before(async () => {
    const clusters = setup.shipped ? setup.shipped.clusters : clusterNames(SERVICES);
    ctx.farm = await Farm.start(clusters);
    const config = setup.shipped ? setup.shipped.config : writeBootstrap(SERVICES, setup.chain!, { internalLoopback: setup.internal, stripBeforeRouting: setup.strip });
    ctx.envoy = await startEnvoy({ config, clusters: ctx.farm.upstreams, concurrency: 2, mode, mutate: setup.shipped?.mutate });
  });
  after(async () => {
    await ctx.envoy?.stop();
    await ctx.farm?.close();
  });
  return ctx;
}

const single = (module: string, config = "{}"): ChainFilter[] => [{ module, config }];

for (const mode of await envoyModes()) {
  describe(`hostile callers against the combined module on {} (${mode} mode)`, () => {
    const ctx = target(mode, { chain: single("resilience") });
    test("every request a destination answered is counted under it, the first on each worker too", () => attack.countedExactly(ctx, "counted"));
    test("a caller's own short deadline does not open the breaker", async () => {
      await attack.shortDeadline(ctx, "healthy60");
    });
    test("the same destination spelled differently is refused once its breaker opened", () => attack.spellings(ctx, "spelled", "spelled", PER_OPEN_COMBINED));
    test("a caller cannot extend its own deadline past the route's timeout", () => attack.extendDeadline(ctx, "slow3s", "slow3s", 1_000));
    test("spoofed x-envoy timeout headers and an oversized deadline do not lengthen the timeout", () => attack.spoofedTimeouts(ctx, "slow3s", "slow3s", 1_000));
    test("three withheld bodies do not hog the half-open breaker, which closes once the upstream recovers", () => attack.halfOpenHog(ctx, "hog"));
    test("a client's x-traffic-subset picks no subset", () => attack.spoofedSubset(ctx, "ts", "ts", "ts-canary"));
    test("callers dropping or resetting requests to a healthy slow upstream do not open the breaker", () => attack.callerResets(ctx, "slowok", "slowok", 12));
    test("300 made-up Hosts do not squat the breaker, the budget or the metrics of a real destination", () =>
      attack.squat(ctx, "squat", { breakerAttempts: PER_OPEN_COMBINED, budget: true, metrics: true }));
  });

  describe(`hostile callers at the shipped edge gateway (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: GATEWAY });
    test("a client's x-traffic-subset picks no subset", () => attack.spoofedSubset(ctx, "gateway.example", "service-a", "service-a-canary"));
    test("spoofed x-envoy timeout headers and an oversized deadline do not lengthen the SLA budget", () =>
      attack.spoofedTimeouts(ctx, "gateway.example", "service-a", 1_000));
    test("a caller's own short deadline does not open the breaker", async () => {
      await attack.shortDeadline(ctx, "gateway.example", "service-a");
    });
    test("spoofed x-envoy retry headers do not raise retries past the budget's grant", () => attack.spoofedRetries(ctx, "gateway.example", 2, "service-a"));
  });

  describe(`hostile callers against the combined module on the shipped config (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: SHIPPED_COMBINED });
    test("a caller's own short deadline neither opens the breaker nor drains the retry budget's success ratio", async () => {
      const answers = await attack.shortDeadline(ctx, "inventory");
      await attack.budgetRatioUntouched(ctx, "inventory", 200, answers);
    });
    test("the same destination spelled differently is refused once its breaker opened", () => attack.spellings(ctx, "payments", "payments", PER_OPEN_COMBINED, ["payments.", "PAYMENTS.:80"]));
    test("a client's x-traffic-subset picks no subset for a sticky user of the stable subset", async () => {
      const user = await attack.stableUser(ctx, "checkout", "checkout-stable");
      await attack.spoofedSubset(ctx, "checkout", "checkout-stable", "checkout-canary", { "x-user-id": user });
    });
  });

  describe(`a caller's short deadline against the shipped canary (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: SHIPPED_COMBINED });
    test("a caller's own short deadline does not roll back a healthy canary", async () => {
      ctx.farm.behave("checkout-canary", () => ({ latencyMs: 60 }));
      // 25 that the router timed out (more than rollback.minRequests); one the deadline stage answers itself never reaches the split.
      let routed = 0;
      for (let i = 0; i < 60 && routed < 25; i++) {
        const a = await send(ctx.envoy, "checkout", { headers: { ...CANARY, "x-resilience-deadline-ms": "10" } });
        assert.equal(a.status, 504);
        if (a.body === "upstream request timeout") routed++;
      }
      assert.equal(routed, 25);
      await attack.canaryNotRolledBack(ctx, "checkout", "checkout-canary", CANARY, 25);
    });
  });

  describe(`dropped requests and longer budgets against the shipped config (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: SHIPPED_COMBINED });
    test("callers dropping or resetting canary requests neither roll back the canary nor open its breaker", async () => {
      await attack.callerResets(ctx, "checkout", "checkout-canary", 24, CANARY);
      await attack.canaryNotRolledBack(ctx, "checkout", "checkout-canary", CANARY, 1);
    });
    test("a caller cannot extend the SLA budget (1 s) with a longer deadline or grpc-timeout", () => attack.extendDeadline(ctx, "inventory", "inventory", 1_000));
    test("spoofed x-envoy timeout headers and an oversized deadline do not lengthen the SLA budget", () => attack.spoofedTimeouts(ctx, "inventory", "inventory", 1_000));
  });

  describe(`hostile callers against outlier-breaker on {} (${mode} mode)`, () => {
    const ctx = target(mode, { chain: single("outlier-breaker") });
    test("the same destination spelled differently is refused once its breaker opened", () => attack.spellings(ctx, "spelled", "spelled", PER_OPEN_SINGLE));
    test("three withheld bodies do not hog the half-open breaker, which closes once the upstream recovers", () => attack.halfOpenHog(ctx, "hog"));
    test("callers dropping or resetting requests to a healthy slow upstream do not open the breaker", () => attack.callerResets(ctx, "slowok", "slowok", 12));
    test("300 made-up Hosts do not squat the breaker of a real destination", () => attack.squat(ctx, "squat", { breakerAttempts: PER_OPEN_SINGLE }));
  });

  describe(`hostile callers against the shipped outlier-breaker config (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: { clusters: ["service-a", "service-b"], config: "envoy-configs/outlier-breaker.yaml" } });
    test("the same destination spelled differently is refused once its breaker opened", () => attack.spellings(ctx, "service-b", "service-b", PER_OPEN_SINGLE));
  });

  describe(`hostile callers against the chain deadline -> outlier-breaker on {} (${mode} mode)`, () => {
    const ctx = target(mode, { chain: [...single("deadline"), ...single("outlier-breaker")] });
    test("a caller's own short deadline does not open the breaker of the next module", async () => {
      await attack.shortDeadline(ctx, "healthy60");
    });
    test("callers dropping or resetting requests do not open the breaker of the next module", () => attack.callerResets(ctx, "slowok", "slowok", 12));
  });

  describe(`hostile callers against deadline on {} (${mode} mode)`, () => {
    const ctx = target(mode, { chain: single("deadline") });
    test("a caller cannot extend its own deadline past the route's timeout", () => attack.extendDeadline(ctx, "slow3s", "slow3s", 1_000));
    test("spoofed x-envoy timeout headers and an oversized deadline do not lengthen the timeout", () => attack.spoofedTimeouts(ctx, "slow3s", "slow3s", 1_000));
  });

  describe(`hostile callers against retry-budget on {} behind a listener that trusts loopback peers (${mode} mode)`, () => {
    const ctx = target(mode, { chain: single("retry-budget"), internal: true });
    test("spoofed x-envoy retry headers do not raise retries past the budget's grant", () => attack.spoofedRetries(ctx, "fail503", 2));
    test("300 made-up Hosts do not squat the budget directory", () => attack.squat(ctx, "squat", { budget: true }));
  });

  describe(`hostile callers against service-metrics on {} (${mode} mode)`, () => {
    const ctx = target(mode, { chain: single("service-metrics") });
    test("every request a destination answered is counted under it, the first on each worker too", () => attack.countedExactly(ctx, "counted"));
    test("300 made-up Hosts leave the real destination its own series and the series bounded", () => attack.squat(ctx, "squat", { metrics: true }));
  });

  describe(`hostile callers against traffic-split (${mode} mode)`, () => {
    const ctx = target(mode, { chain: single("traffic-split") });
    test("on {}, a client's x-traffic-subset picks no subset", () => attack.spoofedSubset(ctx, "ts", "ts", "ts-canary"));
  });

  describe(`hostile callers against the shipped traffic-split config (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: { clusters: ["stable", "canary"], config: "envoy-configs/traffic-split.yaml" } });
    test("a client's x-traffic-subset picks no subset for a sticky user of the stable subset", async () => {
      const user = await attack.stableUser(ctx, "app", "stable");
      await attack.spoofedSubset(ctx, "app", "stable", "canary", { "x-user-id": user });
    });
  });

  describe(`hostile callers against the shipped retry-budget config (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: { clusters: ["service"], config: "envoy-configs/retry-budget.yaml" } });
    test("spoofed x-envoy retry headers do not raise retries past the budget's grant", () => attack.spoofedRetries(ctx, "service", 2));
  });

  describe(`hostile callers against the shipped fallback config (${mode} mode)`, () => {
    const ctx = target(mode, { shipped: { clusters: ["service-a", "fallback"], config: "envoy-configs/outlier-breaker-fallback.yaml" } });
    test("a client's fallback header neither picks the fallback route nor bypasses an open breaker", () =>
      attack.spoofedFallback(ctx, "service-a", "fallback", "x-breaker-fallback"));
  });

  describe(`hostile callers against the breaker's fallback header (${mode} mode)`, () => {
    // Deployed as the README asks: the fallback header stripped before routing.
    const ctx = target(mode, { chain: single("outlier-breaker", '{"fallbackHeader": "x-breaker-fallback"}'), strip: ["x-breaker-fallback"] });
    test("a client's fallback header neither picks the fallback route nor bypasses an open breaker", () =>
      attack.spoofedFallback(ctx, "fb", "fb-fallback", "x-breaker-fallback"));
  });
}
