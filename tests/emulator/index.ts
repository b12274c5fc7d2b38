// Public surface of the proxy-wasm ABI 0.2.1 host emulator used by the unit tests.
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
export { Host, HttpCall, type HostOptions, type HttpCallResponse, type LogEntry, type Rejection } from "./host.js";
export { compileModule, type CompiledModule, type WasmSource } from "./load.js";
export { MetricStore, VmMetrics, type Stat } from "./metrics.js";
export { decodePairs, decodePairBytes, encodePairs, pairsSize, type HeaderPairs } from "./pairs.js";
export { PropertyTree, encodeProperty, prop, propertyPath, type PropertyValue, type TypedProperty } from "./properties.js";
export { SharedDataStore, SharedQueues } from "./shared-data.js";
export { Stream, type LocalReply, type StreamOptions } from "./stream.js";
export { ModuleCallError, RootContext, Vm, type RootOptions, type VmOptions } from "./vm.js";
