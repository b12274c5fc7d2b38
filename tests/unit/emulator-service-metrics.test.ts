// service-metrics.wasm (release and debug builds) in the host emulator: two workers, streams driven end to end,
// stats read back by name. Needs `npm run build` first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Host, LogLevel, MetricType, prop, type PropertyValue, type Vm } from "../emulator/index.js";

const REGISTRY_KEY = "resilience.service-metrics.outbound.services";

/** The tag-encoded stat name the filter uses (labels first, then the metric). */
function series(labels: [string, string][], metric: string): string {
  return labels.map(([k, v]) => `${k}=.=${v};.;`).join("") + metric;
}

function requests(service: string, code: number, flags = "-"): string {
  const cls = `${Math.floor(code / 100)}xx`;
  return series(
    [["reporter", "outbound"], ["destination_service", service], ["response_code", String(code)], ["response_code_class", cls], ["response_flags", flags]],
    "resilience_requests_total",
  );
}

/**
 * Lets a housekeeping tick pass (one second): request counters are summed in each worker and handed to Envoy then, one
 * increment per series per tick (histograms are recorded per request).
 */
function flushed(host: Host): Host {
  assert.ok(host.advanceMs(1000) > 0, "housekeeping ticks fired");
  return host;
}

const perService = (service: string, metric: string) => series([["reporter", "outbound"], ["destination_service", service]], metric);

for (const file of ["service-metrics.wasm", "service-metrics.debug.wasm"]) {
  const wasm = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));

  describe(`service-metrics (${file}) in two emulated workers`, () => {
    const start = (config = "{}") => {
      if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
      const host = new Host();
      const vms = host.startVms(wasm, 2, { pluginConfig: config, pluginName: "service-metrics", rootId: "service-metrics" });
      return { host, vms };
    };

    /**
     * One request through `vm`: headers, upstream response, `durationNs` later the access log and destruction. A route
     * sends it to cluster "routed" unless `props` says otherwise (a name is admitted as a label only once routed).
     */
    const request = (host: Host, vm: Vm, authority: string, code: number, props: Record<string, PropertyValue> = {}, durationNs = 0n) => {
      const s = vm.newStream({ properties: { "xds.cluster_name": "routed", ...props } });
      assert.equal(s.requestHeaders({ ":authority": authority, ":path": "/", ":method": "GET" }, true), 0);
      assert.equal(s.responseHeaders({ ":status": String(code) }, true), 0);
      host.clock.advanceNs(durationNs);
      s.finish();
      return s;
    };

    test("both workers count the same destination, code and flags into one series", () => {
      const { host, vms } = start();
      request(host, vms[0]!, "a.svc", 200);
      request(host, vms[1]!, "a.svc", 200);
      request(host, vms[1]!, "a.svc", 404);
      assert.equal(flushed(host).counter(requests("a.svc", 200)), 2n);
      assert.equal(flushed(host).counter(requests("a.svc", 404)), 1n);
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_local_replies_total")), 0n);
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_upstream_failures_total")), 0n);
      assert.deepEqual(host.rejections.filter((r) => r.call !== "proxy_get_shared_data"), []);
    });

    test("the duration histogram records whole milliseconds of request.duration", () => {
      const { host, vms } = start();
      request(host, vms[0]!, "a.svc", 200, {}, 25_900_000n);
      request(host, vms[1]!, "a.svc", 200, {}, 3_000_000n);
      assert.deepEqual(host.histogram(perService("a.svc", "resilience_request_duration")), [25n, 3n]);
    });

    test("a response that never went upstream counts as a local reply", () => {
      const { host, vms } = start();
      request(host, vms[0]!, "a.svc", 503, { "upstream.request_attempt_count": prop.uint(0) });
      assert.equal(flushed(host).counter(requests("a.svc", 503)), 1n);
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_local_replies_total")), 1n);
    });

    test("upstream failure flags label the request and count as an upstream failure", () => {
      const { host, vms } = start();
      request(host, vms[0]!, "a.svc", 503, { "response.flags": 0x20n });
      assert.equal(flushed(host).counter(requests("a.svc", 503, "UF")), 1n);
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_upstream_failures_total")), 1n);
    });

    test("destinations beyond maxServices fold into other, with the registry shared by both workers", () => {
      const { host, vms } = start('{"maxServices": 2}');
      request(host, vms[0]!, "a.svc", 200);
      request(host, vms[0]!, "b.svc", 200);
      request(host, vms[1]!, "c.svc", 200);
      request(host, vms[1]!, "a.svc", 200);
      assert.equal(host.sharedData(REGISTRY_KEY)!.text, "a.svc\nb.svc");
      assert.equal(flushed(host).counter(requests("other", 200)), 1n);
      assert.equal(flushed(host).counter(requests("a.svc", 200)), 2n);
      assert.deepEqual(host.metricNames(MetricType.Counter).filter((n) => n.includes("c.svc")), []);
    });

    test("the destination can be the route's cluster, sanitized into a label value", () => {
      const { host, vms } = start('{"destinationKey": "cluster"}');
      request(host, vms[0]!, "ignored", 200, { "xds.cluster_name": "outbound|80||b.svc" });
      assert.equal(flushed(host).counter(requests("outbound_80__b.svc", 200)), 1n);
    });

    test("Istio naming uses istio_requests_total with Istio's labels", () => {
      const { host, vms } = start('{"naming": "istio"}');
      request(host, vms[0]!, "a.svc", 200);
      // Istio's label values (reporter "source" on the client side, the full label set): tests/unit/istio-naming.test.ts.
      const names = host.metricNames(MetricType.Counter).filter((n) => n.endsWith(";.;istio_requests_total"));
      assert.equal(names.length, 1, names.join("\n"));
      assert.match(names[0]!, /^reporter=\.=source;\.;.*destination_service=\.=a\.svc;\.;.*response_code=\.=200;\.;/);
      assert.equal(flushed(host).counter(names[0]!), 1n);
    });

    test("a bad field refuses the configuration with one critical line naming it", () => {
      const host = new Host();
      assert.throws(
        () => host.startVm(wasm, { pluginConfig: '{"reporter": "sideways"}' }),
        /proxy_on_configure returned false[\s\S]*field "reporter": expected one of "outbound", "inbound", "source", "destination", got "sideways"/,
      );
      assert.deepEqual(host.logsAt(LogLevel.Critical).map((l) => l.vm), [0]);
    });

    test("a warmed-up worker serves a request with 6 host calls: no metric definition, no counter update", () => {
      const { host, vms } = start();
      request(host, vms[0]!, "a.svc", 200);
      const s = request(host, vms[0]!, "a.svc", 200);
      // :authority on request; response.code, response.flags, request.duration, upstream.request_attempt_count and one
      // histogram record at completion. The counter is summed in the VM (flushed on the tick, test below).
      assert.deepEqual(s.hostCallCount, { proxy_get_header_map_value: 1, proxy_get_property: 4, proxy_record_metric: 1 });
    });

    test("request counters reach the host on the tick: one increment per series, however many requests", () => {
      const { host, vms } = start();
      for (let i = 0; i < 10; i++) request(host, vms[0]!, "a.svc", 200);
      request(host, vms[0]!, "a.svc", 503, { "upstream.request_attempt_count": prop.uint(0) });
      assert.equal(host.counter(requests("a.svc", 200)), 0n, "not before the tick");
      host.resetHostCallCount();
      assert.equal(host.advanceMs(1000), 2, "one tick per worker");
      // 200s, 503s and local replies: three series changed on worker 0, none on worker 1.
      assert.equal(host.hostCallCount.proxy_increment_metric, 3);
      assert.equal(host.counter(requests("a.svc", 200)), 10n);
      assert.equal(host.counter(requests("a.svc", 503)), 1n);
      assert.equal(host.counter(perService("a.svc", "resilience_local_replies_total")), 1n);
      host.resetHostCallCount();
      host.advanceMs(1000);
      assert.equal(host.hostCallCount.proxy_increment_metric, undefined, "nothing changed: nothing flushed");
    });

    test("requests no route sends anywhere are counted under one label, and never enter the registry", () => {
      const { host, vms } = start('{"maxServices": 5}');
      const unrouted = (vm: Vm) => vm.newStream({ properties: {} });
      for (let i = 0; i < 300; i++) {
        const s = unrouted(vms[i % 2]!);
        s.requestHeaders({ ":authority": `made-up-${i}.example`, ":path": "/", ":method": "GET" }, true);
        s.setProperty("upstream.request_attempt_count", prop.uint(0));
        s.setProperty("response.flags", 0x100n); // NR
        s.responseHeaders({ ":status": "404" }, true);
        s.finish();
      }
      assert.equal(flushed(host).counter(requests("unrouted", 404, "NR")), 300n);
      assert.equal(host.sharedData(REGISTRY_KEY), undefined, "no made-up name took a slot");
      assert.deepEqual(host.metricNames(MetricType.Counter).filter((n) => n.includes("made-up")), []);
      request(host, vms[0]!, "Real.SVC:8080", 200);
      request(host, vms[1]!, "real.svc.", 200);
      assert.equal(host.sharedData(REGISTRY_KEY)!.text, "real.svc", "a routed name is admitted, in its one spelling");
      assert.equal(flushed(host).counter(requests("real.svc", 200)), 2n);
    });

    test("response_code is bounded: an upstream reflecting 900 codes makes at most 50 values", () => {
      const { host, vms } = start();
      for (let code = 100; code < 1000; code++) request(host, vms[code % 2]!, "a.svc", code);
      const codes = new Set(host.metricNames(MetricType.Counter)
        .filter((n) => n.includes("resilience_requests_total"))
        .map((n) => /response_code=\.=([^;]*);/.exec(n)![1]));
      assert.equal(codes.size, 43 + 5 + 1, `known codes, five classes and "other": ${[...codes].join(" ")}`);
      assert.ok(codes.has("5xx") && codes.has("other") && codes.has("503") && !codes.has("599"));
      const cls = (code: string, c: string) => series(
        [["reporter", "outbound"], ["destination_service", "a.svc"], ["response_code", code], ["response_code_class", c], ["response_flags", "-"]],
        "resilience_requests_total");
      assert.equal(flushed(host).counter(cls("5xx", "5xx")), 100n - 6n, "599 - 500 + 1 codes less the six known 5xx");
      assert.equal(flushed(host).counter(cls("other", "0")), 400n, "600 to 999");
    });

    test("a timeout of the caller's own budget is counted with its flag but is no upstream failure", () => {
      const { host, vms } = start();
      // The deadline filter of the chain published the caller's 10 ms budget; the request ran it out (12 ms).
      request(host, vms[0]!, "a.svc", 504, { "response.flags": 0x4n, resilience_caller_budget_ms: "10" }, 12_000_000n);
      assert.equal(flushed(host).counter(requests("a.svc", 504, "UT")), 1n);
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_upstream_failures_total")), 0n);
      // The operator's bound (no caller budget published) is an upstream failure.
      request(host, vms[0]!, "a.svc", 504, { "response.flags": 0x4n }, 1_000_000_000n);
      assert.equal(flushed(host).counter(requests("a.svc", 504, "UT")), 2n);
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_upstream_failures_total")), 1n);
      // A downstream HTTP/2 reset (DR) is labelled, not an upstream failure.
      request(host, vms[1]!, "a.svc", 0, { "response.flags": 0x10000000n });
      assert.equal(flushed(host).counter(perService("a.svc", "resilience_upstream_failures_total")), 1n);
    });

    test("housekeeping ticks fire once a second in every worker", () => {
      const { host } = start();
      assert.equal(host.advanceMs(3000), 6);
      assert.ok(host.gauge(series([["filter", "service-metrics"]], "resilience_wasm_memory_bytes")) > 0n);
    });
  });
}
