// Emulator tests of stream rules: when headers, buffers and properties are usable, http_call, local replies, call order.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  EmulatorError,
  FilterDataStatus,
  FilterHeadersStatus,
  Host,
  LogLevel,
  WasmResult,
  encodePairs,
} from "../emulator/index.js";
import { WatModule } from "../emulator/wat.js";
import { u32le, u64le } from "./emulator-bytes.js";

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
