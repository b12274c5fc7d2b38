// retry-budget in a real Envoy (every mode envoyModes() offers, --concurrency 2): upstream attempts per request at 50%
// and 1% failure against the naive 2-retry twin, the minimum allowance at a fully failing upstream across both
// workers, a route with its own retry policy held to the budget, adaptive shrink and recovery, client headers
// overridden or trusted, metrics, and config refusal.
import assert from "node:assert/strict";
import { Client } from "undici";
import { after, before, describe, test } from "node:test";
import {
  closeHttp, envoyModes, notYet, request, seriesValue, startEnvoy, startEnvoyExpectFailure, startUpstream, waitFor,
  type Bootstrap, type Envoy, type EnvoyMode, type Upstream, type UpstreamAction, type UpstreamRequest,
} from "../harness/index.js";

const FILTER = "envoy-configs/retry-budget.yaml";
const BASELINE = "envoy-configs/retry-budget-baseline.yaml";
/** Open-loop load: requests per second (the acceptance asks for 200 or more) and count. */
const RPS = 210;
const COUNT = 2_000;
const MIN_PER_SECOND = 10;

after(closeHttp);

/** Only for pacing open-loop load; tests wait on conditions (waitFor), never on time. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One upstream for every scenario: each `Host` (the destination key) fails with its own probability per attempt,
 * drawn from its own seeded xorshift32, and its attempts are counted.
 */
class Scenarios {
  private readonly failure = new Map<string, number>();
  private readonly state = new Map<string, number>();
  private readonly extra = new Map<string, UpstreamAction>();
  readonly attempts = new Map<string, number>();

  set(host: string, failureRate: number, extra: UpstreamAction = {}): void {
    this.failure.set(host, failureRate);
    this.extra.set(host, extra);
  }

  respond = (req: UpstreamRequest): UpstreamAction => {
    const host = String(req.headers.host ?? "");
    this.attempts.set(host, (this.attempts.get(host) ?? 0) + 1);
    const rate = this.failure.get(host) ?? 0;
    const extra = this.extra.get(host) ?? {};
    return this.draw(host) < rate ? { status: 503, ...extra } : { status: 200, ...extra };
  };

  count(host: string): number {
    return this.attempts.get(host) ?? 0;
  }

  /** xorshift32 per host, seeded from the name, in [0, 1). */
  private draw(host: string): number {
    let x = this.state.get(host) ?? [...host].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) | 0, 0x9e3779b9) | 1;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state.set(host, x);
    return (x >>> 0) / 4294967296;
  }
}

interface Load {
  sent: number;
  ok: number;
  statuses: Record<string, number>;
  errors: number;
  /** From the first to the last request sent. */
  sendSeconds: number;
  rate: number;
}

/** Connections a load is spread over, round robin: new ones, so the kernel hands them to both workers. */
const CONNECTIONS = 32;

/**
 * Sends `count` requests to `base` + `path` at `rps` without waiting for answers (open loop), over CONNECTIONS
 * fresh keep-alive connections in turn, then waits for every answer.
 */
async function load(base: string, path: string, host: string, count: number, rps: number): Promise<Load> {
  const clients = Array.from({ length: CONNECTIONS }, () => new Client(base, { pipelining: 1 }));
  const interval = 1000 / rps;
  const pending: Promise<void>[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const t0 = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const wait = t0 + i * interval - performance.now();
      // Pacing, not waiting for a condition: open-loop load fires each request at its scheduled time.
      if (wait >= 1) await sleep(wait);
      const sent = clients[i % CONNECTIONS].request({ method: "GET", path, headers: { host }, headersTimeout: 10_000 });
      pending.push(
        sent.then(
          async (r) => {
            await r.body.dump();
            statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
          },
          () => void errors++,
        ),
      );
    }
    const sendSeconds = (performance.now() - t0) / 1000;
    await Promise.all(pending);
    return { sent: count, ok: statuses["200"] ?? 0, statuses, errors, sendSeconds, rate: (count - 1) / sendSeconds };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** The filter's series for one destination, after the tick has published the counts (syncIntervalMs 100). */
async function budgetSeries(envoy: Envoy, host: string, requests: number): Promise<Record<string, number | undefined>> {
  return waitFor(`requests_total{destination_service="${host}"} to reach ${requests}`, async () => {
    const series = await envoy.promSeries();
    const pick = (name: string) => seriesValue(series, `resilience_retry_budget_${name}`, { destination_service: host });
    const out = {
      requests: pick("requests_total"), retries: pick("retries_total"), denied: pick("retries_denied_total"),
      available: pick("available_retries"), ratio: pick("effective_ratio_permille"),
    };
    return out.requests === requests ? out : notYet(out);
  });
}

function pluginConfig(json: string, listener = 0) {
  return (cfg: Bootstrap) => {
    const hcm = cfg.static_resources.listeners[listener].filter_chains[0].filters[0].typed_config;
    hcm.http_filters[0].typed_config.config.configuration.value = json;
  };
}

/** Keys every listener's budgets by :authority, keeping the rest of the shipped configuration. */
function keyByAuthority(cfg: Bootstrap): void {
  for (const l of cfg.static_resources.listeners) {
    const wasm = l.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration;
    wasm.value = JSON.stringify({ ...JSON.parse(wasm.value), destinationKey: "authority" });
  }
}

/** Makes Envoy treat 127.0.0.1 as internal, so it would honour a client's x-envoy-* retry headers itself. */
function trustLoopback(cfg: Bootstrap): void {
  for (const l of cfg.static_resources.listeners) {
    const hcm = l.filter_chains[0].filters[0].typed_config;
    hcm.use_remote_address = true;
    hcm.internal_address_config = { cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }] };
  }
}

async function workerConnections(envoy: Envoy, listener: string): Promise<number[]> {
  const stats = await envoy.stats(`^listener\\.127\\.0\\.0\\.1_${envoy.port(listener)}\\.worker_[0-9]+\\.downstream_cx_total$`);
  return Object.keys(stats).sort().map((k) => stats[k]);
}

function describeLoad(l: Load, attempts: number): string {
  return `${l.sent} requests at ${l.rate.toFixed(0)}/s over ${l.sendSeconds.toFixed(1)} s, ${attempts} upstream attempts ` +
    `(${(attempts / l.sent).toFixed(3)} per request), statuses ${JSON.stringify(l.statuses)}, errors ${l.errors}`;
}

for (const mode of await envoyModes()) {
  describe(`retry-budget in ${mode} mode`, () => {
    const scenarios = new Scenarios();
    let upstream: Upstream;
    let envoy: Envoy;
    let baseline: Envoy;

    before(async () => {
      upstream = await startUpstream({ name: "service", respond: scenarios.respond });
      [envoy, baseline] = await Promise.all([
        // Budgets per :authority here (the default is per routed cluster since issue 10): each scenario has its own host.
        startEnvoy({ config: FILTER, clusters: { service: upstream }, mode, mutate: keyByAuthority }),
        startEnvoy({ config: BASELINE, clusters: { service: upstream }, mode }),
      ]);
    });
    after(async () => {
      await Promise.all([envoy?.stop(), baseline?.stop()]);
      await upstream?.close();
    });

    test("With half the attempts failing, the budget allows at most 1.25 attempts per request where 2 naive retries make about 1.75", async () => {
      scenarios.set("half.test", 0.5);
      scenarios.set("naive.test", 0.5);
      const [withFilter, naive] = await Promise.all([
        load(envoy.url("ingress"), "/half", "half.test", COUNT, RPS),
        load(baseline.url("ingress"), "/route-retries/naive", "naive.test", COUNT, RPS),
      ]);
      const filtered = scenarios.count("half.test") / COUNT;
      const naiveRatio = scenarios.count("naive.test") / COUNT;
      console.log(`  filter: ${describeLoad(withFilter, scenarios.count("half.test"))}`);
      console.log(`  naive:  ${describeLoad(naive, scenarios.count("naive.test"))}`);
      assert.ok(withFilter.rate >= 200 && naive.rate >= 200, `load below 200 requests/s: ${withFilter.rate}, ${naive.rate}`);
      assert.equal(withFilter.errors + naive.errors, 0);
      assert.ok(naiveRatio > 1.65 && naiveRatio < 1.85, `naive policy: ${naiveRatio} attempts per request, expected ~1.75`);
      assert.ok(filtered <= 1.25, `with the filter: ${filtered} attempts per request, expected <= 1.25`);
      assert.ok(filtered > 1.02, `with the filter: ${filtered} attempts per request: some retries must still be made`);

      // Every retry the router made was learned at completion; the ratio shrank with the success ratio (0.2 x ~0.5).
      const m = await budgetSeries(envoy, "half.test", COUNT);
      assert.equal(m.retries, scenarios.count("half.test") - COUNT, "retries_total = upstream attempts - requests");
      assert.ok(m.denied! > 0, "the budget denied retries");
      assert.ok(m.ratio! >= 70 && m.ratio! <= 130, `effective ratio ${m.ratio} permille, expected ~100`);
    });

    test("With 1% of attempts failing, retries are still made and at least 99.9% of requests succeed", async () => {
      scenarios.set("one-percent.test", 0.01);
      const l = await load(envoy.url("ingress"), "/one", "one-percent.test", COUNT, RPS);
      const attempts = scenarios.count("one-percent.test");
      console.log(`  ${describeLoad(l, attempts)}`);
      assert.ok(l.rate >= 200, `load below 200 requests/s: ${l.rate}`);
      assert.ok(attempts > COUNT, "no retry was made");
      assert.ok(l.ok / COUNT >= 0.999, `client-visible success ${(l.ok / COUNT) * 100}%`);
      const m = await budgetSeries(envoy, "one-percent.test", COUNT);
      assert.equal(m.retries, attempts - COUNT);
      assert.ok(m.ratio! >= 190, `effective ratio ${m.ratio} permille at 1% failure, expected ~198`);
      assert.ok(m.available! > 0, "budget left");
    });

    test("A fully failing upstream gets no more retries per second than the minimum allowance, across both workers together", async () => {
      scenarios.set("down.test", 1);
      const cxBefore = await workerConnections(envoy, "ingress");
      const l = await load(envoy.url("ingress"), "/down", "down.test", COUNT, RPS);
      const retries = scenarios.count("down.test") - COUNT;
      const cx = (await workerConnections(envoy, "ingress")).map((v, i) => v - (cxBefore[i] ?? 0));
      console.log(`  ${describeLoad(l, scenarios.count("down.test"))}; ${retries} retries; new connections per worker ${cx}`);
      assert.ok(l.rate >= 200, `load below 200 requests/s: ${l.rate}`);
      assert.equal(l.statuses["503"], COUNT);
      assert.equal(cx.length, 2);
      assert.ok(cx.every((n) => n > 0), `both workers must serve the load to prove one budget: ${cx}`);
      // Grants fall in ceil(sendSeconds) + 1 one-second buckets at most; each holds 10 retries for the whole Envoy.
      const cap = MIN_PER_SECOND * (Math.ceil(l.sendSeconds) + 1);
      assert.ok(retries <= cap, `${retries} retries in ${l.sendSeconds.toFixed(1)} s; the allowance is ${cap}`);
      assert.ok(retries >= MIN_PER_SECOND * (Math.floor(l.sendSeconds) - 1), `${retries} retries: the minimum allowance was not given`);
      const m = await budgetSeries(envoy, "down.test", COUNT);
      assert.equal(m.ratio, 0, "effective ratio at a fully failing upstream");
      assert.equal(m.retries, retries);
    });

    test("A route that already retries 2 times is held to the budget too", async () => {
      scenarios.set("capped.test", 0.5);
      const n = 1_000;
      const l = await load(envoy.url("capped"), "/any", "capped.test", n, RPS);
      const perRequest = scenarios.count("capped.test") / n;
      console.log(`  ${describeLoad(l, scenarios.count("capped.test"))}`);
      assert.ok(perRequest <= 1.25, `${perRequest} attempts per request on a route retrying twice`);
      assert.ok(perRequest > 1.02, "the route's retries must still happen within the budget");

      // The same route shape without the filter: 2 retries whenever the attempt fails.
      scenarios.set("capped-naive.test", 0.5);
      await load(baseline.url("capped"), "/any", "capped-naive.test", n, RPS);
      assert.ok(scenarios.count("capped-naive.test") / n > 1.6);
    });
  });

  describe(`retry-budget adapts and recovers (${mode} mode, windowSeconds 1)`, () => {
    test("The effective ratio falls to 0 while every attempt fails and returns to retryRatio one window after failures stop", async () => {
      const scenarios = new Scenarios();
      const upstream = await startUpstream({ respond: scenarios.respond });
      const envoy = await startEnvoy({
        config: FILTER, clusters: { service: upstream }, mode,
        mutate: pluginConfig('{"destinationKey": "authority", "windowSeconds": 1, "minRetriesPerSecond": 10, "retryRatio": 0.2}'),
      });
      try {
        scenarios.set("adapt.test", 1);
        await load(envoy.url(), "/a", "adapt.test", 200, 200);
        const down = await budgetSeries(envoy, "adapt.test", 200);
        assert.equal(down.ratio, 0);
        assert.ok(down.available! <= 1, `available ${down.available}: only the minimum allowance (10/s = 1 per 100 ms bucket) is left`);

        scenarios.set("adapt.test", 0);
        const healthy = await load(envoy.url(), "/a", "adapt.test", 300, 200);
        assert.equal(healthy.ok, 300);
        const up = await budgetSeries(envoy, "adapt.test", 500);
        assert.equal(up.ratio, 200, "the failures left the 1 s window");
        assert.ok(up.available! >= 10, `available ${up.available} after 200 healthy requests per second, was at most 1`);
      } finally {
        await envoy.stop();
        await upstream.close();
      }
    });
  });

  describe(`retry-budget and client retry headers (${mode} mode, 127.0.0.1 trusted as internal)`, () => {
    let upstream: Upstream;
    const scenarios = new Scenarios();
    before(async () => {
      upstream = await startUpstream({ respond: scenarios.respond });
    });
    after(() => upstream?.close());

    test("With {} the filter gives 2 retries on 5xx and overrides a client's retry count and per-try timeout that Envoy alone would honour", async () => {
      const [envoy, baseline] = await Promise.all([
        startEnvoy({ config: FILTER, clusters: { service: upstream }, mode, mutate: (c) => { pluginConfig("{}")(c); trustLoopback(c); } }),
        startEnvoy({ config: BASELINE, clusters: { service: upstream }, mode, mutate: trustLoopback }),
      ]);
      try {
        const asks = { "x-envoy-retry-on": "5xx", "x-envoy-max-retries": "5" };
        scenarios.set("own.test", 1);
        const own = await request(`${baseline.url()}/x`, { headers: { host: "own.test", ...asks } });
        assert.equal(own.headers["x-envoy-attempt-count"], "6", "without the filter Envoy honours the client's 5 retries");
        scenarios.set("override.test", 1);
        const capped = await request(`${envoy.url()}/x`, { headers: { host: "override.test", ...asks } });
        assert.equal(capped.status, 503);
        assert.equal(capped.headers["x-envoy-attempt-count"], "3", "the filter's maxRetries (2) replaces the client's 5");

        scenarios.set("slow.test", 0, { latencyMs: 150 });
        const perTry = { "x-envoy-upstream-rq-per-try-timeout-ms": "30" };
        assert.equal((await request(`${baseline.url()}/x`, { headers: { host: "slow.test", ...perTry } })).status, 504);
        assert.equal((await request(`${envoy.url()}/x`, { headers: { host: "slow.test", ...perTry } })).status, 200);
      } finally {
        await Promise.all([envoy.stop(), baseline.stop()]);
      }
    });

    describe("with trusted client headers, a configured per-try timeout, budgets keyed by a header, a cap of 2 and 3 retries per second", () => {
      let envoy: Envoy;
      const config = {
        trustClientHeaders: true, perTryTimeoutMs: 30, destinationKey: "header", destinationHeader: "x-destination",
        maxDestinations: 2, minRetriesPerSecond: 3,
      };
      before(async () => {
        envoy = await startEnvoy({
          config: FILTER, clusters: { service: upstream }, mode,
          mutate: (c) => { pluginConfig(JSON.stringify(config))(c); trustLoopback(c); },
        });
      });
      after(() => envoy?.stop());
      /** The upstream scenario is chosen by :authority; the budget by x-destination. */
      const send = (host: string, destination: string, headers: Record<string, string> = {}) =>
        request(`${envoy.url()}/x`, { headers: { host, "x-destination": destination, ...headers } });

      test("The client's retry count and per-try timeout are kept, and its count is still capped by the budget", async () => {
        scenarios.set("trusted.test", 1);
        const capped = await send("trusted.test", "trusted", { "x-envoy-max-retries": "4" });
        assert.equal(capped.headers["x-envoy-attempt-count"], "4", "4 retries asked, a fresh budget holds 3");
        const asked = await send("trusted.test", "trusted-slow", { "x-envoy-max-retries": "1" });
        assert.equal(asked.headers["x-envoy-attempt-count"], "2", "1 retry asked: the client's count, not maxRetries (2)");
        scenarios.set("trusted-slow.test", 0, { latencyMs: 150 });
        const kept = await send("trusted-slow.test", "trusted-slow", { "x-envoy-upstream-rq-per-try-timeout-ms": "1000" });
        assert.equal(kept.status, 200, "the client's 1000 ms per try, not the configured 30 ms");
      });

      test("Without a client value, perTryTimeoutMs is set on every request", async () => {
        // The last test's two trusted-slow requests hold reservations until their completions reach the shared window
        // (a give-back under one retry waits for the worker's tick, which also publishes the request count): on a busy
        // machine this request could otherwise arrive first and find the budget still reserved.
        await envoy.waitForSeries("resilience_retry_budget_requests_total", { destination_service: "trusted-slow" }, 2);
        scenarios.set("per-try.test", 0, { latencyMs: 150 });
        const r = await send("per-try.test", "trusted-slow");
        assert.equal(r.status, 504);
        assert.equal(r.headers["x-envoy-attempt-count"], "3", "each try timed out after 30 ms and was retried");
      });

      test("Budgets follow destinationHeader, and destinations beyond maxDestinations share the budget named other", async () => {
        scenarios.set("spread.test", 0);
        for (const d of ["third", "fourth", "third"]) assert.equal((await send("spread.test", d)).status, 200);
        const other = await envoy.waitForSeries("resilience_retry_budget_requests_total", { destination_service: "other" }, 3);
        const trusted = await envoy.waitForSeries("resilience_retry_budget_requests_total", { destination_service: "trusted" }, 1);
        assert.equal(other, 3);
        assert.equal(trusted, 1);
        const names = (await envoy.promSeries()).map((s) => s.labels.destination_service).filter(Boolean);
        assert.deepEqual([...new Set(names)].sort(), ["other", "trusted", "trusted-slow"]);
      });
    });
  });

  describe(`retry-budget refuses bad configuration (${mode} mode)`, () => {
    const cases: Array<[string, RegExp]> = [
      ['{"retryRatio": -1}', /retry-budget: field "retryRatio": expected a number between 0 and 10, got -1/],
      ['{"retryOn": "5xx,bogus"}', /retry-budget: field "retryOn": unknown retry condition "bogus" in "5xx,bogus"/],
      ['{"windowSecond": 10}', /retry-budget: unknown field "windowSecond" \(did you mean "windowSeconds"\?\)/],
      ['{"destinationKey": "header"}', /retry-budget: field "destinationHeader": required when destinationKey is "header"/],
    ];
    for (const [json, expected] of cases) {
      test(`Envoy refuses ${json}, naming the field and quoting the value`, async () => {
        const failure = await startEnvoyExpectFailure({ config: FILTER, mode, mutate: pluginConfig(json) });
        assert.notEqual(failure.exitCode, 0);
        assert.match(failure.log, expected);
      });
    }
  });
}
