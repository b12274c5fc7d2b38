// path-guard in the package's emulator: the compiled module, a strict host, a fake clock (`npm run build` first).
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileModule, FilterHeadersStatus, Host, LogLevel } from "envoy-resilience-filters/emulator";

const wasm = compileModule(new URL("../build/path-guard.wasm", import.meta.url).pathname);
const CONFIG = JSON.stringify({ denyPrefix: "/admin", header: "x-path-guard", value: "passed" });

test("a request outside the prefix continues, tagged", () => {
  const host = new Host();
  const vm = host.startVm(wasm, { rootId: "path-guard", pluginConfig: CONFIG });
  const s = vm.newStream();
  assert.equal(s.requestHeaders({ ":method": "GET", ":authority": "a", ":path": "/orders" }, true), FilterHeadersStatus.Continue);
  assert.equal(s.requestHeaders().get("x-path-guard"), "passed");
  s.finish();
  assert.equal(host.counter("path_guard_passed_total"), 1n);
  assert.equal(host.counter("path_guard_denied_total"), 0n);
});

test("a request under the prefix gets a local 403", () => {
  const host = new Host();
  const vm = host.startVm(wasm, { rootId: "path-guard", pluginConfig: CONFIG });
  const s = vm.newStream();
  // The stage returns StopIteration; Envoy (and so the emulator) acts on it as StopAllIterationAndWatermark.
  assert.equal(s.requestHeaders({ ":method": "GET", ":authority": "a", ":path": "/admin/users" }, true), FilterHeadersStatus.StopAllIterationAndWatermark);
  assert.equal(s.localReply?.status, 403);
  assert.equal(s.localReply?.details, "path_guard_denied");
  s.finish();
  assert.equal(host.counter("path_guard_denied_total"), 1n);
});

test("a bad configuration is refused with one critical line naming the field", () => {
  const host = new Host();
  const root = host.createVm(wasm, {}).startRoot({ rootId: "path-guard", pluginConfig: '{"denyPrefix": "admin"}' });
  assert.equal(root.configureResult, false);
  assert.deepEqual(host.logsAt(LogLevel.Critical).map((l) => l.message),
    [`path-guard: field "denyPrefix": expected a path starting with '/', got "admin"`]);
});
