// Emulator tests of strict host results: an unexpected non-Ok result fails the call unless the test opts in with a reason.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EXPECTED_RESULTS, FilterHeadersStatus, Host, WasmResult } from "../emulator/index.js";
import { WatModule } from "../emulator/wat.js";

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
