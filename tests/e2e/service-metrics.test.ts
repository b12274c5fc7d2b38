// service-metrics in a real Envoy (every mode envoyModes() offers): exact counts, labels and histogram buckets on
// /stats/prometheus, promtool's verdict, the label cap, memory across 100k requests, and config refusal.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import {
  closeHttp, envoyModes, parsePrometheus, request, selectSeries, seriesValue, startEnvoy, startEnvoyExpectFailure,
  startUpstream, waitFor, notYet, type Envoy, type PromSeries, type Upstream, type UpstreamAction,
} from "../harness/index.js";
import { Agent } from "undici";

const CONFIG = "envoy-configs/service-metrics.yaml";
const WASM = { "service-metrics": "build/service-metrics.wasm" };

after(closeHttp);

/** Scripted behaviour by path, the same on both services. */
function byPath(req: { path: string }): UpstreamAction {
  switch (req.path) {
    case "/missing": return { status: 404 };
    case "/fail": return { status: 503 };
    case "/reset": return { reset: true };
    case "/slow": return { status: 200, latencyMs: 300 };
    default: return { status: 200 };
  }
}

/** Sets the filter's JSON configuration in the parsed bootstrap. */
function withPluginConfig(json: string) {
  return (cfg: any) => {
    const hcm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    hcm.http_filters[0].typed_config.config.configuration.value = json;
  };
}

/** Adds a route answered by Envoy itself (no upstream attempt): a local reply. */
function withDirectResponseRoute(cfg: any) {
  const hcm = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  hcm.route_config.virtual_hosts[0].routes.unshift({ match: { prefix: "/direct" }, direct_response: { status: 429 } });
}

async function send(envoy: Envoy, host: string, path: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  // Small parallel batches so both workers serve traffic.
  for (let i = 0; i < n; i += 4) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 4); j++) batch.push(request(envoy.url() + path, { headers: { host } }));
    for (const r of await Promise.all(batch)) statuses.push(r.status);
  }
  return statuses;
}

/** Waits until the histogram of `service` has `count` samples (Envoy publishes histograms at stats flush). */
async function waitForHistogram(envoy: Envoy, name: string, labels: Record<string, string>, count: number): Promise<PromSeries[]> {
  return waitFor(`${name}_count${JSON.stringify(labels)} to reach ${count}`, async () => {
    const series = await envoy.promSeries();
    const n = seriesValue(series, `${name}_count`, labels);
    return n === count ? series : notYet(n);
  }, { timeoutMs: 15_000, intervalMs: 250 });
}

/** Waits until resilience_requests_total, summed over all series, reaches `total` (workers flush counters on their tick). */
async function waitForRequestTotal(envoy: Envoy, total: number): Promise<PromSeries[]> {
  return waitFor(`resilience_requests_total to sum to ${total}`, async () => {
    const series = await envoy.promSeries();
    const n = selectSeries(series, "resilience_requests_total").reduce((s, x) => s + x.value, 0);
    return n >= total ? series : notYet(n);
  }, { timeoutMs: 15_000, intervalMs: 250 });
}

function promtool(text: string, sub: "metrics"): { status: number; out: string } {
  const r = spawnSync("promtool", ["check", sub], { input: text, encoding: "utf8" });
  if (r.error) throw new Error(`promtool not runnable (Debian package "prometheus"): ${r.error.message}`);
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

for (const mode of await envoyModes()) {
  describe(`service-metrics in ${mode} mode`, () => {
    let a: Upstream;
    let b: Upstream;
    let envoy: Envoy;

    before(async () => {
      a = await startUpstream({ name: "a", respond: byPath });
      b = await startUpstream({ name: "b", respond: byPath });
      envoy = await startEnvoy({
        config: CONFIG, wasm: WASM, clusters: { "service-a": a, "service-b": b }, concurrency: 2, mode,
        mutate: withDirectResponseRoute,
      });
    });
    after(async () => {
      await envoy?.stop();
      await a?.close();
      await b?.close();
    });

    test("counts every request per service, code and flag exactly, with duration buckets", async () => {
      const plan: Array<[string, string, number]> = [
        ["service-a", "/ok", 20], ["service-a", "/missing", 7], ["service-a", "/fail", 5], ["service-a", "/reset", 3],
        ["service-a", "/slow", 2], ["service-a:8080", "/direct", 4],
        ["service-b", "/ok", 11], ["service-b", "/fail", 4], ["service-b", "/reset", 2],
      ];
      for (const [host, path, n] of plan) await send(envoy, host, path, n);

      const base = { reporter: "outbound" };
      const aL = { ...base, destination_service: "service-a" };
      const bL = { ...base, destination_service: "service-b" };
      await waitForHistogram(envoy, "resilience_request_duration", aL, 41);
      // Counters reach Envoy on each worker's tick (summed in the VM), histograms at the stats flush: wait for both.
      const series = await waitForRequestTotal(envoy, 58);
      const req = (labels: Record<string, string>) => seriesValue(series, "resilience_requests_total", labels);
      assert.equal(req({ ...aL, response_code: "200", response_code_class: "2xx", response_flags: "-" }), 22);
      assert.equal(req({ ...aL, response_code: "404", response_code_class: "4xx", response_flags: "-" }), 7);
      assert.equal(req({ ...aL, response_code: "503", response_code_class: "5xx", response_flags: "-" }), 5);
      assert.equal(req({ ...aL, response_code: "503", response_code_class: "5xx", response_flags: "UC" }), 3);
      assert.equal(req({ ...aL, response_code: "429", response_code_class: "4xx", response_flags: "-" }), 4);
      assert.equal(req({ ...bL, response_code: "200", response_code_class: "2xx", response_flags: "-" }), 11);
      assert.equal(req({ ...bL, response_code: "503", response_code_class: "5xx", response_flags: "-" }), 4);
      assert.equal(req({ ...bL, response_code: "503", response_code_class: "5xx", response_flags: "UC" }), 2);
      const all = selectSeries(series, "resilience_requests_total").reduce((s, x) => s + x.value, 0);
      assert.equal(all, 58, "no request counted twice or lost");

      assert.equal(seriesValue(series, "resilience_local_replies_total", aL), 4);
      assert.equal(seriesValue(series, "resilience_upstream_failures_total", aL), 3);
      assert.equal(seriesValue(series, "resilience_upstream_failures_total", bL), 2);

      // Two slow (300 ms) requests: above the 250 ms bucket, inside 500 ms.
      const bucket = (le: string) => seriesValue(series, "resilience_request_duration_bucket", { ...aL, le });
      assert.equal(bucket("+Inf"), 41);
      assert.equal((bucket("500") ?? 0) - (bucket("250") ?? 0), 2);
      assert.equal(bucket("250"), 39);
      await waitForHistogram(envoy, "resilience_request_duration", bL, 17);
      assert.equal(a.hits.total, 37, "service-a saw every non-local request once (no retries)");
      assert.equal(b.hits.total, 17);
    });

    test("the scrape passes promtool, whose lint finds nothing in our series but missing HELP", async () => {
      const text = await envoy.prometheus();
      const r = promtool(text, "metrics");
      const lines = r.out.split("\n").filter((l) => l.trim().length > 0);
      // Parse errors come without a metric name in front; lint findings start with the metric's name.
      const parseErrors = lines.filter((l) => /error while linting|parse/i.test(l));
      assert.deepEqual(parseErrors, [], "the scrape parses cleanly");
      const ours = lines.filter((l) => /^resilience_/.test(l.trim()));
      assert.ok(ours.length > 0, "promtool saw our series");
      const problems = ours.filter((l) => !/ no help text$/.test(l));
      assert.deepEqual(problems, [], "lint findings in the project's series");
    });
  });

  describe(`service-metrics limits in ${mode} mode`, () => {
    let a: Upstream;
    let envoy: Envoy;
    const cap = 20;

    before(async () => {
      a = await startUpstream({ name: "a" });
      envoy = await startEnvoy({
        config: CONFIG, wasm: WASM, clusters: { "service-a": a, "service-b": a }, concurrency: 2, mode,
        mutate: withPluginConfig(JSON.stringify({ maxServices: cap })),
      });
    });
    after(async () => {
      await envoy?.stop();
      await a?.close();
    });

    test("1,000 random :authority values create at most maxServices series plus other", async () => {
      const hosts = Array.from({ length: 1000 }, (_, i) => `h${i}-${Math.random().toString(36).slice(2, 8)}`);
      for (let i = 0; i < hosts.length; i += 20) {
        await Promise.all(hosts.slice(i, i + 20).map((h) => request(envoy.url() + "/", { headers: { host: h } })));
      }
      const series = selectSeries(await waitForRequestTotal(envoy, 1000), "resilience_requests_total");
      const services = new Set(series.map((s) => s.labels.destination_service));
      assert.ok(services.has("other"), "values beyond the cap fold into other");
      assert.ok(services.size <= cap + 1, `${services.size} distinct destination_service values, cap ${cap}`);
      assert.equal(series.reduce((s, x) => s + x.value, 0), 1000, "every request still counted");
    });

    test("the module's memory gauge is flat across 100,000 requests", { timeout: 300_000 }, async () => {
      const gauge = async () => {
        const v = seriesValue(await envoy.promSeries(), "resilience_wasm_memory_bytes", { filter: "service-metrics" });
        assert.ok(v !== undefined && v > 0, "memory gauge present");
        return v;
      };
      const agent = new Agent({ connections: 16, pipelining: 1, keepAliveTimeout: 30_000 });
      const url = envoy.url() + "/";
      const hosts = ["service-a", "service-b"];
      const blast = async (n: number) => {
        let next = 0;
        const worker = async () => {
          while (next < n) {
            const i = next++;
            const r = await agent.request({ origin: url, path: "/", method: "GET", headers: { host: hosts[i & 1] } });
            await r.body.dump();
            assert.equal(r.statusCode, 200);
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
      };
      try {
        // Not a wait for a condition: the gauge must NOT change, and the housekeeping tick that would change it is
        // not observable, so each reading comes after an observation window of two ticks.
        const twoTicks = () => new Promise((r) => setTimeout(r, 2_500));
        await blast(10_000); // warm-up: series defined, GC at its working size
        await twoTicks();
        const before = await gauge();
        await blast(100_000);
        await twoTicks();
        const afterBytes = await gauge();
        console.log(`# resilience_wasm_memory_bytes{filter="service-metrics"}: ${before} before, ${afterBytes} after 100,000 requests`);
        assert.equal(afterBytes, before, "linear memory grew across 100k requests");
      } finally {
        await agent.close();
      }
    });
  });

  describe(`service-metrics configuration errors in ${mode} mode`, () => {
    test("a malformed config makes Envoy refuse to start, and its log names the field", async () => {
      const r = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: withPluginConfig('{"reporter": "sideways"}'),
      });
      assert.notEqual(r.exitCode, 0);
      assert.match(r.log, /service-metrics: field "reporter": expected one of .*got "sideways"/);
      assert.match(r.log, /Unable to create Wasm plugin/);
    });

    test("a misspelled key is refused, not ignored", async () => {
      const r = await startEnvoyExpectFailure({
        config: CONFIG, wasm: WASM, concurrency: 2, mode,
        mutate: withPluginConfig('{"maxService": 10}'),
      });
      assert.notEqual(r.exitCode, 0);
      assert.match(r.log, /unknown field "maxService"/);
    });
  });

  describe(`service-metrics Istio-compatible naming in ${mode} mode`, () => {
    let a: Upstream;
    let envoy: Envoy;
    before(async () => {
      a = await startUpstream({ name: "a", respond: byPath });
      envoy = await startEnvoy({
        config: CONFIG, wasm: WASM, clusters: { "service-a": a, "service-b": a }, concurrency: 2, mode,
        mutate: withPluginConfig(JSON.stringify({ naming: "istio", reporter: "inbound", sourceWorkload: "gateway" })),
      });
    });
    after(async () => {
      await envoy?.stop();
      await a?.close();
    });

    test("exports istio_requests_total and istio_request_duration_milliseconds with Istio's labels", async () => {
      await send(envoy, "service-b", "/ok", 3);
      await send(envoy, "service-b", "/fail", 2);
      // Istio's values: the server side reports as "destination"; a short name is completed to the service's full name.
      const labels = {
        reporter: "destination", source_workload: "gateway", destination_service: "service-b.default.svc.cluster.local",
        destination_service_name: "service-b", destination_service_namespace: "default", connection_security_policy: "none",
      };
      const series = await waitForHistogram(envoy, "istio_request_duration_milliseconds", labels, 5);
      assert.equal(seriesValue(series, "istio_requests_total", { ...labels, response_code: "200", response_flags: "-" }), 3);
      assert.equal(seriesValue(series, "istio_requests_total", { ...labels, response_code: "503", response_flags: "-" }), 2);
      assert.equal(selectSeries(series, "resilience_requests_total").length, 0, "no project-prefixed request series in istio mode");
    });
  });
}
