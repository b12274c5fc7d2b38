// service-metrics in Istio naming, in the host emulator (two workers, the compiled module): Istio's label values on each
// side, identities from the connection's certificates, the security policy, gRPC, the byte histograms, the caps on
// values a client could inflate, and the host calls per request of both namings. Needs `npm run build` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, LogLevel, MetricType, type PropertyValue, type Vm } from "../emulator/index.js";

const wasm = fileURLToPath(new URL("../../build/service-metrics.wasm", import.meta.url));
const A = "spiffe://cluster.local/ns/shop/sa/frontend";
const B = "spiffe://cluster.local/ns/default/sa/reviews";

function start(config: Record<string, unknown>) {
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
  const host = new Host();
  const vms = host.startVms(wasm, 2, { pluginConfig: JSON.stringify({ naming: "istio", ...config }), pluginName: "service-metrics", rootId: "service-metrics" });
  return { host, vms };
}

/** One routed request through `vm`, with the connection's and completion's properties in `props`. */
function send(vm: Vm, authority: string, code: number, props: Record<string, PropertyValue> = {}, headers: Record<string, string> = {}) {
  const s = vm.newStream({ properties: { "xds.cluster_name": "routed", ...props } });
  s.requestHeaders({ ":authority": authority, ":path": "/", ":method": "GET", ...headers }, true);
  s.responseHeaders({ ":status": String(code) }, true);
  s.finish();
  return s;
}

/** Lets a housekeeping tick pass (one second): request counters are summed per worker and handed to Envoy then. */
function flushed(host: Host): Host {
  assert.ok(host.advanceMs(1000) > 0, "housekeeping ticks fired");
  return host;
}

/** A tag-encoded stat name back to its labels and metric. */
function parse(name: string): { metric: string; labels: Record<string, string> } {
  const parts = name.split(";.;");
  const metric = parts.pop()!;
  return { metric, labels: Object.fromEntries(parts.map((p) => p.split("=.=") as [string, string])) };
}

/** The one series of `metric` whose labels include `labels`. */
function find(host: Host, type: MetricType, metric: string, labels: Record<string, string>): string {
  const found = host.metricNames(type).filter((n) => {
    const p = parse(n);
    return p.metric === metric && Object.entries(labels).every(([k, v]) => p.labels[k] === v);
  });
  assert.equal(found.length, 1, `${metric} ${JSON.stringify(labels)}: ${found.length} series\n${host.metricNames(type).join("\n")}`);
  return found[0]!;
}

const ISTIO_LABELS = [
  "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
  "source_canonical_service", "source_canonical_revision", "source_cluster", "destination_workload",
  "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
  "destination_service", "destination_service_name", "destination_service_namespace", "destination_canonical_service",
  "destination_canonical_revision", "destination_cluster", "request_protocol", "connection_security_policy",
];

describe("service-metrics Istio naming in two emulated workers", () => {
  test("the server side over mTLS: reporter destination, both identities, mutual_tls, the caller's namespace from its SAN", () => {
    const { host, vms } = start({ reporter: "inbound", destinationWorkload: "reviews-v1", destinationNamespace: "default", destinationApp: "reviews" });
    const mtls = { "connection.uri_san_peer_certificate": A, "connection.uri_san_local_certificate": B };
    send(vms[0]!, "reviews", 200, mtls);
    send(vms[1]!, "reviews:9080", 503, mtls);
    const labels = {
      reporter: "destination", source_principal: A, destination_principal: B, connection_security_policy: "mutual_tls",
      source_workload: "unknown", source_workload_namespace: "shop", destination_workload: "reviews-v1",
      destination_workload_namespace: "default", destination_app: "reviews", destination_version: "unknown",
      destination_canonical_revision: "latest", source_canonical_revision: "latest",
      destination_service: "reviews.default.svc.cluster.local", destination_service_name: "reviews",
      destination_service_namespace: "default", request_protocol: "http",
    };
    const ok = find(host, MetricType.Counter, "istio_requests_total", { ...labels, response_code: "200", response_flags: "-", grpc_response_status: "" });
    assert.equal(flushed(host).counter(ok), 1n);
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { ...labels, response_code: "503" })), 1n);
    // Istio's full label set, in the counter and (without the response labels) in the three histograms.
    assert.deepEqual(Object.keys(parse(ok).labels).sort(), [...ISTIO_LABELS, "response_code", "grpc_response_status", "response_flags"].sort());
    for (const h of ["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"]) {
      assert.deepEqual(Object.keys(parse(find(host, MetricType.Histogram, h, labels)).labels).sort(), [...ISTIO_LABELS].sort(), h);
    }
  });

  test("the server side in plaintext: policy none, identities unknown; one TLS end without a SAN is not mutual TLS", () => {
    const { host, vms } = start({ reporter: "destination", sourceNamespace: "legacy" });
    send(vms[0]!, "reviews", 404);
    send(vms[0]!, "reviews", 404, { "connection.uri_san_local_certificate": B }); // TLS, the caller proved nothing
    const plain = { reporter: "destination", connection_security_policy: "none", source_principal: "unknown", response_code: "404" };
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { ...plain, destination_principal: "unknown", source_workload_namespace: "legacy" })), 1n);
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { ...plain, destination_principal: B })), 1n);
  });

  test("the client side: reporter source, policy unknown, identities from the upstream connection, the callee's namespace from its SAN", () => {
    const { host, vms } = start({ reporter: "source", sourceWorkload: "frontend-v2", sourceNamespace: "shop", sourceCluster: "east" });
    send(vms[0]!, "reviews", 200, { "upstream.uri_san_local_certificate": A, "upstream.uri_san_peer_certificate": B });
    send(vms[1]!, "reviews", 200); // a plaintext upstream
    const base = { reporter: "source", connection_security_policy: "unknown", source_workload: "frontend-v2", source_cluster: "east", response_code: "200" };
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", {
      ...base, source_principal: A, destination_principal: B, destination_workload_namespace: "default", source_workload_namespace: "shop",
    })), 1n);
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", {
      ...base, source_principal: "unknown", destination_principal: "unknown", destination_workload_namespace: "unknown",
    })), 1n);
  });

  test("clientSecurityPolicy observed: the client side judges its upstream connection as the server side does", () => {
    const { host, vms } = start({ reporter: "outbound", clientSecurityPolicy: "observed" });
    send(vms[0]!, "reviews", 200, { "upstream.uri_san_local_certificate": A, "upstream.uri_san_peer_certificate": B });
    send(vms[1]!, "reviews", 200);
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { reporter: "source", connection_security_policy: "mutual_tls", destination_principal: B })), 1n);
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { reporter: "source", connection_security_policy: "none", destination_principal: "unknown" })), 1n);
  });

  test("gRPC requests: request_protocol grpc and the bounded grpc_response_status", () => {
    const { host, vms } = start({});
    const grpc = { "content-type": "application/grpc+proto" };
    send(vms[0]!, "greeter", 200, { "response.grpc_status": 14n }, grpc);
    send(vms[0]!, "greeter", 200, { "response.grpc_status": 99n }, grpc);
    send(vms[1]!, "greeter", 200, {}, grpc); // no status at all
    const at = (status: string) => flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { request_protocol: "grpc", grpc_response_status: status }));
    assert.deepEqual([at("14"), at("other"), at("")], [1n, 1n, 1n]);
  });

  test("request and response sizes go to istio_request_bytes and istio_response_bytes; durations in ms", () => {
    const { host, vms } = start({});
    const s = vms[0]!.newStream({ properties: { "xds.cluster_name": "routed", "request.total_size": 3100n, "response.total_size": 2150n } });
    s.requestHeaders({ ":authority": "reviews", ":path": "/", ":method": "POST" }, false);
    s.responseHeaders({ ":status": "200" }, true);
    host.clock.advanceNs(7_000_000n);
    s.finish();
    assert.deepEqual(host.histogram(find(host, MetricType.Histogram, "istio_request_bytes", {})), [3100n]);
    assert.deepEqual(host.histogram(find(host, MetricType.Histogram, "istio_response_bytes", {})), [2150n]);
    assert.deepEqual(host.histogram(find(host, MetricType.Histogram, "istio_request_duration_milliseconds", {})), [7n]);
  });

  test("service names: a short name is completed with the configured namespace and domain; a full one is taken apart", () => {
    const { host, vms } = start({ serviceNamespace: "shop", serviceDomain: "corp.local" });
    send(vms[0]!, "cart", 200);
    send(vms[0]!, "ratings.prod.svc.cluster.local", 200);
    send(vms[0]!, "api.example.com", 200);
    const names = (service: string) => {
      const l = parse(find(host, MetricType.Counter, "istio_requests_total", { destination_service: service })).labels;
      return [l.destination_service_name, l.destination_service_namespace];
    };
    assert.deepEqual(names("cart.shop.svc.corp.local"), ["cart", "shop"]);
    assert.deepEqual(names("ratings.prod.svc.cluster.local"), ["ratings", "prod"]);
    assert.deepEqual(names("api.example.com"), ["api", "shop"]);
  });

  test("peer identities are capped across workers: beyond maxPrincipals they count as other, and so do over-long ones", () => {
    const { host, vms } = start({ reporter: "inbound", maxPrincipals: 3 });
    const local = { "connection.uri_san_local_certificate": B };
    for (let i = 0; i < 200; i++) {
      send(vms[i % 2]!, "reviews", 200, { ...local, "connection.uri_san_peer_certificate": `spiffe://cluster.local/ns/n${i}/sa/s${i}` });
    }
    send(vms[0]!, "reviews", 200, { ...local, "connection.uri_san_peer_certificate": `spiffe://cluster.local/ns/a/sa/${"x".repeat(80)}` });
    // Our own identity took one slot; two callers took the rest.
    assert.deepEqual(host.sharedData("resilience.service-metrics.inbound.principals")!.text.split("\n").sort(),
      [B, "spiffe://cluster.local/ns/n0/sa/s0", "spiffe://cluster.local/ns/n1/sa/s1"].sort());
    const principals = new Set(host.metricNames(MetricType.Counter).map((n) => parse(n).labels.source_principal).filter(Boolean));
    assert.deepEqual([...principals].sort(), ["other", "spiffe://cluster.local/ns/n0/sa/s0", "spiffe://cluster.local/ns/n1/sa/s1"]);
    assert.equal(flushed(host).counter(find(host, MetricType.Counter, "istio_requests_total", { source_principal: "other" })), 199n);
    // An "other" identity names no namespace: the configured one stands.
    assert.equal(parse(find(host, MetricType.Counter, "istio_requests_total", { source_principal: "other" })).labels.source_workload_namespace, "unknown");
  });

  test("destinations stay capped by maxServices, as in the project's naming", () => {
    const { host, vms } = start({ maxServices: 2 });
    for (let i = 0; i < 50; i++) send(vms[i % 2]!, `svc-${i}`, 200);
    const services = new Set(host.metricNames(MetricType.Counter).map((n) => parse(n).labels.destination_service).filter(Boolean));
    assert.deepEqual([...services].sort(), ["other", "svc-0.default.svc.cluster.local", "svc-1.default.svc.cluster.local"]);
  });

  test("host calls per warmed-up request: Istio naming reads the connection's SANs and sizes; the project's naming reads none of them", () => {
    const istio = start({ reporter: "inbound" });
    const mtls = { "connection.uri_san_peer_certificate": A, "connection.uri_san_local_certificate": B, "request.total_size": 100n, "response.total_size": 200n };
    send(istio.vms[0]!, "reviews", 200, mtls);
    const i = send(istio.vms[0]!, "reviews", 200, mtls).hostCallCount;
    // Every call of the request, exactly: the counter is summed in the VM and flushed on the tick (no increment here).
    assert.deepEqual(i, { proxy_get_header_map_value: 2, proxy_get_property: 8, proxy_record_metric: 3 });
    const calls: Record<string, number> = i;
    assert.equal(calls.proxy_define_metric, undefined);
    assert.equal(calls.proxy_get_shared_data, undefined, "admitted names and identities are remembered per worker");

    const host = new Host();
    const [vm] = host.startVms(wasm, 1, { pluginConfig: "{}", pluginName: "service-metrics", rootId: "service-metrics" });
    send(vm!, "reviews", 200, mtls);
    const d = send(vm!, "reviews", 200, mtls).hostCallCount;
    assert.deepEqual(d, { proxy_get_header_map_value: 1, proxy_get_property: 4, proxy_record_metric: 1 });
  });

  test("Istio's reporter words select the same side as outbound/inbound; Istio keys are refused without Istio naming", () => {
    const { host, vms } = start({ reporter: "destination" });
    send(vms[0]!, "reviews", 200);
    assert.ok(host.sharedData("resilience.service-metrics.inbound.services"), "one registry per side, whatever its spelling");
    const refused = new Host();
    assert.throws(() => refused.startVm(wasm, { pluginConfig: '{"sourceApp": "web"}' }),
      /field "sourceApp": is an Istio label, used only with "naming" "istio"/);
    assert.deepEqual(refused.logsAt(LogLevel.Critical).length, 1);
  });
});
