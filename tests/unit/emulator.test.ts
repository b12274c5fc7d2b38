// Tests of the proxy-wasm host emulator's pieces: pair format, CAS shared-data store, metrics, property encoding,
// header map and fake clock. Module loading, the probe filter, stream rules and strict results: emulator-*.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  FakeClock,
  HeaderMap,
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
import { text, u32le, u64le } from "./emulator-bytes.js";

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
