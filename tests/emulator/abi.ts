// Proxy-Wasm ABI 0.2.1 constants and signatures, as listed in shared/reference/proxy-wasm-abi-0.2.1.md (sections 1-3).

/** WasmResult returned by every proxy_* host call. */
export enum WasmResult {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  SerializationFailure = 3,
  ParseFailure = 4,
  BadExpression = 5,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  ResultMismatch = 9,
  InternalFailure = 10,
  BrokenConnection = 11,
  Unimplemented = 12,
}

export enum FilterHeadersStatus {
  Continue = 0,
  StopIteration = 1,
  ContinueAndEndStream = 2,
  StopAllIterationAndBuffer = 3,
  StopAllIterationAndWatermark = 4,
}

export enum FilterDataStatus {
  Continue = 0,
  StopIterationAndBuffer = 1,
  StopIterationAndWatermark = 2,
  StopIterationNoBuffer = 3,
}

export enum FilterTrailersStatus {
  Continue = 0,
  StopIteration = 1,
}

export enum MapType {
  HttpRequestHeaders = 0,
  HttpRequestTrailers = 1,
  HttpResponseHeaders = 2,
  HttpResponseTrailers = 3,
  GrpcReceiveInitialMetadata = 4,
  GrpcReceiveTrailingMetadata = 5,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
}
export const MAP_TYPE_MAX = 7;

export enum BufferType {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  DownstreamData = 2,
  UpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  CallData = 8,
}
export const BUFFER_TYPE_MAX = 8;

export enum StreamType {
  HttpRequest = 0,
  HttpResponse = 1,
  Downstream = 2,
  Upstream = 3,
}

export enum MetricType {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}

export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
  Off = 6,
}

/** WASI errno values the host returns. */
export const Errno = {
  SUCCESS: 0,
  BADF: 8,
  FAULT: 21,
  INVAL: 28,
  NOENT: 44,
  NOSYS: 52,
  NOTSUP: 58,
} as const;

/** A function signature: param and result value types as wasm spells them. */
export interface Signature {
  params: readonly ValType[];
  results: readonly ValType[];
}
export type ValType = "i32" | "i64" | "f32" | "f64";

function sig(params: string, results = "i32"): Signature {
  const split = (s: string) => (s === "" ? [] : (s.split(",") as ValType[]));
  return { params: split(params), results: split(results) };
}
const i32s = (n: number) => Array(n).fill("i32").join(",");

/** Every `env` import Envoy registers for an ABI 0.2.1 module (section 1a), with its exact signature. */
export const ENV_IMPORTS: Readonly<Record<string, Signature>> = {
  proxy_log: sig(i32s(3)),
  proxy_get_log_level: sig(i32s(1)),
  proxy_get_current_time_nanoseconds: sig(i32s(1)),
  proxy_set_tick_period_milliseconds: sig(i32s(1)),
  proxy_get_property: sig(i32s(4)),
  proxy_set_property: sig(i32s(4)),
  proxy_get_buffer_bytes: sig(i32s(5)),
  proxy_get_buffer_status: sig(i32s(3)),
  proxy_set_buffer_bytes: sig(i32s(5)),
  proxy_get_header_map_pairs: sig(i32s(3)),
  proxy_set_header_map_pairs: sig(i32s(3)),
  proxy_get_header_map_value: sig(i32s(5)),
  proxy_add_header_map_value: sig(i32s(5)),
  proxy_replace_header_map_value: sig(i32s(5)),
  proxy_remove_header_map_value: sig(i32s(3)),
  proxy_get_header_map_size: sig(i32s(2)),
  proxy_continue_stream: sig(i32s(1)),
  proxy_close_stream: sig(i32s(1)),
  proxy_send_local_response: sig(i32s(8)),
  proxy_http_call: sig(i32s(10)),
  proxy_grpc_call: sig(i32s(12)),
  proxy_grpc_stream: sig(i32s(9)),
  proxy_grpc_send: sig(i32s(4)),
  proxy_grpc_cancel: sig(i32s(1)),
  proxy_grpc_close: sig(i32s(1)),
  proxy_get_status: sig(i32s(3)),
  proxy_set_shared_data: sig(i32s(5)),
  proxy_get_shared_data: sig(i32s(5)),
  proxy_register_shared_queue: sig(i32s(3)),
  proxy_resolve_shared_queue: sig(i32s(5)),
  proxy_enqueue_shared_queue: sig(i32s(3)),
  proxy_dequeue_shared_queue: sig(i32s(3)),
  proxy_define_metric: sig(i32s(4)),
  proxy_increment_metric: sig("i32,i64"),
  proxy_record_metric: sig("i32,i64"),
  proxy_get_metric: sig(i32s(2)),
  proxy_set_effective_context: sig(i32s(1)),
  proxy_done: sig(""),
  proxy_call_foreign_function: sig(i32s(6)),
  pthread_equal: sig(i32s(2)),
  emscripten_notify_memory_growth: sig(i32s(1), ""),
  envoy_resolve_dns: sig(i32s(3)),
};

/** Imports Envoy refuses for a 0.2.1 module, with the reason shown when a module imports one. */
export const ENV_IMPORTS_NOT_IN_0_2_1: Readonly<Record<string, string>> = {
  proxy_get_configuration: "ABI 0.1.0 only",
  proxy_continue_request: "ABI 0.1.0 only",
  proxy_continue_response: "ABI 0.1.0 only",
  proxy_clear_route_cache: "ABI 0.1.0 only; use the clear_route_cache foreign function",
};

/** The WASI functions Envoy registers under both wasi_snapshot_preview1 and wasi_unstable (section 1b). */
export const WASI_IMPORTS: Readonly<Record<string, Signature>> = {
  fd_write: sig(i32s(4)),
  fd_read: sig(i32s(4)),
  fd_seek: sig("i32,i64,i32,i32"),
  fd_close: sig(i32s(1)),
  fd_fdstat_get: sig(i32s(2)),
  fd_fdstat_set_flags: sig(i32s(2)),
  fd_prestat_get: sig(i32s(2)),
  fd_prestat_dir_name: sig(i32s(3)),
  path_open: sig("i32,i32,i32,i32,i32,i64,i64,i32,i32"),
  environ_sizes_get: sig(i32s(2)),
  environ_get: sig(i32s(2)),
  args_sizes_get: sig(i32s(2)),
  args_get: sig(i32s(2)),
  clock_time_get: sig("i32,i64,i32"),
  random_get: sig(i32s(2)),
  sched_yield: sig(""),
  poll_oneoff: sig(i32s(4)),
  proc_exit: sig(i32s(1), ""),
};
export const WASI_MODULES = ["wasi_snapshot_preview1", "wasi_unstable"] as const;

/** Imports callable while `_initialize`/`main`/`_start` runs (section 0); anything else traps in Envoy. */
export const ALLOWED_DURING_INIT: ReadonlySet<string> = new Set([
  "proxy_log",
  "emscripten_notify_memory_growth",
  "fd_write",
  "args_sizes_get",
  "args_get",
  "environ_sizes_get",
  "environ_get",
  "fd_prestat_get",
  "fd_prestat_dir_name",
  "clock_time_get",
  "random_get",
  "fd_fdstat_get",
  "fd_fdstat_set_flags",
]);

/** Imports callable while the host is inside the module's malloc (section 0). */
export const ALLOWED_DURING_MALLOC: ReadonlySet<string> = new Set(["proxy_log", "fd_write", "clock_time_get"]);

/** Exports the host looks up, with the exact signature Envoy requires (section 2). */
export const KNOWN_EXPORTS: Readonly<Record<string, Signature>> = {
  proxy_abi_version_0_2_1: sig("", ""),
  _initialize: sig("", ""),
  main: sig(i32s(2)),
  __main_void: sig("", "i32"),
  _start: sig("", ""),
  malloc: sig(i32s(1)),
  proxy_on_memory_allocate: sig(i32s(1)),
  proxy_on_context_create: sig(i32s(2), ""),
  proxy_on_vm_start: sig(i32s(2)),
  proxy_on_configure: sig(i32s(2)),
  proxy_on_tick: sig(i32s(1), ""),
  proxy_on_queue_ready: sig(i32s(2), ""),
  proxy_on_foreign_function: sig(i32s(3), ""),
  proxy_on_request_headers: sig(i32s(3)),
  proxy_on_request_body: sig(i32s(3)),
  proxy_on_request_trailers: sig(i32s(2)),
  proxy_on_request_metadata: sig(i32s(2)),
  proxy_on_response_headers: sig(i32s(3)),
  proxy_on_response_body: sig(i32s(3)),
  proxy_on_response_trailers: sig(i32s(2)),
  proxy_on_response_metadata: sig(i32s(2)),
  proxy_on_new_connection: sig(i32s(1)),
  proxy_on_downstream_data: sig(i32s(3)),
  proxy_on_upstream_data: sig(i32s(3)),
  proxy_on_downstream_connection_close: sig(i32s(2), ""),
  proxy_on_upstream_connection_close: sig(i32s(2), ""),
  proxy_on_http_call_response: sig(i32s(5), ""),
  proxy_on_grpc_receive_initial_metadata: sig(i32s(3), ""),
  proxy_on_grpc_receive_trailing_metadata: sig(i32s(3), ""),
  proxy_on_grpc_receive: sig(i32s(3), ""),
  proxy_on_grpc_close: sig(i32s(3), ""),
  proxy_on_done: sig(i32s(1)),
  proxy_on_log: sig(i32s(1), ""),
  proxy_on_delete: sig(i32s(1), ""),
  proxy_validate_configuration: sig(i32s(2)),
  envoy_on_resolve_dns: sig(i32s(3), ""),
  envoy_on_stats_update: sig(i32s(2), ""),
};

export const ABI_MARKER = "proxy_abi_version_0_2_1";
export const OTHER_ABI_MARKERS = ["proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0"] as const;

export function formatSignature(s: Signature): string {
  return `(${s.params.join(", ")}) -> (${s.results.join(", ")})`;
}

export function sameSignature(a: Signature, b: Signature): boolean {
  return a.params.join() === b.params.join() && a.results.join() === b.results.join();
}
