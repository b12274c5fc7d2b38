// service-metrics in Istio naming (envoy-configs/istio-naming.yaml) in a REAL Envoy scraped by a REAL Prometheus: a
// client-side sidecar (reporter "source") calls a server-side one (reporter "destination") over mTLS, and a caller
// without a sidecar calls the server side in plaintext (PERMISSIVE). The upstream answers 200, 404 and 503 by path.
//
// First the exact label values and counts on Envoy's own /stats/prometheus; then, under steady traffic, queries written
// here in the shape of Istio's standard Grafana dashboards (the dashboards themselves are not copied; README "In
// Istio" links them). Each query stands for the panels named beside it; every one must return series with the labels
// its legend uses and values of the expected shape.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  closeHttp, envoyModes, request, seriesValue, selectSeries, startEnvoy, startUpstream, waitFor, notYet,
  type Envoy, type PromSeries, type Upstream, type UpstreamAction,
} from "../harness/index.js";
import { startPrometheus, type Prometheus, type PromSample } from "./prometheus-helpers.js";
import { certs } from "./deploy-helpers.js";
import {
  ISTIO_BUCKETS, PRINCIPAL_A, PRINCIPAL_B, SERVICE, useCerts, dashboardQueries, expand, legendLabels,
} from "./istio-naming-helpers.js";

const CONFIG = "envoy-configs/istio-naming.yaml";
const WASM = { "service-metrics": "build/service-metrics.wasm" };

after(closeHttp);

/** The reviews app: 404 for /missing, 503 for /fail, else 200 with a body of `?size=` bytes (default 10). */
function reviews(req: { path: string; url: string }): UpstreamAction {
  if (req.path === "/missing") return { status: 404 };
  if (req.path === "/fail") return { status: 503 };
  // A gRPC method answering UNAVAILABLE without a body (a trailers-only reply: grpc-status in the headers).
  if (req.path === "/reviews.Reviews/Get") return { status: 200, headers: { "content-type": "application/grpc", "grpc-status": "14" }, body: "" };
  const size = Number(/[?&]size=(\d+)/.exec(req.url)?.[1] ?? 10);
  return { status: 200, body: "r".repeat(size) };
}

const values = (rows: PromSample[], label: string) => [...new Set(rows.map((r) => r.metric[label]))].sort();

for (const mode of await envoyModes()) {
  describe(`service-metrics Istio naming, mTLS and plaintext, scraped by Prometheus (${mode} mode)`, () => {
    let dir: string;
    let app: Upstream;
    let envoy: Envoy;
    let prom: Prometheus;
    let traffic: Promise<void> | undefined;
    let stopping = false;

    /** Through productpage's sidecar (client side), to reviews' sidecar over mTLS. */
    const viaSidecar = (path: string) => request(envoy.url("outbound") + path, { headers: { host: "reviews" } });
    /** A caller without a sidecar, straight to reviews' sidecar in plaintext. */
    const plaintext = (path: string) => request(envoy.url("inbound") + path, { headers: { host: "reviews" } });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "istio-naming-certs-"));
      certs(dir);
      app = await startUpstream({ name: "reviews", respond: reviews });
      envoy = await startEnvoy({
        config: CONFIG, wasm: WASM, clusters: { app }, concurrency: 2, mode, mounts: [dir],
        // Histograms are published at each stats flush: every second, so the test is short.
        mutate: (cfg) => { useCerts(cfg, dir); (cfg as any).stats_flush_interval = "1s"; },
      });
    });
    after(async () => {
      stopping = true;
      await traffic?.catch(() => undefined);
      await prom?.stop();
      await envoy?.stop();
      await app?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test("each side writes Istio's label values: reporter, principals, security policy, full service name, exact counts", async () => {
      const answers: number[] = [];
      for (const [path, n] of [["/ok", 6], ["/missing", 2], ["/fail", 3]] as const) {
        for (let i = 0; i < n; i++) answers.push((await viaSidecar(path)).status, (await plaintext(path)).status);
      }
      assert.deepEqual([...new Set(answers)].sort(), [200, 404, 503]);
      const common = {
        destination_service: SERVICE, destination_service_name: "reviews", destination_service_namespace: "default",
        destination_workload: "reviews-v1", destination_app: "reviews", destination_version: "v1",
        destination_canonical_service: "reviews", destination_canonical_revision: "v1", destination_cluster: "Kubernetes",
        destination_workload_namespace: "default", request_protocol: "http",
      };
      // Client side: its own identity (the certificate it presented) and the server's (the one it verified); the
      // shipped config judges the upstream connection (clientSecurityPolicy "observed"; Istio's proxies say "unknown").
      const source = {
        ...common, reporter: "source", source_workload: "productpage-v1", source_workload_namespace: "default",
        source_app: "productpage", source_version: "v1", source_canonical_service: "productpage",
        source_canonical_revision: "v1", source_cluster: "Kubernetes", source_principal: PRINCIPAL_A,
        destination_principal: PRINCIPAL_B, connection_security_policy: "mutual_tls",
      };
      // Server side over mTLS: the caller's identity and namespace from its certificate.
      const mtls = {
        ...common, reporter: "destination", source_workload: "unknown", source_workload_namespace: "default",
        source_principal: PRINCIPAL_A, destination_principal: PRINCIPAL_B, connection_security_policy: "mutual_tls",
      };
      // Server side, plaintext: nobody proved an identity.
      const plain = {
        ...common, reporter: "destination", source_workload: "unknown", source_workload_namespace: "unknown",
        source_principal: "unknown", destination_principal: "unknown", connection_security_policy: "none",
      };
      // Histograms reach /stats at Envoy's stats flush, istio_requests_total at each worker's tick (summed in the VM).
      const series = await waitFor("11 requests in each report's duration histogram and request counter", async () => {
        const s = await envoy.promSeries();
        const counts = [source, mtls, plain].map((l) => seriesValue(s, "istio_request_duration_milliseconds_count", l));
        const requests = [source, mtls, plain].map((l) => selectSeries(s, "istio_requests_total", l).reduce((n, x) => n + x.value, 0));
        return counts.every((c) => c === 11) && requests.every((c) => c === 11) ? s : notYet({ counts, requests });
      }, { timeoutMs: 20_000, intervalMs: 250 });
      for (const labels of [source, mtls, plain]) {
        const at = (code: string) => seriesValue(series, "istio_requests_total", { ...labels, response_code: code, response_flags: "-" });
        assert.deepEqual([at("200"), at("404"), at("503")], [6, 2, 3], JSON.stringify(labels));
        for (const h of ["istio_request_bytes", "istio_response_bytes"]) {
          assert.equal(seriesValue(series, `${h}_count`, labels), 11, `${h} ${JSON.stringify(labels)}`);
          assert.ok(seriesValue(series, `${h}_sum`, labels)! > 0, `${h} has sizes`);
        }
      }
      // grpc_response_status is empty for plain HTTP (Prometheus has no such label then), as Istio writes it.
      const one = selectSeries(series, "istio_requests_total", { ...plain, response_code: "200" })[0]!;
      assert.equal(one.labels.grpc_response_status ?? "", "");
      // Every istio_* series carries only tag-extracted labels: nothing leaked into a metric name.
      const names = new Set(series.map((s) => s.name).filter((n) => n.includes("istio")));
      assert.deepEqual([...names].filter((n) => !/^istio_(requests_total|request_duration_milliseconds_(bucket|sum|count)|request_bytes_(bucket|sum|count)|response_bytes_(bucket|sum|count))$/.test(n)), []);
      // No project-named request series in Istio naming.
      assert.equal(selectSeries(series, "resilience_requests_total").length, 0);
    });

    test("gRPC requests: request_protocol grpc and the status Envoy read, on both reports", async () => {
      const grpc = { method: "POST", body: "\0\0\0\0\0", headers: { host: "reviews", "content-type": "application/grpc", te: "trailers" } };
      for (let i = 0; i < 3; i++) {
        assert.equal((await request(envoy.url("outbound") + "/reviews.Reviews/Get", grpc)).status, 200);
      }
      await waitFor("3 gRPC requests with status 14 in each report", async () => {
        const s = await envoy.promSeries();
        const n = ["source", "destination"].map((reporter) =>
          seriesValue(s, "istio_requests_total", { reporter, request_protocol: "grpc", grpc_response_status: "14", response_code: "200" }));
        return n.every((x) => x === 3) ? n : notYet(n);
      }, { timeoutMs: 15_000, intervalMs: 250 });
    });

    test("the byte and duration histograms have Istio's bucket boundaries", async () => {
      const series = await envoy.promSeries();
      for (const h of ["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"]) {
        const les = [...new Set(selectSeries(series, `${h}_bucket`, { reporter: "source" }).map((s) => s.labels.le))];
        assert.deepEqual(les.filter((l) => l !== "+Inf").map(Number), ISTIO_BUCKETS, h);
        assert.ok(les.includes("+Inf"), `${h} has its +Inf bucket`);
      }
      // A request of 3000 bytes and a response of 2000 (headers included: a little more) land in their buckets.
      const r = await request(envoy.url("outbound") + "/ok?size=2000", { method: "POST", headers: { host: "reviews" }, body: "q".repeat(3000) });
      assert.equal(r.body.length, 2000);
      await waitFor("the 3000-byte request in (2500, 5000] and the 2000-byte response in (1000, 2500]", async () => {
        const s = await envoy.promSeries();
        const b = (h: string, le: string) => seriesValue(s, `${h}_bucket`, { reporter: "source", request_protocol: "http", le }) ?? 0;
        const seen = {
          request: b("istio_request_bytes", "5000") - b("istio_request_bytes", "2500"),
          response: b("istio_response_bytes", "2500") - b("istio_response_bytes", "1000"),
        };
        return seen.request === 1 && seen.response === 1 ? seen : notYet(seen);
      }, { timeoutMs: 15_000, intervalMs: 250 });
    });

    test("the buckets come from the bootstrap's histogram_bucket_settings (its matcher finds the filter's series)", async () => {
      // A second Envoy whose settings name other boundaries: the series follow them, so the shipped ones are in force.
      const other = await startEnvoy({
        config: CONFIG, wasm: WASM, clusters: { app }, concurrency: 1, mode, mounts: [dir],
        mutate: (cfg) => {
          useCerts(cfg, dir);
          (cfg as any).stats_flush_interval = "1s";
          (cfg as any).stats_config.histogram_bucket_settings[0].buckets = [7, 70, 700];
        },
      });
      try {
        await request(other.url("inbound") + "/ok", { headers: { host: "reviews" } });
        const les = await waitFor("the bytes histogram published with the mutated buckets", async () => {
          const s = await other.promSeries();
          const found = [...new Set(selectSeries(s, "istio_request_bytes_bucket", { reporter: "destination" }).map((x) => x.labels.le))];
          return found.length > 0 ? found : notYet(found);
        }, { timeoutMs: 15_000, intervalMs: 250 });
        assert.deepEqual(les, ["7", "70", "700", "+Inf"]);
      } finally {
        await other.stop();
      }
    });

    test("Istio's dashboard queries return data of the expected shape from a real Prometheus", async () => {
      prom = await startPrometheus({ targets: [new URL(envoy.adminUrl).host] });
      // Steady traffic for the rates: mTLS through the sidecar and plaintext straight in, 200, 404 and 503 answers.
      traffic = (async () => {
        let n = 0;
        while (!stopping) {
          const path = ["/ok", "/ok", "/missing", "/fail"][n++ % 4]!;
          await Promise.all([viaSidecar(path), plaintext(path)]);
          await new Promise((r) => setTimeout(r, 20)); // pacing, not a wait on a condition
        }
      })();
      const queryUntil = (what: string, expr: string, ok: (rows: PromSample[]) => boolean) =>
        waitFor(`${what}: ${expr}`, async () => {
          const rows = await prom.query(expr);
          return ok(rows) ? rows : notYet(rows.map((r) => ({ ...r.metric, value: r.value[1] })));
        }, { timeoutMs: 45_000, intervalMs: 500 });
      // Enough scrapes for a rate over the dashboards' windows.
      await queryUntil("three scrapes of both reports", "count_over_time(istio_requests_total[1m]) >= 3",
        (rows) => values(rows, "reporter").join() === "destination,source");

      for (const q of dashboardQueries) {
        const expr = expand(q.expr);
        const labels = legendLabels(q.legend);
        const rows = await queryUntil(q.panels, expr, (rows) =>
          rows.length > 0 && rows.every((r) => labels.every((l) => r.metric[l] !== undefined && r.metric[l] !== "")) &&
          rows.every((r) => Number.isFinite(Number(r.value[1]))) && (q.check?.(rows) ?? true));
        if (q.expect) q.expect(rows);
      }

      // The dashboards' variables (label_values), as Grafana asks Prometheus for them.
      const labelValues = (label: string, match: string) => prom.api<string[]>(`label/${label}/values?match[]=${encodeURIComponent(match)}`);
      assert.deepEqual(await labelValues("destination_service", "istio_requests_total"), [SERVICE]);
      assert.deepEqual(await labelValues("destination_workload", 'istio_requests_total{destination_workload_namespace=~"default"}'), ["reviews-v1"]);
      assert.deepEqual(await labelValues("source_workload", 'istio_requests_total{source_workload_namespace=~"default"}'), ["productpage-v1", "unknown"]);
      assert.deepEqual(await labelValues("destination_workload_namespace", "istio_requests_total"), ["default"]);
      assert.deepEqual(await labelValues("source_workload_namespace", "istio_requests_total"), ["default", "unknown"]);
      assert.deepEqual(await labelValues("source_cluster", "istio_requests_total"), ["Kubernetes", "unknown"]);
      assert.deepEqual(await labelValues("destination_cluster", "istio_requests_total"), ["Kubernetes"]);
      assert.deepEqual(await labelValues("reporter", "istio_requests_total"), ["destination", "source"]);
    });
  });
}
