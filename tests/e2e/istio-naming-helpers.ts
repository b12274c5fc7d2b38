// For tests/e2e/istio-naming.test.ts: the certificates' identities, Istio's buckets, and the queries written in the
// shape of Istio's standard Grafana dashboards (mesh, service, workload). The queries are this project's own, built
// from the facts of those dashboards (which labels they filter and group on, which series they read); the dashboard
// files are not copied. Each names the panels it stands for.
import assert from "node:assert/strict";
import type { Bootstrap } from "../harness/index.js";
import type { PromSample } from "./prometheus-helpers.js";

/** The identities build/certs.sh gives productpage's sidecar (service-a's certificate) and reviews' (service-b's). */
export const PRINCIPAL_A = "spiffe://cluster.local/ns/default/sa/service-a";
export const PRINCIPAL_B = "spiffe://cluster.local/ns/default/sa/service-b";
/** The called service's full name, as Istio writes destination_service. */
export const SERVICE = "reviews.default.svc.cluster.local";
/** Istio's duration (ms) and size (bytes) buckets: Envoy's defaults, which Istio's proxies keep. */
export const ISTIO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

const SHIPPED_CERTS = /^build\/out\/certs\/(service-[ab])/;

/** Points the bootstrap's SDS files at `dir` (a fresh build/certs.sh output), each side keeping its own identity. */
export function useCerts(cfg: Bootstrap, dir: string): void {
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      const o = node as Record<string, unknown>;
      for (const [k, v] of Object.entries(o)) {
        if (k === "path" && typeof v === "string" && SHIPPED_CERTS.test(v)) o[k] = v.replace(SHIPPED_CERTS, `${dir}/$1`);
        else walk(v);
      }
    }
  };
  walk(cfg);
}

/** Grafana's variables as a user picking reviews (served by reviews-v1, called by productpage-v1) would set them. */
const VARIABLES: Record<string, string> = { $service: SERVICE, $namespace: "default", $dstwl: "reviews-v1", $srcwl: "productpage-v1" };
export const expand = (expr: string) => Object.entries(VARIABLES).reduce((e, [k, v]) => e.split(k).join(v), expr);
/** The labels a legend names ({{label}}): each series a panel draws must carry them. */
export const legendLabels = (legend: string) => [...legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!);

export interface DashboardQuery {
  /** The dashboard panels this query stands for. */
  panels: string;
  expr: string;
  legend: string;
  /** A condition the rows must meet before the query counts as answered (Prometheus fills as it scrapes). */
  check?: (rows: PromSample[]) => boolean;
  /** Assertions on the answer. */
  expect?: (rows: PromSample[]) => void;
}

const codes = (rows: PromSample[]) => [...new Set(rows.map((r) => r.metric.response_code))].sort().join();
const allCodes = (rows: PromSample[]) => codes(rows) === "200,404,503";
const num = (r: PromSample) => Number(r.value[1]);
const positive = (rows: PromSample[]) => rows.every((r) => num(r) > 0);
/** The traffic is two /ok, one /missing, one /fail per round: three in four are not 5xx. */
const successShare = (rows: PromSample[]) => rows.every((r) => num(r) > 0.6 && num(r) < 0.9);
const only = (label: string, value: string) => (rows: PromSample[]) =>
  assert.deepEqual([...new Set(rows.map((r) => r.metric[label]))], [value], `${label} in ${JSON.stringify(rows.map((r) => r.metric))}`);

const incoming = (policy: string) => `reporter="destination", connection_security_policy${policy}, destination_service=~"$service"`;
const outgoing = `reporter="source", source_workload=~"$srcwl", source_workload_namespace=~"$namespace", destination_principal=~"spiffe.*"`;
/** The workload dashboard's other outbound mTLS split: on the client side's policy (clientSecurityPolicy "observed"). */
const outgoingPolicy = `reporter="source", connection_security_policy="mutual_tls", source_workload=~"$srcwl", source_workload_namespace=~"$namespace"`;
const quantiles = (h: string, filter: string, by: string, panels: string, legend: string): DashboardQuery[] =>
  [0.5, 0.9, 0.99].map((q) => ({
    panels: `${panels} (P${q * 100})`, legend, check: positive,
    expr: `histogram_quantile(${q}, sum(irate(${h}_bucket{${filter}}[1m])) by (${by}le))`,
  }));

export const dashboardQueries: DashboardQuery[] = [
  // ---- Mesh dashboard
  { panels: "Mesh: Global Request Volume", legend: "", check: positive,
    expr: `round(sum(irate(istio_requests_total{reporter="source"}[1m])), 0.001)` },
  { panels: "Mesh: Global Success Rate (non-5xx responses)", legend: "", check: successShare,
    expr: `sum(rate(istio_requests_total{reporter="source", response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="source"}[1m]))` },
  { panels: "Mesh: 4xxs", legend: "", check: positive,
    expr: `sum(irate(istio_requests_total{reporter="source", response_code=~"4.*"}[1m]))` },
  { panels: "Mesh: 5xxs", legend: "", check: positive,
    expr: `sum(irate(istio_requests_total{reporter="source", response_code=~"5.*"}[1m]))` },
  { panels: "Mesh: HTTP/GRPC Workloads table, Requests column", legend: "{{ destination_workload_var }} {{ destination_service }}", check: positive,
    expr: `label_join(sum(rate(istio_requests_total{reporter="source", response_code="200"}[1m])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")`,
    expect: only("destination_workload_var", "reviews-v1.default") },
  ...[0.5, 0.9, 0.99].map((q): DashboardQuery => ({
    panels: `Mesh: HTTP/GRPC Workloads table, P${q * 100} Latency column`, legend: "{{ destination_workload_var }}", check: positive,
    expr: `label_join((histogram_quantile(${q}, sum(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])) by (le, destination_workload, destination_workload_namespace)) / 1000), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")`,
  })),
  { panels: "Mesh: HTTP/GRPC Workloads table, Success Rate column", legend: "{{ destination_workload_var }}", check: successShare,
    expr: `label_join((sum(rate(istio_requests_total{reporter="source", response_code!~"5.*"}[1m])) by (destination_workload, destination_workload_namespace) / sum(rate(istio_requests_total{reporter="source"}[1m])) by (destination_workload, destination_workload_namespace)), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")` },

  // ---- Service dashboard ($service = reviews.default.svc.cluster.local)
  { panels: "Service: Client Request Volume", legend: "", check: positive,
    expr: `round(sum(irate(istio_requests_total{reporter="source", destination_service=~"$service"}[1m])), 0.001)` },
  { panels: "Service: Client Success Rate (non-5xx responses)", legend: "", check: successShare,
    expr: `sum(irate(istio_requests_total{reporter="source", destination_service=~"$service", response_code!~"5.*"}[1m])) / sum(irate(istio_requests_total{reporter="source", destination_service=~"$service"}[1m]))` },
  ...quantiles("istio_request_duration_milliseconds", `reporter="source", destination_service=~"$service"`, "", "Service: Client Request Duration", ""),
  { panels: "Service: Server Request Volume", legend: "", check: positive,
    expr: `round(sum(irate(istio_requests_total{reporter="destination", destination_service=~"$service"}[1m])), 0.001)` },
  { panels: "Service: Server Success Rate (non-5xx responses)", legend: "", check: successShare,
    expr: `sum(irate(istio_requests_total{reporter="destination", destination_service=~"$service", response_code!~"5.*"}[1m])) / sum(irate(istio_requests_total{reporter="destination", destination_service=~"$service"}[1m]))` },
  ...quantiles("istio_request_duration_milliseconds", `reporter="destination", destination_service=~"$service"`, "", "Service: Server Request Duration", ""),
  ...quantiles("istio_request_bytes", `reporter="destination", destination_service=~"$service"`, "", "Service: Server Request Size", ""),
  ...quantiles("istio_response_bytes", `reporter="destination", destination_service=~"$service"`, "", "Service: Server Response Size", ""),
  // Client workloads section: the mTLS split on the server's report.
  { panels: "Service: Incoming Requests By Source And Response Code (mTLS)", check: allCodes,
    legend: "{{ source_workload }}.{{ source_workload_namespace }} : {{ response_code }} (mTLS)",
    expr: `round(sum(irate(istio_requests_total{${incoming(`="mutual_tls"`)}}[1m])) by (source_workload, source_workload_namespace, response_code), 0.001)`,
    expect: only("source_workload_namespace", "default") },
  { panels: "Service: Incoming Requests By Source And Response Code (non-mTLS)", check: allCodes,
    legend: "{{ source_workload }}.{{ source_workload_namespace }} : {{ response_code }}",
    expr: `round(sum(irate(istio_requests_total{${incoming(`!="mutual_tls"`)}}[1m])) by (source_workload, source_workload_namespace, response_code), 0.001)`,
    expect: only("source_workload_namespace", "unknown") },
  { panels: "Service: Incoming Success Rate (non-5xx responses) By Source (mTLS)", check: successShare,
    legend: "{{ source_workload }}.{{ source_workload_namespace }} (mTLS)",
    expr: `sum(irate(istio_requests_total{${incoming(`="mutual_tls"`)}, response_code!~"5.*"}[1m])) by (source_workload, source_workload_namespace) / sum(irate(istio_requests_total{${incoming(`="mutual_tls"`)}}[1m])) by (source_workload, source_workload_namespace)` },
  { panels: "Service: Incoming Success Rate (non-5xx responses) By Source (non-mTLS)", check: successShare,
    legend: "{{ source_workload }}.{{ source_workload_namespace }}",
    expr: `sum(irate(istio_requests_total{${incoming(`!="mutual_tls"`)}, response_code!~"5.*"}[1m])) by (source_workload, source_workload_namespace) / sum(irate(istio_requests_total{${incoming(`!="mutual_tls"`)}}[1m])) by (source_workload, source_workload_namespace)` },
  ...["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"].flatMap((h) => [`="mutual_tls"`, `!="mutual_tls"`].flatMap((p) =>
    quantiles(h, incoming(p), "source_workload, source_workload_namespace, ",
      `Service: Incoming ${h.replace("istio_", "")} By Source (${p.startsWith("=") ? "mTLS" : "non-mTLS"})`,
      "{{ source_workload }}.{{ source_workload_namespace }}"))),
  { panels: "Service: Incoming Requests By Source Principal (mTLS identities)", legend: "{{ source_principal }}", check: positive,
    expr: `sum(irate(istio_requests_total{reporter="destination", destination_service=~"$service", source_principal=~"spiffe.*"}[1m])) by (source_principal)`,
    expect: only("source_principal", "spiffe://cluster.local/ns/default/sa/service-a") },
  // Service workloads section.
  { panels: "Service: Incoming Requests By Destination Workload And Response Code (mTLS)", check: allCodes,
    legend: "{{ destination_workload }}.{{ destination_workload_namespace }} : {{ response_code }} (mTLS)",
    expr: `round(sum(irate(istio_requests_total{${incoming(`="mutual_tls"`)}, destination_workload=~"$dstwl", destination_workload_namespace=~"$namespace"}[1m])) by (destination_workload, destination_workload_namespace, response_code), 0.001)` },
  ...quantiles("istio_request_duration_milliseconds", `${incoming(`="mutual_tls"`)}, destination_workload=~"$dstwl"`,
    "destination_workload, destination_workload_namespace, ", "Service: Incoming Request Duration By Service Workload (mTLS)",
    "{{ destination_workload }}.{{ destination_workload_namespace }}"),

  // ---- Workload dashboard (inbound: $dstwl = reviews-v1; outbound: $srcwl = productpage-v1)
  { panels: "Workload: Incoming Request Volume", legend: "", check: positive,
    expr: `round(sum(irate(istio_requests_total{reporter="destination", destination_workload_namespace=~"$namespace", destination_workload=~"$dstwl"}[1m])), 0.001)` },
  { panels: "Workload: Incoming Success Rate (non-5xx responses)", legend: "", check: successShare,
    expr: `sum(irate(istio_requests_total{reporter="destination", destination_workload_namespace=~"$namespace", destination_workload=~"$dstwl", response_code!~"5.*"}[1m])) / sum(irate(istio_requests_total{reporter="destination", destination_workload_namespace=~"$namespace", destination_workload=~"$dstwl"}[1m]))` },
  ...quantiles("istio_request_duration_milliseconds", `reporter="destination", destination_workload=~"$dstwl", destination_workload_namespace=~"$namespace"`, "",
    "Workload: Request Duration", ""),
  { panels: "Workload: Inbound Workloads, Incoming Requests By Source And Response Code (mTLS)", check: allCodes,
    legend: "{{ source_workload }}.{{ source_workload_namespace }} : {{ response_code }} (mTLS)",
    expr: `round(sum(irate(istio_requests_total{connection_security_policy="mutual_tls", destination_workload_namespace=~"$namespace", destination_workload=~"$dstwl", reporter="destination"}[1m])) by (source_workload, source_workload_namespace, response_code), 0.001)` },
  { panels: "Workload: Inbound Workloads, Incoming Requests By Source And Response Code (non-mTLS)", check: allCodes,
    legend: "{{ source_workload }}.{{ source_workload_namespace }} : {{ response_code }}",
    expr: `round(sum(irate(istio_requests_total{connection_security_policy!="mutual_tls", destination_workload_namespace=~"$namespace", destination_workload=~"$dstwl", reporter="destination"}[1m])) by (source_workload, source_workload_namespace, response_code), 0.001)` },
  ...["istio_request_bytes", "istio_response_bytes"].flatMap((h) => quantiles(h,
    `reporter="destination", connection_security_policy="mutual_tls", destination_workload=~"$dstwl", destination_workload_namespace=~"$namespace"`,
    "source_workload, source_workload_namespace, ", `Workload: Inbound ${h.replace("istio_", "")} By Source (mTLS)`,
    "{{ source_workload }}.{{ source_workload_namespace }}")),
  // Outbound services section: the client side's mTLS split is on the destination's identity (its policy is "unknown").
  { panels: "Workload: Outbound Services, Outgoing Requests By Destination And Response Code (mTLS)", check: allCodes,
    legend: "{{ destination_service }} : {{ response_code }} (mTLS)",
    expr: `round(sum(irate(istio_requests_total{${outgoing}}[1m])) by (destination_service, response_code), 0.001)`,
    expect: only("destination_service", SERVICE) },
  { panels: "Workload: Outbound Services, Outgoing Success Rate (non-5xx responses) By Destination Service (mTLS)", check: successShare,
    legend: "{{ destination_service }} (mTLS)",
    expr: `sum(irate(istio_requests_total{${outgoing}, response_code!~"5.*"}[1m])) by (destination_service) / sum(irate(istio_requests_total{${outgoing}}[1m])) by (destination_service)` },
  ...["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"].flatMap((h) =>
    quantiles(h, outgoing, "destination_service, ", `Workload: Outbound ${h.replace("istio_", "")} By Destination Service (mTLS identity)`, "{{ destination_service }}")),
  { panels: "Workload: Outbound Services, Outgoing Success Rate (non-5xx responses) By Destination (mTLS policy)", check: successShare,
    legend: "{{ destination_service }} (mTLS)",
    expr: `sum(irate(istio_requests_total{${outgoingPolicy}, response_code!~"5.*"}[1m])) by (destination_service) / sum(irate(istio_requests_total{${outgoingPolicy}}[1m])) by (destination_service)` },
  ...["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"].flatMap((h) =>
    quantiles(h, outgoingPolicy, "destination_service, ", `Workload: Outbound ${h.replace("istio_", "")} By Destination (mTLS policy)`, "{{ destination_service }}")),
];
