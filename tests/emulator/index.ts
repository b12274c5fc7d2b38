// Public surface of the proxy-wasm ABI 0.2.1 host emulator used by the unit tests. Typical use:
//
//   const host = new Host({ logLevel: LogLevel.Debug });
//   const [w0, w1] = host.startVms("build/service-metrics.wasm", 2, { pluginConfig: "{}" });
//   const s = w0.newStream({ properties: { "xds.cluster_name": "svc" } });
//   s.requestHeaders({ ":authority": "a", ":path": "/" }, true);   // -> FilterHeadersStatus
//   s.responseHeaders({ ":status": "503" }, true);
//   host.clock.advanceMs(25);
//   s.finish();                                                     // on_log, on_done, on_delete
//   host.counter("..."); host.histogram("..."); host.sharedData("key"); s.localReply; s.hostCallCount;
//
// Anything Envoy would reject as a module bug (bad pointer, bad enum, malformed pairs, restricted or unimplemented
// call, trap) throws an EmulatorError naming the host call and the callback. The host is strict: a non-Ok result
// fails the test too, unless Envoy gives it in normal operation (EXPECTED_RESULTS: an absent header, property or
// shared-data key, a CAS race, an empty queue) or the test opts in with host.allowRejection(call, result, reason).
// Every non-Ok result is listed in host.rejections.
export {
  BufferType,
  FilterDataStatus,
  FilterHeadersStatus,
  FilterTrailersStatus,
  LogLevel,
  MapType,
  MetricType,
  StreamType,
  WasmResult,
} from "./abi.js";
export { FakeClock } from "./clock.js";
export { EmulatorError } from "./errors.js";
export { HeaderMap, type HeadersInit } from "./headers.js";
export { EXPECTED_RESULTS, Host, HttpCall, type AllowedRejection, type HostOptions, type HttpCallResponse, type LogEntry, type Rejection } from "./host.js";
export { compileModule, type CompiledModule, type WasmSource } from "./load.js";
export { MetricStore, VmMetrics, type Stat } from "./metrics.js";
export { decodePairs, decodePairBytes, encodePairs, pairsSize, type HeaderPairs } from "./pairs.js";
export { PropertyTree, encodeProperty, prop, propertyPath, type PropertyValue, type TypedProperty } from "./properties.js";
export { SharedDataStore, SharedQueues } from "./shared-data.js";
export { Stream, type LocalReply, type StreamOptions } from "./stream.js";
export { ModuleCallError, RootContext, Vm, type RootOptions, type VmOptions } from "./vm.js";
