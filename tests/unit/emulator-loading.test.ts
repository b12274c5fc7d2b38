// Emulator tests of module loading: Envoy's rules for the ABI marker, imports, exported callbacks and _initialize.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Host, LogLevel } from "../emulator/index.js";
import { WatModule, wat2wasm } from "../emulator/wat.js";

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
