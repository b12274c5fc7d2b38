// The outcome classifier and destination identity of issue 10, in a real Envoy at --concurrency 2: a timeout of the
// caller's own budget is neutral for the breaker and counted (flag UT, no upstream failure) by service-metrics, in one
// module and across separate Wasm filters (the deadline's fact travels as filter state, read in on_log); the
// operator's timeout still counts; a downstream HTTP/2 reset is labelled DR; every spelling of a host is one breaker;
// made-up Hosts no route serves take no breaker, budget or label. Route table and upstreams: tests/e2e/hostile/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeHttp, envoyModes, seriesValue, selectSeries, startEnvoy, type EnvoyMode } from "../harness/index.js";
import * as attack from "./hostile/attacks.js";
import { clusterNames, writeBootstrap, type ChainFilter, type Service } from "./hostile/bootstrap.js";
import { connect as h2connect } from "node:http2";
import { Farm, send, sendMany } from "./hostile/clients.js";

after(closeHttp);

/** healthy60 answers in 60 ms; op200 has a 200 ms route timeout (the operator's bound) in front of a 400 ms upstream. */
const SERVICES: Service[] = [
  { name: "healthy60" }, { name: "op200", timeoutMs: 200 }, { name: "spelled" }, { name: "squat" }, { name: "slowok" },
  { name: "oneworker" },
];
const DEADLINE = "x-resilience-deadline-ms";

function target(mode: EnvoyMode, chain: ChainFilter[]): attack.Ctx {
  const ctx = {} as attack.Ctx;
  before(async () => {
    ctx.farm = await Farm.start(clusterNames(SERVICES));
    ctx.envoy = await startEnvoy({ config: writeBootstrap(SERVICES, chain), clusters: ctx.farm.upstreams, concurrency: 2, mode });
  });
  after(async () => {
    await ctx.envoy?.stop();
    await ctx.farm?.close();
  });
  return ctx;
}

const filter = (module: string, config = "{}"): ChainFilter => ({ module, config });

/** service-metrics counted the caller's 504s with flag UT and none of them as an upstream failure. */
async function callerTimeoutsCounted({ envoy }: attack.Ctx, service: string, n: number): Promise<void> {
  const labels = { destination_service: service };
  await envoy.waitForSeries("resilience_requests_total", { ...labels, response_code: "504", response_flags: "UT" }, n);
  assert.equal(seriesValue(await envoy.promSeries(), "resilience_upstream_failures_total", labels) ?? 0, 0, "no upstream failure counted");
}

/** The operator's 200 ms route timeout, even under a caller's far longer budget, still opens the breaker. */
async function operatorTimeoutsCount({ envoy, farm }: attack.Ctx): Promise<void> {
  farm.behave("op200", () => ({ latencyMs: 400 }));
  const answers = await sendMany(8, envoy, "op200", { headers: { [DEADLINE]: "15000" } });
  const codes = answers.map((a) => `${a.status}${a.headers["x-breaker-state"] ? ":" + a.headers["x-breaker-state"] : ""}`);
  assert.deepEqual(codes, [...Array(5).fill("504"), ...Array(3).fill("503:open")], "5 real timeouts open the breaker");
  assert.equal(farm.hits("op200"), 5);
  await envoy.waitForSeries("resilience_upstream_failures_total", { destination_service: "op200" }, 5);
}

/**
 * Failures over one keep-alive connection (so one worker saw them all), then fresh connections, which land on either
 * worker: every one is refused. traffic-split writes its subset header on `{}`, so the breaker keys each request by the
 * cluster learned from completed requests; a worker that had not seen the destination yet admitted its first request
 * unchecked until that knowledge was shared (with 12 fresh connections over 2 workers a miss is ~1 in 4,096).
 */
async function openOnOneWorkerRefusesOnAll({ envoy, farm }: attack.Ctx): Promise<void> {
  farm.behave("oneworker", () => ({ status: 503 }));
  // One HTTP/2 connection: Envoy closes an HTTP/1 connection after an upstream 5xx, which would spread the failures.
  const session = h2connect(envoy.url());
  try {
    for (let i = 0; i < 5; i++) {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const stream = session.request({ ":method": "GET", ":path": "/", ":authority": "oneworker" });
        stream.on("response", (h) => stream.resume().on("end", () => resolve(h))).on("error", reject);
        stream.end();
      });
      assert.equal(headers[":status"], 503);
      assert.equal(headers["x-breaker-state"], undefined, `failure ${i + 1} reached the upstream`);
    }
  } finally {
    session.close();
  }
  await envoy.waitForSeries("resilience_outlier_breaker_opens_total", { destination_service: "oneworker" }, 1);
  const hits = farm.hits("oneworker");
  const answers = await sendMany(12, envoy, "oneworker");
  assert.deepEqual(answers.map((a) => `${a.status}:${a.headers["x-breaker-state"] ?? ""}`), Array(12).fill("503:open"));
  assert.equal(farm.hits("oneworker"), hits, "nothing reached the upstream once the breaker opened");
}

for (const mode of await envoyModes()) {
  describe(`outcomes in the combined module on {} (${mode} mode)`, () => {
    const ctx = target(mode, [filter("resilience")]);
    test("a caller's own 10 ms deadline gets 504 but leaves the breaker closed; metrics count it as UT, not an upstream failure", async () => {
      await attack.shortDeadline(ctx, "healthy60");
      await callerTimeoutsCounted(ctx, "healthy60", 12);
    });
    test("the operator's route timeout still counts, whatever budget the caller sends", () => operatorTimeoutsCount(ctx));
    test("a breaker opened by one worker's requests refuses on every worker, also a worker's first request there", () =>
      openOnOneWorkerRefusesOnAll(ctx));
    test("a caller's HTTP/2 reset is labelled DR and opens nothing", async () => {
      await attack.callerResets(ctx, "slowok", "slowok", 6);
      await ctx.envoy.waitForSeries("resilience_requests_total", { destination_service: "slowok", response_flags: "DR" }, 3);
      await ctx.envoy.waitForSeries("resilience_requests_total", { destination_service: "slowok", response_flags: "DC" }, 3);
      assert.equal(seriesValue(await ctx.envoy.promSeries(), "resilience_upstream_failures_total", { destination_service: "slowok" }) ?? 0, 0);
    });
  });

  describe(`outcomes across the chain deadline -> outlier-breaker -> service-metrics, three Wasm filters (${mode} mode)`, () => {
    const ctx = target(mode, [filter("deadline"), filter("outlier-breaker"), filter("service-metrics")]);
    test("the deadline's word reaches the other filters as filter state: the breaker stays closed, metrics see no upstream failure", async () => {
      await attack.shortDeadline(ctx, "healthy60");
      await callerTimeoutsCounted(ctx, "healthy60", 12);
    });
    test("the operator's route timeout still counts in the next filters", () => operatorTimeoutsCount(ctx));
  });

  describe(`destination identity in outlier-breaker keyed by authority (${mode} mode)`, () => {
    const ctx = target(mode, [filter("outlier-breaker", '{"destinationKey": "authority"}'), filter("service-metrics")]);
    test("upper case, a port and a trailing dot name the same breaker: refused once it opened, never sent upstream", () =>
      attack.spellings(ctx, "spelled", "spelled", 5));
    test("300 made-up Hosts (404) take no breaker; a real failing destination opens after 5 and its upstream sees 5", async () => {
      await attack.squat(ctx, "squat", { breakerAttempts: 5 });
      assert.equal(ctx.farm.hits("squat"), 5);
      // service-metrics hands its counters to Envoy on each worker's tick: wait for them, then read everything at once.
      await ctx.envoy.waitForSeries("resilience_requests_total", { destination_service: "unrouted", response_code: "404", response_flags: "NR" }, 300);
      const series = await ctx.envoy.promSeries();
      assert.equal(seriesValue(series, "resilience_requests_total", { destination_service: "unrouted", response_code: "404", response_flags: "NR" }), 300);
      const breakers = new Set(selectSeries(series, "resilience_outlier_breaker_state").map((s) => s.labels.destination_service));
      assert.deepEqual([...breakers].sort(), ["spelled", "squat"], "only routed destinations have breakers");
    });
  });

  describe(`destination identity in outlier-breaker on {} (per routed cluster) (${mode} mode)`, () => {
    const ctx = target(mode, [filter("outlier-breaker")]);
    test("300 made-up Hosts take no breaker; the failing destination's opens after 5, and every spelling is refused", async () => {
      await attack.squat(ctx, "squat", { breakerAttempts: 5 });
      assert.equal(ctx.farm.hits("squat"), 5);
      const names = new Set(selectSeries(await ctx.envoy.promSeries(), "resilience_outlier_breaker_state").map((s) => s.labels.destination_service));
      assert.deepEqual([...names], ["squat"], "only the routed cluster has a breaker");
      for (const spelling of ["SQUAT", "squat:8080", "squat.", "Squat.:80"]) {
        assert.equal((await send(ctx.envoy, spelling)).headers["x-breaker-state"], "open", spelling);
      }
      assert.equal(ctx.farm.hits("squat"), 5);
    });
  });

  describe(`destination identity in retry-budget on {} (per routed cluster) (${mode} mode)`, () => {
    const ctx = target(mode, [filter("retry-budget")]);
    test("300 made-up Hosts take no budget; the real destination has the only one", async () => {
      await attack.squat(ctx, "squat", { budget: true });
      const names = new Set(selectSeries(await ctx.envoy.promSeries(), "resilience_retry_budget_requests_total").map((s) => s.labels.destination_service));
      assert.deepEqual([...names], ["squat"]);
    });
  });
}
