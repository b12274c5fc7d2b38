// outlier-breaker in a real Envoy (every mode envoyModes() offers, --concurrency 2): opening after exactly
// consecutiveFailures across both workers, the open-state answer, nothing but probes reaching the upstream while open,
// closing on a recovered upstream, re-opening with a doubled open time, no false opens at 1% failures and 200 req/s for
// 30 s, the slow-call rule, fallback routing, per-host breakers in the upstream filter chain, metrics, config refusal.
import assert from "node:assert/strict";
import { request as httpRequest, Agent } from "node:http";
import { after, before, describe, test } from "node:test";
import {
  atLeast, closeHttp, envoyModes, request, seriesValue, startEnvoy, startEnvoyExpectFailure, startUpstream, waitUntil,
  type Bootstrap, type Envoy, type EnvoyMode, type Upstream, type UpstreamAction, type UpstreamRequest,
} from "../harness/index.js";

const FILTER = "envoy-configs/outlier-breaker.yaml";
const FALLBACK = "envoy-configs/outlier-breaker-fallback.yaml";
const PER_HOST = "envoy-configs/outlier-breaker-per-host.yaml";
const BASE_OPEN_MS = 2000;
/** The configuration the tests run with: short open times and no jitter, so timing is exact; the slow-call rule on. */
const CONFIG = {
  destinationKey: "authority", consecutiveFailures: 5, failureRateThreshold: 50, windowSeconds: 10, minimumRequests: 20,
  slowCallMs: 600, slowCallRateThreshold: 50, baseOpenMs: BASE_OPEN_MS, maxOpenMs: 8000, jitter: 0,
  halfOpenProbes: 2, halfOpenSuccesses: 2,
};

after(closeHttp);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Replaces the plugin configuration of every outlier-breaker Wasm filter in a bootstrap. */
function configure(config: object | string): (cfg: Bootstrap) => void {
  const text = typeof config === "string" ? config : JSON.stringify(config);
  return (cfg) => {
    const walk = (node: any): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        if (node.root_id === "outlier-breaker" && node.configuration) node.configuration.value = text;
        Object.values(node).forEach(walk);
      }
    };
    walk(cfg);
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on a new connection (Connection: close), so sequential requests land on either worker. */
function fresh(envoy: Envoy, host: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${envoy.url()}/`, { agent: false, headers: { host, connection: "close", ...headers }, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`request to ${host} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * A POST whose body the client starts and then withholds (content-length promises more): the request stays open
 * until `abort()`. `answer` settles with the status if Envoy answers it meanwhile.
 */
function withheldBody(envoy: Envoy, host: string): { answer: Promise<number>; abort: () => void } {
  const req = httpRequest(`${envoy.url()}/upload`, {
    method: "POST", agent: false, headers: { host, connection: "close", "content-type": "text/plain", "content-length": "100000" },
  });
  const answer = new Promise<number>((resolve) => {
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(-1));
    req.on("close", () => resolve(-1));
  });
  req.flushHeaders();
  req.write("x".repeat(10));
  return { answer, abort: () => req.destroy() };
}

/** Connections each worker of the ingress listener accepted so far. */
async function perWorkerConnections(envoy: Envoy): Promise<number[]> {
  const stats = await envoy.stats(`^listener\\.127\\.0\\.0\\.1_${envoy.port()}\\.worker_\\d+\\.downstream_cx_total$`);
  return Object.keys(stats).sort().map((k) => stats[k]!);
}

/** One upstream for every scenario: each Host header (one breaker each) has its own behaviour and hit count. */
class Scenarios {
  private readonly behaviour = new Map<string, (i: number) => UpstreamAction | Promise<UpstreamAction>>();
  readonly hits = new Map<string, number>();

  set(host: string, behaviour: (i: number) => UpstreamAction | Promise<UpstreamAction>): void {
    this.behaviour.set(host, behaviour);
  }

  count(host: string): number {
    return this.hits.get(host) ?? 0;
  }

  respond = (req: UpstreamRequest): UpstreamAction | Promise<UpstreamAction> => {
    const host = String(req.headers.host ?? "");
    const i = this.count(host);
    this.hits.set(host, i + 1);
    return (this.behaviour.get(host) ?? (() => ({ status: 200 })))(i);
  };
}

for (const mode of await envoyModes()) {
  describe(`outlier-breaker in Envoy (${mode} mode, two workers)`, () => {
    let upstream: Upstream;
    let envoy: Envoy;
    const scenarios = new Scenarios();

    const metric = async (name: string, labels: Record<string, string>) =>
      seriesValue(await envoy.promSeries(), `resilience_outlier_breaker_${name}`, labels) ?? 0;

    before(async () => {
      upstream = await startUpstream({ name: "service-a", respond: scenarios.respond });
      envoy = await startEnvoy({ config: FILTER, clusters: { "service-a": upstream, "service-b": upstream }, concurrency: 2, mode, mutate: configure(CONFIG) });
    });
    after(async () => {
      await envoy?.stop();
      await upstream?.close();
    });

    test("an upstream failing every request opens the breaker after exactly consecutiveFailures, across both workers", async () => {
      const host = "service-a.exact";
      scenarios.set(host, () => ({ status: 500 }));
      const before = await perWorkerConnections(envoy);
      const statuses: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await fresh(envoy, host);
        statuses.push(`${r.status}${r.headers["x-breaker-state"] ? ":" + r.headers["x-breaker-state"] : ""}`);
      }
      assert.deepEqual(statuses, [...Array(5).fill("500"), ...Array(35).fill("503:open")]);
      assert.equal(scenarios.count(host), 5, "the upstream saw exactly consecutiveFailures requests");
      const after = await perWorkerConnections(envoy);
      assert.equal(after.length, 2);
      for (let w = 0; w < 2; w++) assert.ok(after[w]! > before[w]!, `worker ${w} took some of the connections (${before} -> ${after})`);
      const labels = { destination_service: host };
      assert.equal(await metric("opens_total", labels), 1);
      await waitUntil("rejections_total reaches 35 (flushed each second)", () => metric("rejections_total", labels), (v) => v === 35, { timeoutMs: 5_000 });
      assert.equal(await metric("state", labels), 1);
      assert.equal(await metric("transitions_total", { ...labels, state: "open" }), 1);
    });

    test("an open breaker answers at once with 503, retry-after, the state header and details, and never retries", async () => {
      const host = "service-a.answer";
      scenarios.set(host, () => ({ status: 500 }));
      for (let i = 0; i < 5; i++) await request(`${envoy.url()}/`, { headers: { host } });
      const t0 = performance.now();
      const r = await request(`${envoy.url()}/`, { headers: { host, "x-envoy-retry-on": "5xx", "x-envoy-max-retries": "3" } });
      const ms = performance.now() - t0;
      assert.equal(r.status, 503);
      assert.equal(r.headers["retry-after"], "2");
      assert.equal(r.headers["x-breaker-state"], "open");
      assert.equal(r.body, "upstream circuit open\n");
      assert.equal(r.headers["x-envoy-upstream-service-time"], undefined, "the router never ran");
      assert.ok(ms < 500, `answered in ${ms.toFixed(1)} ms`);
      const grpc = await request(`${envoy.url()}/pkg.Service/Method`, { method: "POST", headers: { host, "content-type": "application/grpc" }, body: "" });
      assert.equal(grpc.status, 200, "gRPC: trailers-only");
      assert.equal(grpc.headers["grpc-status"], "14", "UNAVAILABLE");
      assert.equal(scenarios.count(host), 5);
    });

    test("after the open time probes reach a recovered upstream and the breaker closes", async () => {
      const host = "service-a.recover";
      let healthy = false;
      scenarios.set(host, () => ({ status: healthy ? 200 : 503 }));
      for (let i = 0; i < 5; i++) await fresh(envoy, host);
      const opened = performance.now();
      healthy = true;
      // While open: many requests, none reaches the upstream.
      while (performance.now() - opened < BASE_OPEN_MS - 300) {
        assert.equal((await fresh(envoy, host)).status, 503);
        await sleep(50);
      }
      assert.equal(scenarios.count(host), 5, "nothing reached the upstream while open");
      await sleep(BASE_OPEN_MS - (performance.now() - opened) + 250);
      // Half-open: of three concurrent requests two are admitted as probes (held at the upstream), the third is not.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      scenarios.set(host, () => gate.then(() => ({ status: 200 })));
      const inFlight = [fresh(envoy, host), fresh(envoy, host), fresh(envoy, host)];
      const first = await Promise.race(inFlight);
      assert.equal(`${first.status}:${first.headers["x-breaker-state"]}`, "503:half-open");
      release();
      const probes = await Promise.all(inFlight);
      assert.deepEqual(probes.map((p) => `${p.status}:${p.headers["x-breaker-state"] ?? ""}`).sort(), ["200:", "200:", "503:half-open"]);
      assert.equal(scenarios.count(host), 7, "exactly halfOpenProbes probes reached the upstream");
      // Two successes closed it: traffic flows again.
      scenarios.set(host, () => ({ status: 200 }));
      for (let i = 0; i < 10; i++) assert.equal((await fresh(envoy, host)).status, 200);
      const labels = { destination_service: host };
      assert.equal(await metric("probes_total", labels), 2);
      assert.equal(await metric("transitions_total", { ...labels, state: "half-open" }), 1);
      assert.equal(await metric("transitions_total", { ...labels, state: "closed" }), 1);
      assert.equal(await metric("state", labels), 0);
    });

    test("against a still-failing upstream a probe re-opens the breaker with the open time doubled", async () => {
      const host = "service-a.reopen";
      scenarios.set(host, () => ({ status: 502 }));
      for (let i = 0; i < 5; i++) await fresh(envoy, host);
      assert.equal((await fresh(envoy, host)).headers["retry-after"], "2");
      await sleep(BASE_OPEN_MS + 250);
      const probe = await fresh(envoy, host);
      const reopened = performance.now();
      assert.equal(probe.status, 502, "the probe reached the upstream and failed");
      assert.equal(scenarios.count(host), 6);
      const next = await fresh(envoy, host);
      assert.equal(next.status, 503);
      assert.equal(next.headers["retry-after"], "4", "2 x baseOpenMs");
      await sleep(2 * BASE_OPEN_MS - 400 - (performance.now() - reopened));
      assert.equal((await fresh(envoy, host)).status, 503, "still open after baseOpenMs");
      assert.equal(scenarios.count(host), 6);
      await sleep(2 * BASE_OPEN_MS + 250 - (performance.now() - reopened));
      assert.equal((await fresh(envoy, host)).status, 502, "the next probe after 2 x baseOpenMs");
      assert.equal(await metric("opens_total", { destination_service: host }), 3);
      assert.equal(await metric("transitions_total", { destination_service: host, state: "half-open" }), 2);
    });

    test("requests whose body the client withholds cannot hold half-open: normal requests probe and close the breaker", async () => {
      const host = "service-a.withheld";
      let healthy = false;
      scenarios.set(host, () => ({ status: healthy ? 200 : 503 }));
      for (let i = 0; i < 5; i++) await fresh(envoy, host);
      const labels = { destination_service: host };
      assert.equal(await metric("opens_total", labels), 1);
      healthy = true;
      // The gauge turns half-open (2) on the first tick after the open time: then the slow clients move first.
      await waitUntil(`${host} breaker half-open`, () => metric("state", labels), (v) => v === 2);
      const slow = [withheldBody(envoy, host), withheldBody(envoy, host), withheldBody(envoy, host)];
      try {
        // Two of them hold the probe slots a request with a body may take (halfOpenProbes 2); the third is refused.
        const third = await Promise.race(slow.map((s) => s.answer));
        assert.equal(third, 503, "one withheld request is refused: both slots are held");
        await waitUntil(`${host} probes_total`, () => metric("probes_total", labels), atLeast(2));
        const t0 = performance.now();
        const statuses: number[] = [];
        for (let i = 0; i < 10; i++) statuses.push((await fresh(envoy, host)).status);
        const ms = performance.now() - t0;
        assert.deepEqual(statuses, Array(10).fill(200), "body-less requests probe past the held slots; two successes close it");
        assert.ok(ms < 5_000, `closed and serving within ${ms.toFixed(0)} ms, not after probeTimeoutMs (15 s by default)`);
        assert.equal(await metric("transitions_total", { ...labels, state: "closed" }), 1);
        assert.equal(await metric("state", labels), 0);
      } finally {
        for (const s of slow) s.abort();
      }
      // The withheld requests, ended by their clients without an answer, count for nothing.
      for (let i = 0; i < 5; i++) assert.equal((await fresh(envoy, host)).status, 200);
      assert.equal(await metric("opens_total", labels), 1, "never tripped by what the slow clients did");
      assert.equal(scenarios.count(host), 5 + 15, "the upstream never saw a withheld request");
    });

    test("an upstream with 1% random failures at 200 requests/s for 30 s never opens the breaker", async () => {
      const host = "service-a.noisy";
      let seed = 12345;
      const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
      scenarios.set(host, () => ({ status: random() < 0.01 ? 503 : 200 }));
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const rps = 200;
      const seconds = 30;
      const outcomes: Record<string, number> = {};
      const pending: Promise<void>[] = [];
      const start = performance.now();
      try {
        for (let i = 0; i < rps * seconds; i++) {
          const due = start + (i * 1000) / rps;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          pending.push(
            new Promise<void>((resolve) => {
              const req = httpRequest(`${envoy.url()}/`, { agent, headers: { host } }, (res) => {
                const key = `${res.statusCode}${res.headers["x-breaker-state"] ? ":" + res.headers["x-breaker-state"] : ""}`;
                outcomes[key] = (outcomes[key] ?? 0) + 1;
                res.resume();
                res.on("end", resolve);
              });
              req.on("error", () => ((outcomes.error = (outcomes.error ?? 0) + 1), resolve()));
              req.end();
            }),
          );
        }
        await Promise.all(pending);
      } finally {
        agent.destroy();
      }
      const elapsed = (performance.now() - start) / 1000;
      assert.ok(elapsed < seconds + 5, `the load took ${elapsed.toFixed(1)} s`);
      assert.equal(outcomes["503:open"] ?? 0, 0, JSON.stringify(outcomes));
      assert.equal((outcomes["200"] ?? 0) + (outcomes["503"] ?? 0), rps * seconds, JSON.stringify(outcomes));
      assert.ok((outcomes["503"] ?? 0) > 20, `the upstream did fail about 1%: ${JSON.stringify(outcomes)}`);
      assert.equal(await metric("opens_total", { destination_service: host }), 0, "0 false opens");
    });

    test("an upstream whose latency jumps above slowCallMs trips the slow-call rule, with no failure at all", async () => {
      const host = "service-a.slow";
      let latencyMs = 0;
      scenarios.set(host, () => ({ status: 200, latencyMs }));
      for (let i = 0; i < 20; i++) assert.equal((await fresh(envoy, host)).status, 200);
      latencyMs = 800;
      const since = envoy.logOffset();
      const seen: number[] = [];
      // 20 slow calls next to 20 fast ones make 50%: in batches of 5 in parallel.
      for (let batch = 0; batch < 4; batch++) {
        const rs = await Promise.all(Array.from({ length: 5 }, () => fresh(envoy, host)));
        seen.push(...rs.map((r) => r.status));
      }
      assert.deepEqual(seen, Array(20).fill(200), "every slow call succeeded");
      const r = await fresh(envoy, host);
      assert.equal(r.status, 503);
      assert.equal(r.headers["x-breaker-state"], "open");
      assert.equal(scenarios.count(host), 40);
      await envoy.waitForLog(`outlier-breaker: ${host} -> open (slow-call-rate)`, { since });
    });
  });

  describe(`outlier-breaker fallback routing in Envoy (${mode} mode)`, () => {
    let primary: Upstream;
    let fallback: Upstream;
    let envoy: Envoy;

    before(async () => {
      primary = await startUpstream({ name: "service-a", status: 503 });
      fallback = await startUpstream({ name: "fallback" });
      envoy = await startEnvoy({
        config: FALLBACK, clusters: { "service-a": primary, fallback }, concurrency: 2, mode,
        mutate: configure({ consecutiveFailures: 5, baseOpenMs: 60000, maxOpenMs: 60000, fallbackHeader: "x-breaker-fallback" }),
      });
    });
    after(async () => {
      await envoy?.stop();
      await primary?.close();
      await fallback?.close();
    });

    test("while open, traffic goes to the fallback cluster through the re-selected route", async () => {
      const forged = await fresh(envoy, "service-a", { "x-breaker-fallback": "open" });
      assert.equal(forged.headers["x-upstream-name"], "service-a", "a client's own fallback header is removed");
      for (let i = 0; i < 4; i++) assert.equal((await fresh(envoy, "service-a")).status, 503);
      assert.equal(primary.hits.total, 5);
      for (let i = 0; i < 20; i++) {
        const r = await fresh(envoy, "service-a");
        assert.equal(r.status, 200);
        assert.equal(r.headers["x-upstream-name"], "fallback");
      }
      assert.equal(primary.hits.total, 5, "the failing cluster gets nothing while open");
      assert.equal(fallback.hits.total, 20);
      assert.equal(fallback.requests[0]!.headers["x-breaker-fallback"], "open");
      const series = await envoy.promSeries();
      assert.equal(seriesValue(series, "resilience_outlier_breaker_fallbacks_total", { destination_service: "service-a" }), 20);
      assert.equal(seriesValue(series, "resilience_outlier_breaker_rejections_total", { destination_service: "service-a" }), 0);
    });
  });

  describe(`outlier-breaker per upstream host in Envoy (${mode} mode)`, () => {
    let bad: Upstream;
    let good: Upstream;
    let envoy: Envoy;

    before(async () => {
      bad = await startUpstream({ name: "bad", status: 500 });
      good = await startUpstream({ name: "good" });
      envoy = await startEnvoy({
        config: PER_HOST, clusters: { "service-a": [bad, good] }, concurrency: 2, mode,
        mutate: configure({ perHost: true, destinationKey: "cluster", consecutiveFailures: 3, baseOpenMs: 60000, maxOpenMs: 60000 }),
      });
    });
    after(async () => {
      await envoy?.stop();
      await bad?.close();
      await good?.close();
    });

    test("the failing host's breaker opens and the healthy host keeps serving", async () => {
      const answers: Record<string, number> = {};
      for (let i = 0; i < 60; i++) {
        const r = await fresh(envoy, "service-a");
        const key = r.headers["x-breaker-state"] ? `503:${r.headers["x-breaker-state"]}` : `${r.status}:${r.headers["x-upstream-name"]}`;
        answers[key] = (answers[key] ?? 0) + 1;
      }
      assert.equal(bad.hits.total, 3, `the failing host saw consecutiveFailures requests: ${JSON.stringify(answers)}`);
      assert.equal(answers["500:bad"], 3);
      assert.ok((answers["503:open"] ?? 0) > 0, JSON.stringify(answers));
      assert.equal(answers["200:good"], good.hits.total);
      assert.equal((answers["200:good"] ?? 0) + 3 + (answers["503:open"] ?? 0), 60);
      const series = await envoy.promSeries();
      // Envoy 1.39+ puts an upstream filter's metrics at the root scope; 1.36 and 1.37 under the cluster's
      // (`cluster.<name>.wasmcustom...`, in Prometheus `envoy_cluster_wasmcustom_<name>{envoy_cluster_name=...}`).
      const opens = (host: Upstream) =>
        seriesValue(series, "resilience_outlier_breaker_opens_total", { destination_service: `service-a_127.0.0.1:${host.port}` }) ??
        seriesValue(series, "envoy_cluster_wasmcustom_resilience_outlier_breaker_opens_total",
          { destination_service: `service-a_127.0.0.1:${host.port}`, envoy_cluster_name: "service-a" });
      assert.equal(opens(bad), 1);
      assert.equal(opens(good), 0);
    });
  });

  describe(`outlier-breaker probe timing in Envoy (${mode} mode, two workers)`, () => {
    test("a slow but healthy upstream closes the breaker though every probe outlives probeTimeoutMs", async () => {
      // Probes take 1500 ms, the probe timeout is 1000 ms: each probe's slot is reclaimed before it answers, and its
      // late success still counts (before issue 10 a new epoch discarded it, and this breaker never closed).
      let slow = false;
      const up = await startUpstream({ respond: () => (slow ? { status: 200, latencyMs: 1500 } : { status: 503 }) });
      const cfg = {
        destinationKey: "authority", consecutiveFailures: 3, failureRateThreshold: 0, baseOpenMs: 1000, jitter: 0,
        halfOpenProbes: 1, halfOpenSuccesses: 2, probeTimeoutMs: 1000,
      };
      const envoy = await startEnvoy({ config: FILTER, clusters: { "service-a": up, "service-b": up }, concurrency: 2, mode, mutate: configure(cfg) });
      const host = "service-a.slow-healthy";
      const labels = { destination_service: host };
      const metric = async (name: string, l: Record<string, string> = labels) =>
        seriesValue(await envoy.promSeries(), `resilience_outlier_breaker_${name}`, l) ?? 0;
      let driving = true;
      let drivers: Promise<void>[] = [];
      const answers: number[] = [];
      try {
        for (let i = 0; i < 3; i++) await fresh(envoy, host);
        assert.equal(await metric("opens_total"), 1);
        slow = true;
        // Steady traffic, four requests in flight at a time, until the breaker closes.
        const drive = async () => {
          while (driving) {
            answers.push((await fresh(envoy, host)).status);
            if (answers.at(-1) !== 200) await sleep(50);
          }
        };
        drivers = [drive(), drive(), drive(), drive()];
        await waitUntil(`${host} closed`, () => metric("transitions_total", { ...labels, state: "closed" }), atLeast(1), { timeoutMs: 15_000 });
        driving = false;
        await Promise.all(drivers);
        assert.equal(await metric("opens_total"), 1, "no probe counted as a failure");
        assert.equal((await fresh(envoy, host)).status, 200);
        assert.ok(answers.includes(200), "probes came back 200");
        assert.ok(answers.every((s) => s === 200 || s === 503), `only answers and the breaker's refusals: ${[...new Set(answers)]}`);
      } finally {
        driving = false;
        await Promise.allSettled(drivers); // each finishes its request in flight (at most 1.5 s) before Envoy stops
        await envoy.stop();
        await up.close();
      }
    });
  });

  describe(`outlier-breaker configuration in Envoy (${mode} mode)`, () => {
    test("an empty configuration runs with the defaults: 5 failures in a row open the breaker", async () => {
      const up = await startUpstream({ status: 503 });
      const envoy = await startEnvoy({ config: FILTER, clusters: { "service-a": up, "service-b": up }, concurrency: 2, mode, mutate: configure("{}") });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 7; i++) statuses.push((await fresh(envoy, "service-a")).status);
        assert.deepEqual(statuses, [503, 503, 503, 503, 503, 503, 503]);
        assert.equal(up.hits.total, 5);
      } finally {
        await envoy.stop();
        await up.close();
      }
    });

    for (const [config, message] of [
      ['{"consecutiveFailure": 3}', 'outlier-breaker: unknown field "consecutiveFailure" (did you mean "consecutiveFailures"?)'],
      ['{"baseOpenMs": 10000, "maxOpenMs": 5000}', 'outlier-breaker: field "maxOpenMs": must be at least baseOpenMs (10000), got 5000'],
      ['{"slowCallRateThreshold": 50, "slowCallMs": 2000, "probeTimeoutMs": 1500}', 'outlier-breaker: field "probeTimeoutMs": must be above slowCallMs (2000) while slowCallRateThreshold is set'],
      ['{"probeTimeoutMs": 500}', 'outlier-breaker: field "probeTimeoutMs": expected an integer between 1000 and 86400000, got 500'],
    ]) {
      test(`Envoy refuses the configuration ${config}, naming the field`, async () => {
        const failure = await startEnvoyExpectFailure({ config: FILTER, mode, mutate: configure(config!) });
        assert.notEqual(failure.exitCode, 0);
        assert.ok(failure.log.includes(message!), `log lacks ${message}:\n${failure.log.slice(-2000)}`);
      });
    }
  });
}
