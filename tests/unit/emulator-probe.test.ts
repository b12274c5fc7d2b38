// Emulator tests driven through the hand-written probe filter in two VMs: stats, headers, local replies, CAS, ticks, config.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { FilterHeadersStatus, Host, LogLevel } from "../emulator/index.js";
import { wat2wasmFile } from "../emulator/wat.js";
import { text, u32le } from "./emulator-bytes.js";

const probeWasm = wat2wasmFile(fileURLToPath(new URL("../emulator/fixtures/probe-filter.wat", import.meta.url)));

describe("the hand-written probe filter in two VMs", () => {
  const start = (opts: ConstructorParameters<typeof Host>[0] = {}) => {
    const host = new Host(opts);
    const vms = host.startVms(probeWasm, 2, { pluginConfig: "{}" });
    return { host, vms: vms as [(typeof vms)[0], (typeof vms)[0]] };
  };

  test("each VM runs _initialize once and defines the same stats under the same ids", () => {
    const { host, vms } = start();
    assert.deepEqual(host.logs.map((l) => [l.vm, l.message]), [[0, "probe: initialized"], [1, "probe: initialized"]]);
    for (const vm of vms) {
      assert.deepEqual([4, 5, 6].map((id) => vm.metrics.stat(id)?.name), ["probe_requests", "probe_ticks", "probe_response_codes"]);
      assert.equal(vm.root.vmStartResult, true);
      assert.equal(vm.root.configureResult, true);
    }
  });

  test("a request header edit shows in the request map and both VMs count into one counter", () => {
    const { host, vms } = start();
    const s = vms[0].newStream();
    assert.equal(s.requestHeaders({ ":authority": "a.example", ":path": "/x" }, true), FilterHeadersStatus.Continue);
    assert.equal(s.requestHeaders().get("x-probe-authority"), "a.example");
    assert.equal(s.responseHeaders({ ":status": "503" }, true), FilterHeadersStatus.Continue);
    assert.equal(s.responseHeaders().get("x-probe-seen"), "1");
    s.finish();
    const t = vms[1].newStream();
    t.requestHeaders({ ":authority": "b.example" }, true);
    t.responseHeaders({ ":status": "200" }, true);
    t.finish();
    assert.equal(host.counter("probe_requests"), 2n);
    assert.deepEqual(host.histogram("probe_response_codes"), [503n, 200n]);
  });

  test("a local reply from on_request_headers forces stop and runs through the filter's own on_response_headers", () => {
    const { host, vms } = start();
    const s = vms[0].newStream();
    assert.equal(s.requestHeaders({ ":authority": "deny", ":path": "/" }, true), FilterHeadersStatus.StopAllIterationAndWatermark);
    assert.deepEqual(
      { ...s.localReply, body: undefined },
      {
        status: 403,
        details: "denied by probe",
        body: undefined,
        bodyText: "no",
        headers: [["x-probe", "1"]],
        grpcStatus: null,
        sentFrom: `proxy_on_request_headers (context ${s.id})`,
        delivery: "filter-chain",
      },
    );
    assert.deepEqual(s.responseHeaders().pairs, [
      [":status", "403"],
      ["x-probe", "1"],
      ["content-length", "2"],
      ["content-type", "text/plain"],
      ["x-probe-seen", "1"],
    ]);
    assert.equal(s.responseBodyText, "no");
    assert.equal(s.responseCodeDetails, "denied_by_probe");
    assert.equal(s.requestForwarded, false);
    assert.deepEqual(host.histogram("probe_response_codes"), [403n]);
    assert.throws(() => s.requestBody("more"), /answered with a local reply/);
    assert.throws(() => s.responseHeaders({ ":status": "200" }), /already answered with a local reply/);
  });

  test("a local reply to a gRPC request becomes a trailers-only gRPC response", () => {
    const { vms } = start();
    const s = vms[0].newStream();
    s.requestHeaders({ ":authority": "deny", "content-type": "application/grpc" }, true);
    const h = s.responseHeaders();
    assert.equal(h.get(":status"), "200");
    assert.equal(h.get("grpc-status"), "7");
    assert.equal(h.get("grpc-message"), "no");
    assert.equal(s.responseBodyText, "");
  });

  test("on_log's CAS loop counts completed streams of both VMs in one shared-data value", () => {
    const { host, vms } = start();
    for (let i = 0; i < 3; i++) {
      const s = vms[i % 2]!.newStream();
      s.requestHeaders({ ":authority": "a" }, true);
      s.responseHeaders({ ":status": "200" }, true);
      s.finish();
    }
    const entry = host.sharedData("probe/count")!;
    assert.deepEqual([...entry.value], [...u32le(3)]);
    assert.equal(entry.cas, 3);
  });

  test("a competing write between get and set makes the module retry with the new cas", () => {
    const { host, vms } = start();
    host.setSharedData("probe/count", u32le(10));
    const s = vms[0].newStream();
    s.requestHeaders({ ":authority": "a" }, true);
    s.responseHeaders({ ":status": "200" }, true);
    s.finish();
    assert.deepEqual([...host.sharedData("probe/count")!.value], [...u32le(11)]);
  });

  test("advanceMs fires each VM's 1000 ms tick in time order, tick() fires every timer at once", () => {
    const { host, vms } = start();
    const t0 = host.clock.nowNs;
    assert.equal(host.advanceMs(999), 0);
    assert.equal(host.advanceMs(1501), 4);
    assert.equal(host.gauge("probe_ticks"), 4n);
    assert.equal(host.clock.nowNs - t0, 2_500_000_000n);
    assert.equal(host.tick(), 2);
    assert.equal(vms[1].tick(), 1);
    assert.equal(host.gauge("probe_ticks"), 7n);
    assert.equal(vms[0].root.tickPeriodMs, 1000);
  });

  test("on_configure sees the plugin configuration, and false refuses the plugin", () => {
    const host = new Host();
    assert.throws(() => host.startVm(probeWasm, { pluginConfig: "x-bad" }), /proxy_on_configure returned false.*probe: bad configuration/s);
    const vm = host.createVm(probeWasm);
    const root = vm.startRoot({ pluginConfig: "xyz" });
    assert.equal(root.vmStartResult, true);
    assert.equal(root.configureResult, false);
  });

  test("a trap fails the test naming the callback and quoting the module's last critical log", () => {
    const { vms } = start();
    const s = vms[0].newStream();
    s.requestHeaders({ ":authority": "a" });
    assert.throws(() => s.requestBody("x"), /VM 0: proxy_on_request_body\(\d+, 1, 0\) failed: the module trapped: unreachable[\s\S]*probe: abort in on_request_body/);
    assert.equal(vms[0].procExitCode, 1);
    assert.throws(() => vms[0].newStream().requestHeaders({ ":authority": "a" }), /VM 0 already failed/);
  });

  test("host calls are counted per function name and per stream", () => {
    const { host, vms } = start();
    host.resetHostCallCount();
    const s = vms[0].newStream();
    s.requestHeaders({ ":authority": "a" }, true);
    assert.deepEqual(s.hostCallCount, { proxy_increment_metric: 1, proxy_get_header_map_value: 1, proxy_add_header_map_value: 1 });
    assert.deepEqual(host.hostCallCount, s.hostCallCount);
    assert.equal(host.moduleCallCount.malloc, 1);
  });

  test("a value larger than the module's memory is returned after malloc grows it", () => {
    const { vms } = start();
    const big = "h".repeat(200_000);
    const s = vms[0].newStream();
    s.requestHeaders({ ":authority": big }, true);
    assert.equal(s.requestHeaders().get("x-probe-authority"), big);
  });

  test("logs below the host's level are not recorded", () => {
    const { host } = start({ logLevel: LogLevel.Warn });
    assert.deepEqual(host.logs, []);
  });
});
