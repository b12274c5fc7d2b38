// Tests of the proxy-wasm host emulator itself: its pieces (pair format, CAS store, metrics, properties, header
// map, clock), Envoy's load rules, and stream behaviour driven through hand-written WebAssembly-text modules.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import {
  EXPECTED_RESULTS,
  EmulatorError,
  FakeClock,
  FilterDataStatus,
  FilterHeadersStatus,
  HeaderMap,
  Host,
  LogLevel,
  MetricStore,
  MetricType,
  PropertyTree,
  SharedDataStore,
  VmMetrics,
  WasmResult,
  decodePairs,
  encodePairs,
  encodeProperty,
  prop,
  propertyPath,
} from "../emulator/index.js";
import { WatModule, wat2wasm, wat2wasmFile } from "../emulator/wat.js";

const u64le = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
};
const u32le = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};
const text = (s: string) => new TextEncoder().encode(s);

describe("pair serialization", () => {
  test("encodePairs lays out the count, all sizes, then NUL-terminated keys and values", () => {
    const bytes = encodePairs([
      ["a", "bc"],
      ["de", ""],
    ]);
    const expected = [
      ...u32le(2),
      ...u32le(1), ...u32le(2),
      ...u32le(2), ...u32le(0),
      ...text("a"), 0, ...text("bc"), 0,
      ...text("de"), 0, 0,
    ];
    assert.deepEqual([...bytes], expected);
  });

  test("decodePairs round-trips repeated keys and UTF-8 values", () => {
    const pairs: [string, string][] = [
      [":authority", "a.example"],
      ["set-cookie", "x=1"],
      ["set-cookie", "y=2"],
      ["x-name", "grüße"],
    ];
    assert.deepEqual(decodePairs(encodePairs(pairs), "test"), pairs);
  });

  test("decodePairs accepts both spellings of an empty map", () => {
    assert.deepEqual(decodePairs(new Uint8Array(0), "test"), []);
    assert.deepEqual(decodePairs(Uint8Array.of(0), "test"), []);
    assert.deepEqual(decodePairs(encodePairs([]), "test"), []);
  });

  test("decodePairs names each defect Envoy would silently read as an empty map", () => {
    const good = encodePairs([["k", "v"]]);
    const wrongCount = good.slice();
    wrongCount[0] = 2;
    assert.throws(() => decodePairs(wrongCount, "headers"), /headers: malformed header pairs \(count 2 needs 20 bytes/);
    const missingNul = good.slice();
    missingNul[13] = 0x41;
    assert.throws(() => decodePairs(missingNul, "headers"), /pair 0: key is not followed by a NUL byte/);
    assert.throws(() => decodePairs(good.slice(0, good.length - 1), "headers"), /sizes add up to 16 bytes but 15/);
    assert.throws(() => decodePairs(Uint8Array.of(1, 0), "headers"), /shorter than the 4-byte count/);
    const many = encodePairs(Array.from({ length: 1025 }, (_, i): [string, string] => [`k${i}`, "v"]));
    assert.throws(() => decodePairs(many, "headers"), /count 1025 exceeds the limit of 1024 pairs/);
  });
});

describe("shared data store", () => {
  test("the first write gets cas 1 and every successful write a new cas", () => {
    const s = new SharedDataStore();
    assert.equal(s.set("", "k", text("a"), 0), WasmResult.Ok);
    assert.equal(s.get("", "k")!.cas, 1);
    assert.equal(s.set("", "other", text("b"), 0), WasmResult.Ok);
    assert.equal(s.set("", "k", text("c"), 1), WasmResult.Ok);
    assert.deepEqual(s.get("", "k"), { value: text("c"), cas: 3 });
  });

  test("a write with a stale cas fails with CasMismatch and leaves the value alone", () => {
    const s = new SharedDataStore();
    s.set("", "k", text("a"), 0);
    s.set("", "k", text("b"), 0);
    assert.equal(s.set("", "k", text("stale"), 1), WasmResult.CasMismatch);
    assert.deepEqual(s.get("", "k"), { value: text("b"), cas: 2 });
  });

  test("a write with any cas to a missing key succeeds", () => {
    const s = new SharedDataStore();
    assert.equal(s.set("", "fresh", text("x"), 12345), WasmResult.Ok);
    assert.equal(s.get("", "fresh")!.cas, 1);
  });

  test("namespaces are separated by vm_id", () => {
    const s = new SharedDataStore();
    s.set("a", "k", text("1"), 0);
    assert.equal(s.get("b", "k"), undefined);
    assert.deepEqual(s.keys("a"), ["k"]);
  });

  test("the cas counter skips 0 when it wraps", () => {
    const s = new SharedDataStore();
    s.setLastCas(0xffffffff);
    s.set("", "k", text("x"), 0);
    assert.equal(s.get("", "k")!.cas, 1);
  });
});

describe("metrics store", () => {
  test("ids carry the type in the low two bits and grow by 4 per type", () => {
    const vm = new VmMetrics(new MetricStore());
    const ids = [
      vm.define(MetricType.Counter, "c1"),
      vm.define(MetricType.Gauge, "g1"),
      vm.define(MetricType.Histogram, "h1"),
      vm.define(MetricType.Counter, "c2"),
      vm.define(MetricType.Counter, "c1"),
    ];
    assert.deepEqual(ids, [4, 5, 6, 8, 12]);
    for (const id of ids.slice(0, 3)) assert.equal(id & 3, vm.stat(id)!.type);
  });

  test("the same name defined in several VMs updates one stat", () => {
    const store = new MetricStore();
    const a = new VmMetrics(store);
    const b = new VmMetrics(store);
    const ia = a.define(MetricType.Counter, "requests");
    a.define(MetricType.Counter, "other");
    const ib = b.define(MetricType.Counter, "requests");
    a.increment(ia, 2n);
    b.increment(ib, 3n);
    assert.equal(store.require(MetricType.Counter, "requests").value, 5n);
    assert.deepEqual(b.get(ib), { result: WasmResult.Ok, value: 5n });
  });

  test("counters reject non-positive increments and histograms reject increments and reads", () => {
    const vm = new VmMetrics(new MetricStore());
    const c = vm.define(MetricType.Counter, "c");
    const h = vm.define(MetricType.Histogram, "h");
    assert.equal(vm.increment(c, 0n), WasmResult.BadArgument);
    assert.equal(vm.increment(c, -1n), WasmResult.BadArgument);
    assert.equal(vm.increment(h, 1n), WasmResult.BadArgument);
    assert.deepEqual(vm.get(h), { result: WasmResult.BadArgument });
  });

  test("record adds to a counter, sets a gauge and appends to a histogram; gauges also add and subtract", () => {
    const store = new MetricStore();
    const vm = new VmMetrics(store);
    const c = vm.define(MetricType.Counter, "c");
    const g = vm.define(MetricType.Gauge, "g");
    const h = vm.define(MetricType.Histogram, "h");
    vm.record(c, 5n);
    vm.record(c, 2n);
    vm.record(g, 10n);
    vm.increment(g, -3n);
    vm.increment(g, 1n);
    vm.record(h, 7n);
    vm.record(h, 9n);
    assert.equal(store.require(MetricType.Counter, "c").value, 7n);
    assert.equal(store.require(MetricType.Gauge, "g").value, 8n);
    assert.deepEqual(store.require(MetricType.Histogram, "h").values, [7n, 9n]);
  });

  test("unknown ids give NotFound and an out-of-range type fails loudly", () => {
    const vm = new VmMetrics(new MetricStore());
    assert.equal(vm.increment(4, 1n), WasmResult.NotFound);
    assert.equal(vm.record(5, 1n), WasmResult.NotFound);
    assert.deepEqual(vm.get(8), { result: WasmResult.NotFound });
    assert.throws(() => vm.define(3, "x"), /metric type 3 is out of range/);
  });

  test("a gauge going below zero and a negative recorded value fail loudly", () => {
    const vm = new VmMetrics(new MetricStore());
    const g = vm.define(MetricType.Gauge, "g");
    assert.throws(() => vm.increment(g, -1n), /gauge "g" would go below zero/);
    assert.throws(() => vm.record(g, -5n), /negative value -5 for gauge "g"/);
  });

  test("asking for a metric that was never defined lists the defined ones", () => {
    const store = new MetricStore();
    new VmMetrics(store).define(MetricType.Counter, "known");
    assert.throws(() => store.require(MetricType.Counter, "missing"), /no counter named "missing".*\["known"\]/);
  });
});

describe("property encoding", () => {
  test("integers are 8-byte little-endian, strings raw, booleans one byte, timestamps i64 nanoseconds", () => {
    assert.deepEqual(encodeProperty(503n), u64le(503n));
    assert.deepEqual(encodeProperty(-2n), u64le(-2n));
    assert.deepEqual(encodeProperty(prop.uint((1n << 64n) - 1n)), u64le((1n << 64n) - 1n));
    assert.deepEqual(encodeProperty("outbound|80||svc"), text("outbound|80||svc"));
    assert.deepEqual(encodeProperty(true), Uint8Array.of(1));
    assert.deepEqual(encodeProperty(new Date(1500)), u64le(1_500_000_000n));
    assert.deepEqual(encodeProperty(prop.durationMs(12)), u64le(12_000_000n));
    const dbl = new Uint8Array(8);
    new DataView(dbl.buffer).setFloat64(0, 0.25, true);
    assert.deepEqual(encodeProperty(prop.double(0.25)), dbl);
  });

  test("maps and lists use the pair format with encoded values", () => {
    assert.deepEqual(encodeProperty(prop.map({ a: "x", n: 1n })), encodePairs([[text("a"), text("x")], [text("n"), u64le(1n)]]));
    assert.deepEqual(encodeProperty(prop.list(["p", "q"])), encodePairs([["p", ""], ["q", ""]]));
  });

  test("a plain number is refused as ambiguous, and out-of-range integers are refused", () => {
    assert.throws(() => encodeProperty(503 as unknown as bigint, "response.code"), /unsupported value 503 \(number\)/);
    assert.throws(() => encodeProperty(prop.uint(-1n)), /out of the uint64 range/);
  });

  test("paths may be dotted, NUL-separated or arrays, and lookups descend into stored maps", () => {
    assert.equal(propertyPath("response.code"), "response\0code");
    assert.equal(propertyPath("xds\0cluster_name\0"), "xds\0cluster_name");
    assert.equal(propertyPath(["metadata", "filter_metadata", "envoy.lb"]), "metadata\0filter_metadata\0envoy.lb");
    assert.throws(() => propertyPath("a..b"), /empty segment/);
    const t = new PropertyTree();
    t.set("xds.node", prop.map({ id: "node-1", metadata: prop.map({ zone: "z1" }) }));
    assert.equal(t.lookup("xds\0node\0metadata\0zone"), "z1");
    assert.equal(t.lookup("xds\0node\0missing"), undefined);
    assert.equal(t.covers("xds\0node\0missing"), true);
  });
});

describe("header map", () => {
  test("keys are lower-cased, pseudo-headers stay in front and replace removes every value of the key", () => {
    const m = new HeaderMap([
      ["X-A", "1"],
      [":path", "/"],
      ["x-a", "2"],
    ]);
    m.add(":authority", "h");
    assert.deepEqual(m.pairs, [[":path", "/"], [":authority", "h"], ["x-a", "1"], ["x-a", "2"]]);
    m.replace("X-A", "3");
    assert.deepEqual(m.getAll("x-a"), ["3"]);
    assert.equal(m.byteSize, ":path".length + 1 + ":authority".length + 1 + 3 + 1);
    assert.deepEqual(new HeaderMap([["a", "1"], ["a", "2"]]).toObject(), { a: "1,2" });
  });
});

describe("fake clock", () => {
  test("advancing moves realtime and monotonic time together; setNs jumps only the wall clock", () => {
    const c = new FakeClock(1_000_000_000_000n);
    const mono = c.monotonicNowNs;
    c.advanceMs(1500);
    assert.equal(c.nowNs, 1_001_500_000_000n);
    assert.equal(c.monotonicNowNs - mono, 1_500_000_000n);
    c.setNs(5n);
    assert.equal(c.nowNs, 5n);
    assert.equal(c.monotonicNowNs - mono, 1_500_000_000n);
    assert.throws(() => c.advanceNs(-1n), /only moves forward/);
  });
});

describe("module loading follows Envoy's rules", () => {
  test("a module without the ABI 0.2.1 marker is refused with Envoy's reason", () => {
    const bytes = Buffer.from(new WatModule().build());
    const at = bytes.indexOf("proxy_abi_version_0_2_1");
    bytes.write("proxy_abi_version_9_9_9", at);
    assert.throws(() => new Host().createVm(bytes), /Missing or unknown Proxy-Wasm ABI version/);
  });

  test("an import Envoy does not provide is refused, naming it", () => {
    const m = new WatModule().func(`(func (export "_initialize") (call $abort))`);
    const wat = m.text().replace("(module", `(module\n  (import "env" "abort" (func $abort))`);
    assert.throws(() => new Host().createVm(wat2wasm(wat)), /imports env\.abort, which Envoy does not provide/);
  });

  test("an import with the wrong signature is refused as a type mismatch", () => {
    const wat = new WatModule().text().replace("(module", `(module\n  (import "env" "proxy_log" (func $bad (param i32 i32) (result i32)))`);
    assert.throws(() => new Host().createVm(wat2wasm(wat)), /imports env\.proxy_log as \(i32, i32\) -> \(i32\).*import type mismatch/);
  });

  test("a callback exported with the wrong signature is refused", () => {
    const m = new WatModule().func(`(func (export "proxy_on_request_headers") (param i32 i32) (result i32) (i32.const 0))`);
    assert.throws(() => new Host().createVm(m.build()), /exports proxy_on_request_headers as \(i32, i32\) -> \(i32\) but Envoy requires \(i32, i32, i32\) -> \(i32\)/);
  });

  test("calling a host function other than proxy_log during _initialize fails the test", () => {
    const m = new WatModule();
    const name = m.bytes("too_early");
    m.func(`(func (export "_initialize") (drop (call $proxy_define_metric (i32.const 0) ${name} (i32.const 16))))`);
    assert.throws(() => new Host().createVm(m.build()), /proxy_define_metric was called during _initialize.*restricted_callback/);
  });

  test("proxy_log during _initialize is recorded with its level and VM index", () => {
    const m = new WatModule();
    const msg = m.bytes("hello from init");
    m.func(`(func (export "_initialize") (drop (call $proxy_log (i32.const 3) ${msg})))`);
    const host = new Host();
    const bytes = m.build();
    host.createVm(bytes);
    host.createVm(bytes);
    assert.deepEqual(
      host.logs.map((l) => [l.vm, l.level, l.message, l.contextId]),
      [
        [0, LogLevel.Warn, "hello from init", 0],
        [1, LogLevel.Warn, "hello from init", 0],
      ],
    );
  });
});

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

describe("stream rules", () => {
  test("request headers are writable in on_request_headers but BadArgument once it continued", () => {
    const m = new WatModule();
    const k = m.bytes("x-late");
    const v = m.bytes("1");
    m.func(`(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_add_header_map_value (i32.const 0) ${k} ${v}))
      (drop (call $proxy_add_header_map_value (i32.const 2) ${k} ${v}))
      (i32.const 0))`);
    const host = new Host().allowRejection("proxy_add_header_map_value", WasmResult.BadArgument, "the test edits request headers after they continued");
    const s = host.startVm(m.build()).newStream();
    s.requestHeaders({ ":path": "/" }, true);
    s.responseHeaders({ ":status": "200" });
    assert.equal(s.requestHeaders().get("x-late"), undefined);
    assert.equal(s.responseHeaders().get("x-late"), "1");
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_add_header_map_value", "BadArgument"]]);
  });

  test("the PluginConfiguration buffer is readable only during on_configure", () => {
    const m = new WatModule();
    m.func(`(func (export "proxy_on_configure") (param i32 i32) (result i32)
      (drop (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (i32.const -1) (i32.const 16) (i32.const 20)))
      (drop (call $proxy_log (i32.const 2) (i32.load (i32.const 16)) (i32.load (i32.const 20))))
      (i32.const 1))`);
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_get_buffer_status (i32.const 7) (i32.const 16) (i32.const 20)))
      (i32.const 0))`);
    const host = new Host().allowRejection("proxy_get_buffer_status", WasmResult.NotFound, "the test reads the plugin config outside on_configure");
    host.startVm(m.build(), { pluginConfig: '{"k":1}' }).newStream().requestHeaders({}, true);
    assert.deepEqual(host.logs.map((l) => l.message), ['{"k":1}']);
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_get_buffer_status", "NotFound"]]);
  });

  test("malformed header pairs sent by the module fail the test loudly", () => {
    const m = new WatModule();
    const bad = encodePairs([["x", "y"]]);
    bad[0] = 3;
    const pairs = m.bytes(bad);
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_set_header_map_pairs (i32.const 0) ${pairs})) (i32.const 0))`);
    const s = new Host().startVm(m.build()).newStream();
    assert.throws(() => s.requestHeaders({ a: "b" }), /host call proxy_set_header_map_pairs.*malformed header pairs \(count 3/);
  });

  test("an out-of-bounds pointer fails the test naming the host call", () => {
    const m = new WatModule();
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_log (i32.const 2) (i32.const 65530) (i32.const 100))) (i32.const 0))`);
    const s = new Host().startVm(m.build()).newStream();
    assert.throws(() => s.requestHeaders({}), /host call proxy_log\(2, 65530, 100\) during proxy_on_request_headers.*outside linear memory/);
  });

  test("proxy_log with a level above critical returns BadArgument", () => {
    const m = new WatModule();
    const msg = m.bytes("x");
    m.func(`(func (export "proxy_on_vm_start") (param i32 i32) (result i32)
      (i32.eq (call $proxy_log (i32.const 6) ${msg}) (i32.const 2)))`);
    const host = new Host({ allowRejections: [{ call: "proxy_log", results: [WasmResult.BadArgument], reason: "the test logs at level 6" }] });
    assert.equal(host.startVm(m.build()).root.vmStartResult, true);
    assert.deepEqual(host.logs, []);
  });

  test("StopIteration from headers becomes StopAll unless allow_on_headers_stop_iteration is set", () => {
    const m = new WatModule();
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))`);
    m.func(`(func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))`);
    const bytes = m.build();
    const strict = new Host().startVm(bytes).newStream();
    assert.equal(strict.requestHeaders({}), FilterHeadersStatus.StopAllIterationAndWatermark);
    assert.throws(() => strict.requestBody("x"), /returned StopAllIteration; Envoy holds body/);
    const allowed = new Host().startVm(bytes, { allowOnHeadersStopIteration: true }).newStream();
    assert.equal(allowed.requestHeaders({}), FilterHeadersStatus.StopIteration);
    assert.equal(allowed.requestBody("x", true), FilterDataStatus.Continue);
    assert.throws(() => allowed.responseHeaders({ ":status": "200" }), /the request never got past the filter/);
  });

  test("set_buffer_bytes replaces the start, appends at the end and refuses a mid-buffer insert", () => {
    const m = new WatModule();
    const x = m.bytes("X");
    const bang = m.bytes("!");
    m.func(`(func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
      (drop (call $proxy_set_buffer_bytes (i32.const 0) (i32.const 0) (i32.const 1) ${x}))
      (drop (call $proxy_set_buffer_bytes (i32.const 0) (i32.const -1) (i32.const 0) ${bang}))
      (drop (call $proxy_set_buffer_bytes (i32.const 0) (i32.const 2) (i32.const 0) ${bang}))
      (i32.const 0))`);
    const host = new Host().allowRejection("proxy_set_buffer_bytes", WasmResult.BadArgument, "the test tries a mid-buffer insert");
    const s = host.startVm(m.build()).newStream();
    s.requestHeaders({});
    assert.equal(s.requestBody("hello", true), FilterDataStatus.Continue);
    assert.equal(new TextDecoder().decode(s.requestBodyForwarded), "Xello!");
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_set_buffer_bytes", "BadArgument"]]);
  });

  test("StopIterationAndBuffer makes the next body callback see the whole buffered body", () => {
    const m = new WatModule();
    m.func(`(func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
      (drop (call $proxy_get_buffer_bytes (i32.const 0) (i32.const 0) (local.get 1) (i32.const 16) (i32.const 20)))
      (drop (call $proxy_log (i32.const 2) (i32.load (i32.const 16)) (i32.load (i32.const 20))))
      (select (i32.const 0) (i32.const 1) (local.get 2)))`);
    const host = new Host();
    const s = host.startVm(m.build()).newStream();
    s.requestHeaders({});
    assert.equal(s.requestBody("ab"), FilterDataStatus.StopIterationAndBuffer);
    assert.equal(s.requestBody("cd", true), FilterDataStatus.Continue);
    assert.deepEqual(host.logs.map((l) => l.message), ["ab", "abcd"]);
    assert.equal(new TextDecoder().decode(s.requestBodyForwarded), "abcd");
  });

  test("properties set by the test reach the module in Envoy's encoding", () => {
    const m = new WatModule();
    const code = m.bytes("response\0code");
    const cluster = m.bytes("xds\0cluster_name");
    const k1 = m.bytes("code");
    const k2 = m.bytes("cluster");
    const copy = (path: string, key: string) => `
      (if (i32.eqz (call $proxy_get_property ${path} (i32.const 16) (i32.const 20)))
        (then (drop (call $proxy_set_shared_data ${key} (i32.load (i32.const 16)) (i32.load (i32.const 20)) (i32.const 0)))))`;
    m.func(`(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) ${copy(code, k1)} ${copy(cluster, k2)} (i32.const 0))`);
    const host = new Host();
    const s = host.startVm(m.build()).newStream();
    s.setProperty("xds.cluster_name", "outbound|80||svc");
    s.requestHeaders({}, true);
    s.setProperty("response.code", 504n);
    s.responseHeaders({ ":status": "200" });
    assert.deepEqual(host.sharedData("code")!.value, u64le(504n));
    assert.equal(host.sharedData("cluster")!.text, "outbound|80||svc");
  });

  test("header-based request attributes exist only while the request headers are live or in on_log", () => {
    const m = new WatModule();
    const path = m.bytes("request\0path");
    const key = m.bytes("path");
    const copy = `(if (i32.eqz (call $proxy_get_property ${path} (i32.const 16) (i32.const 20)))
        (then (drop (call $proxy_set_shared_data ${key} (i32.load (i32.const 16)) (i32.load (i32.const 20)) (i32.const 0)))))`;
    m.func(`(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) ${copy} (i32.const 0))`);
    m.func(`(func (export "proxy_on_log") (param i32) ${copy})`);
    const host = new Host();
    const s = host.startVm(m.build()).newStream();
    s.requestHeaders({ ":path": "/a?b=1" }, true);
    s.responseHeaders({ ":status": "200" }, true);
    assert.equal(host.sharedData("path"), undefined);
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_get_property", "NotFound"]]);
    s.log();
    assert.equal(host.sharedData("path")!.text, "/a?b=1");
  });

  test("http_call is recorded; its response reaches the root, which edits and continues the paused stream", () => {
    const m = new WatModule().global("stream");
    const cluster = m.bytes("auth");
    const hdrs = m.bytes(encodePairs([[":method", "GET"], [":path", "/check"], [":authority", "auth"]]));
    const name = m.bytes("x-auth");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (global.set $stream (local.get 0))
      (drop (call $proxy_http_call ${cluster} ${hdrs} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 500) (i32.const 28)))
      (i32.const 4))`);
    m.func(`(func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
      (drop (call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (local.get 3) (i32.const 16) (i32.const 20)))
      (drop (call $proxy_set_effective_context (global.get $stream)))
      (drop (call $proxy_add_header_map_value (i32.const 0) ${name} (i32.load (i32.const 16)) (i32.load (i32.const 20))))
      (drop (call $proxy_continue_stream (i32.const 0))))`);
    const host = new Host({ clusters: ["auth"] });
    const vm = host.startVm(m.build());
    const s = vm.newStream();
    assert.equal(s.requestHeaders({ ":path": "/" }, true), FilterHeadersStatus.StopAllIterationAndWatermark);
    const [call] = host.pendingHttpCalls;
    assert.ok(call);
    assert.deepEqual([call.cluster, call.header(":path"), call.timeoutMs, call.token, call.root.id, call.issuerContextId], ["auth", "/check", 500, 4, vm.root.id, s.id]);
    call.respond({ headers: { ":status": "200" }, body: "ok" });
    assert.equal(s.requestForwarded, true);
    assert.equal(s.requestHeaders().get("x-auth"), "ok");
    assert.equal(s.responseHeaders({ ":status": "200" }, true), FilterHeadersStatus.Continue);
    assert.deepEqual(host.rejections, []);
  });

  test("a failed http_call delivers zero headers and status 11 reset; unknown clusters are BadArgument", () => {
    const m = new WatModule();
    const hdrs = m.bytes(encodePairs([[":method", "GET"], [":path", "/"], [":authority", "a"]]));
    const known = m.bytes("known");
    const unknown = m.bytes("unknown");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_http_call ${unknown} ${hdrs} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 28)))
      (drop (call $proxy_http_call ${known} ${hdrs} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 28)))
      (i32.const 0))`);
    m.func(`(func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
      (drop (call $proxy_get_status (i32.const 24) (i32.const 16) (i32.const 20)))
      (if (i32.and (i32.eqz (local.get 2)) (i32.eq (i32.load (i32.const 24)) (i32.const 11)))
        (then (drop (call $proxy_log (i32.const 2) (i32.load (i32.const 16)) (i32.load (i32.const 20)))))))`);
    const host = new Host({ clusters: ["known"] }).allowRejection("proxy_http_call", WasmResult.BadArgument, "the test calls an unknown cluster");
    host.startVm(m.build()).newStream().requestHeaders({}, true);
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_http_call", "BadArgument"]]);
    assert.equal(host.httpCalls.length, 1);
    host.httpCalls[0]!.fail();
    assert.deepEqual(host.logs.map((l) => l.message), ["reset"]);
    assert.throws(() => host.httpCalls[0]!.respond({ headers: { ":status": "200" } }), /already failed/);
  });

  test("continuing a stream from the root without an effective context fails loudly", () => {
    const m = new WatModule();
    const hdrs = m.bytes(encodePairs([[":method", "GET"], [":path", "/"], [":authority", "a"]]));
    const c = m.bytes("c");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_http_call ${c} ${hdrs} (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 28)))
      (i32.const 4))`);
    m.func(`(func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
      (drop (call $proxy_continue_stream (i32.const 0))))`);
    const host = new Host();
    host.startVm(m.build()).newStream().requestHeaders({}, true);
    assert.throws(() => host.httpCalls[0]!.respond({ headers: { ":status": "200" } }), /proxy_continue_stream\(0\) was called in root context 1.*proxy_set_effective_context/);
  });

  test("clear_route_cache is Ok and recorded; an unknown foreign function is NotFound", () => {
    const m = new WatModule();
    const crc = m.bytes("clear_route_cache");
    const nope = m.bytes("no_such_function");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_call_foreign_function ${crc} (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 20)))
      (drop (call $proxy_call_foreign_function ${nope} (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 20)))
      (i32.const 0))`);
    const host = new Host().allowRejection("proxy_call_foreign_function", WasmResult.NotFound, "the test calls a foreign function Envoy lacks");
    const s = host.startVm(m.build()).newStream();
    s.requestHeaders({}, true);
    assert.equal(s.routeCacheClears, 1);
    assert.deepEqual(host.foreignCalls.map((f) => [f.name, f.contextId]), [["clear_route_cache", s.id]]);
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_call_foreign_function", "NotFound"]]);
  });

  test("a local reply from on_response_headers replaces the held response directly, without callbacks", () => {
    const m = new WatModule();
    const details = m.bytes("upstream said no");
    const body = m.bytes("sorry");
    m.func(`(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_send_local_response (i32.const 502) ${details} ${body} (i32.const 0) (i32.const 0) (i32.const -1)))
      (i32.const 0))`);
    const host = new Host();
    const s = host.startVm(m.build()).newStream();
    s.requestHeaders({}, true);
    assert.equal(s.responseHeaders({ ":status": "500" }), FilterHeadersStatus.StopAllIterationAndWatermark);
    assert.equal(s.localReply!.delivery, "direct");
    assert.equal(s.responseHeaders().get(":status"), "502");
    assert.equal(s.responseBodyText, "sorry");
    assert.equal(host.moduleCallCount.proxy_on_response_headers, 1);
  });

  test("a local reply after the response started resets the stream", () => {
    const m = new WatModule();
    m.func(`(func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
      (drop (call $proxy_send_local_response (i32.const 500) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))
      (i32.const 0))`);
    const s = new Host().startVm(m.build()).newStream();
    s.requestHeaders({}, true);
    s.responseHeaders({ ":status": "200" });
    assert.equal(s.responseBody("x", true), FilterDataStatus.StopIterationNoBuffer);
    assert.equal(s.localReply!.delivery, "reset");
    assert.equal(s.resetReason, "local reply after the response started");
  });

  test("the clock the module reads is the fake clock", () => {
    const m = new WatModule();
    const key = m.bytes("now");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_get_current_time_nanoseconds (i32.const 32)))
      (drop (call $proxy_set_shared_data ${key} (i32.const 32) (i32.const 8) (i32.const 0)))
      (drop (call $wasi_clock_time_get (i32.const 0) (i64.const 1) (i32.const 32)))
      (i32.const 0))`);
    const host = new Host({ startNs: 1_000n });
    host.clock.advanceMs(2);
    host.startVm(m.build()).newStream().requestHeaders({}, true);
    assert.deepEqual(host.sharedData("now")!.value, u64le(2_001_000n));
  });

  test("proxy_get_log_level reports the host's configured level", () => {
    const m = new WatModule();
    const key = m.bytes("level");
    m.func(`(func (export "proxy_on_vm_start") (param i32 i32) (result i32)
      (drop (call $proxy_get_log_level (i32.const 16)))
      (drop (call $proxy_set_shared_data ${key} (i32.const 16) (i32.const 4) (i32.const 0)))
      (i32.const 1))`);
    const host = new Host({ logLevel: LogLevel.Debug });
    host.startVm(m.build());
    assert.deepEqual(host.sharedData("level")!.value, u32le(LogLevel.Debug));
  });

  test("driving a stream in an order Envoy never would fails with a clear error", () => {
    const s = new Host().startVm(new WatModule().build()).newStream();
    assert.throws(() => s.requestBody("x"), /requestBody before request headers/);
    s.requestHeaders({}, true);
    assert.throws(() => s.requestBody("x"), /after the request ended/);
    s.finish();
    assert.throws(() => s.responseHeaders({ ":status": "200" }), /after done/);
    assert.ok(new EmulatorError("x") instanceof Error);
  });
});

describe("strict host results", () => {
  const proxyLogAt = (level: number) => {
    const m = new WatModule();
    const msg = m.bytes("x");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_log (i32.const ${level}) ${msg})) (i32.const 0))`);
    return m.build();
  };

  test("a non-Ok result the test did not expect fails the module call, naming the call, the result and the callback", () => {
    const host = new Host();
    const s = host.startVm(proxyLogAt(6)).newStream();
    assert.throws(() => s.requestHeaders({}, true), /proxy_log returned BadArgument during proxy_on_request_headers.*allowRejection\("proxy_log", WasmResult.BadArgument/);
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [["proxy_log", "BadArgument"]]);
  });

  test("an opt-in covers only its call and results, and must give a reason", () => {
    const other = new Host().allowRejection("proxy_get_buffer_status", WasmResult.BadArgument, "another call");
    assert.throws(() => other.startVm(proxyLogAt(6)).newStream().requestHeaders({}, true), /proxy_log returned BadArgument/);
    const wrongResult = new Host().allowRejection("proxy_log", WasmResult.NotFound, "another result");
    assert.throws(() => wrongResult.startVm(proxyLogAt(6)).newStream().requestHeaders({}, true), /proxy_log returned BadArgument/);
    const any = new Host().allowRejection("*", WasmResult.BadArgument, "the whole test provokes bad arguments");
    assert.equal(any.startVm(proxyLogAt(6)).newStream().requestHeaders({}, true), FilterHeadersStatus.Continue);
    assert.throws(() => new Host().allowRejection("proxy_log", WasmResult.BadArgument, " "), /give the reason/);
    assert.throws(() => new Host().allowRejection("proxy_log", WasmResult.Ok, "ok"), /non-Ok/);
  });

  test("results of normal operation pass without an opt-in: an absent header or key, a CAS race", () => {
    const m = new WatModule();
    const h = m.bytes("x-absent");
    const k = m.bytes("k");
    const v = m.bytes("v");
    m.func(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $proxy_get_header_map_value (i32.const 0) ${h} (i32.const 16) (i32.const 20)))
      (drop (call $proxy_get_shared_data ${k} (i32.const 16) (i32.const 20) (i32.const 24)))
      (drop (call $proxy_set_shared_data ${k} ${v} (i32.const 0)))
      (drop (call $proxy_set_shared_data ${k} ${v} (i32.const 7)))
      (i32.const 0))`);
    const host = new Host();
    assert.equal(host.startVm(m.build()).newStream().requestHeaders({}, true), FilterHeadersStatus.Continue);
    assert.deepEqual(host.rejections.map((r) => [r.call, r.resultName]), [
      ["proxy_get_header_map_value", "NotFound"], ["proxy_get_shared_data", "NotFound"], ["proxy_set_shared_data", "CasMismatch"],
    ]);
    assert.deepEqual(Object.keys(EXPECTED_RESULTS).sort(), [
      "proxy_dequeue_shared_queue", "proxy_get_header_map_value", "proxy_get_property", "proxy_get_shared_data",
      "proxy_resolve_shared_queue", "proxy_set_effective_context", "proxy_set_shared_data",
    ]);
  });
});
