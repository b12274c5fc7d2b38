/**
 * Safe wrappers over the raw host imports. Each returns plain AssemblyScript values; NotFound becomes "absent"
 * (null, false or a default) and buffers the host allocated in our memory are copied out and freed at once.
 */
import * as abi from "./abi/imports";
import { WasmResult, MapType, BufferType, MetricType, LogLevel, GrpcStatus } from "./abi/types";
// Filters take the ABI's enums from here: nothing outside assembly/ imports assembly/abi/.
export { MapType, BufferType, MetricType, LogLevel, GrpcStatus, FilterHeadersStatus, FilterDataStatus, FilterTrailersStatus } from "./abi/types";

// Out-parameter words the host writes into: static memory, so no allocation per call.
const OUT_A: usize = memory.data(8, 8);
const OUT_B: usize = memory.data(8, 8);
const OUT_C: usize = memory.data(8, 8);

/** A string encoded to UTF-8 once (header names, property paths, shared-data keys): reuse it on hot paths. */
@final
export class Str {
  readonly bytes: ArrayBuffer;
  constructor(public readonly text: string) {
    this.bytes = String.UTF8.encode(text);
  }
  @inline get ptr(): usize { return changetype<usize>(this.bytes); }
  @inline get len(): usize { return <usize>this.bytes.byteLength; }
}

/** A property path: segments joined by NUL, as the host expects (e.g. `Path.of(["xds", "cluster_name"])`). */
export function propertyPath(segments: string[]): Str {
  return new Str(segments.join("\0"));
}

/**
 * Where Envoy puts a value it returns (its re-entry into `malloc`, exports.ts), when the value fits and the last one was
 * taken: every wrapper here copies a returned value out before the next host call, so one static block serves them all
 * and the allocator is not involved. A larger value, or one asked for while the block is taken, gets a heap block.
 */
// @ts-ignore: decorator
@inline const RETURN_BLOCK_SIZE: usize = 16384;
const RETURN_BLOCK: usize = memory.data(<i32>RETURN_BLOCK_SIZE, 16);
let returnBlockTaken = false;

/** Memory for a value the host returns (the exported `malloc`). */
export function allocateForHost(size: usize): usize {
  if (!returnBlockTaken && size <= RETURN_BLOCK_SIZE) {
    returnBlockTaken = true;
    return RETURN_BLOCK;
  }
  return heap.alloc(size);
}

/** Gives back what allocateForHost handed out, once the value is copied out. */
function releaseFromHost(ptr: usize): void {
  if (ptr == RETURN_BLOCK) {
    returnBlockTaken = false;
  } else {
    heap.free(ptr);
  }
}

/**
 * Values handed to the host (header values, properties, log lines) are encoded here when they fit: the host copies them
 * during the call, so one static block serves every call and sending a value allocates nothing.
 */
// @ts-ignore: decorator
@inline const SEND_BLOCK_SIZE: i32 = 4096;
const SEND_BLOCK: usize = memory.data(SEND_BLOCK_SIZE, 16);
/** The encoded length of the value last given to toHost. */
let sentLength: usize = 0;

/** `value` as UTF-8 for one host call: the pointer (static or a new buffer), its length in sentLength. */
function toHost(value: string): usize {
  // A UTF-16 unit takes at most 3 UTF-8 bytes (a surrogate pair: 4 bytes for 2 units).
  if (value.length <= SEND_BLOCK_SIZE / 3) {
    sentLength = String.UTF8.encodeUnsafe(changetype<usize>(value), value.length, SEND_BLOCK);
    return SEND_BLOCK;
  }
  const buf = String.UTF8.encode(value);
  sentLength = <usize>buf.byteLength;
  return changetype<usize>(buf);
}

/**
 * Recently decoded values, returned again when the same bytes come back: the values a worker reads per request (an
 * authority, a cluster name) repeat, and strings are immutable, so a repeat costs a comparison instead of an allocation.
 * Only ASCII values are compared (a byte equals its UTF-16 unit); others are decoded each time.
 */
// @ts-ignore: decorator
@inline const RECENT_VALUES: i32 = 4;
const recentValues: StaticArray<string> = ["", "", "", ""];
let recentNext: i32 = 0;

function decodeValue(ptr: usize, len: usize): string {
  for (let i = 0; i < RECENT_VALUES; i++) {
    const r = unchecked(recentValues[i]);
    if (<usize>r.length == len && sameAscii(ptr, changetype<usize>(r), len)) return r;
  }
  const s = String.UTF8.decodeUnsafe(ptr, len);
  unchecked(recentValues[recentNext] = s);
  recentNext = (recentNext + 1) & (RECENT_VALUES - 1);
  return s;
}

/** True when the `len` bytes at `bytes` are ASCII and equal the UTF-16 units at `units`. */
function sameAscii(bytes: usize, units: usize, len: usize): bool {
  for (let i: usize = 0; i < len; i++) {
    const b = <u32>load<u8>(bytes + i);
    if (b >= 0x80 || b != <u32>load<u16>(units + (i << 1))) return false;
  }
  return true;
}

@inline function takeString(): string {
  const ptr = load<usize>(OUT_A);
  const len = load<u32>(OUT_B);
  if (len == 0) return "";
  const s = decodeValue(ptr, len);
  releaseFromHost(ptr);
  return s;
}

@inline function takeBuffer(): ArrayBuffer {
  const ptr = load<usize>(OUT_A);
  const len = load<u32>(OUT_B);
  const buf = new ArrayBuffer(<i32>len);
  if (len != 0) {
    memory.copy(changetype<usize>(buf), ptr, len);
    releaseFromHost(ptr);
  }
  return buf;
}

/** Fails loudly on a result the binding does not expect: a module bug, not a runtime condition. */
function unexpected(what: string, r: i32): void {
  abort("host call " + what + " returned WasmResult " + r.toString());
}

// ---------------------------------------------------------------- logging

let cachedLogLevel: i32 = LogLevel.Info;

/** Re-reads the host's `wasm` logger level (done at configure and on every tick, not per log line). */
export function refreshLogLevel(): i32 {
  if (abi.proxy_get_log_level(OUT_A) == WasmResult.Ok) cachedLogLevel = load<i32>(OUT_A);
  return cachedLogLevel;
}

/** True when a line at `level` would be written: check it before building a message on a hot path. */
@inline export function logEnabled(level: LogLevel): bool {
  return <i32>level >= cachedLogLevel;
}

export function log(level: LogLevel, message: string): void {
  if (<i32>level < cachedLogLevel) return;
  const ptr = toHost(message);
  abi.proxy_log(level, ptr, sentLength);
}

// ---------------------------------------------------------------- clock and timers

/** Wall-clock time in nanoseconds since the epoch. */
export function nowNs(): i64 {
  abi.proxy_get_current_time_nanoseconds(OUT_A);
  return load<i64>(OUT_A);
}

/** Wall-clock time in milliseconds since the epoch. */
@inline export function nowMs(): i64 {
  return nowNs() / 1_000_000;
}

/** Sets the calling root context's tick period; 0 disables it. */
export function setTickPeriodMs(ms: u32): void {
  abi.proxy_set_tick_period_milliseconds(ms);
}

// ---------------------------------------------------------------- randomness

let rngState: u64 = 0;

/** A fast xorshift64* generator seeded from the host's entropy (WASI random_get) on first use. */
export function randomU64(): u64 {
  if (rngState == 0) {
    abi.random_get(OUT_A, 8);
    rngState = load<u64>(OUT_A) | 1;
  }
  let x = rngState;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rngState = x;
  return x * 0x2545F4914F6CDD1D;
}

/** Uniform in [0, 1). */
export function randomF64(): f64 {
  return <f64>(randomU64() >> 11) / 9007199254740992.0;
}

// ---------------------------------------------------------------- headers

/** First value of header `name` in `map`, or null when absent (or the map is not available now). */
export function getHeader(map: MapType, name: Str): string | null {
  const r = abi.proxy_get_header_map_value(map, name.ptr, name.len, OUT_A, OUT_B);
  if (r == WasmResult.Ok) return takeString();
  return null;
}

/** Appends a value. Returns false when the map is not writable at this point of the stream. */
export function addHeader(map: MapType, name: Str, value: string): bool {
  const ptr = toHost(value);
  return abi.proxy_add_header_map_value(map, name.ptr, name.len, ptr, sentLength) == WasmResult.Ok;
}

/** Sets (overwrites) a header. Returns false when the map is not writable at this point of the stream. */
export function replaceHeader(map: MapType, name: Str, value: string): bool {
  const ptr = toHost(value);
  return abi.proxy_replace_header_map_value(map, name.ptr, name.len, ptr, sentLength) == WasmResult.Ok;
}

/** Removes every value of a header (Ok when absent). Returns false when the map is not writable. */
export function removeHeader(map: MapType, name: Str): bool {
  return abi.proxy_remove_header_map_value(map, name.ptr, name.len) == WasmResult.Ok;
}

/** One header (or metadata) pair. */
export class HeaderPair {
  constructor(public name: string, public value: string) {}
}

/** Every pair of a map, in the host's order (pseudo-headers first); empty when unavailable. */
export function getHeaderPairs(map: MapType): HeaderPair[] {
  const buf = getHeaderPairsRaw(map);
  return buf !== null ? deserializePairs(buf) : new Array<HeaderPair>();
}

/** A whole map in one host call, serialized (see serializePairs): look values up with pairValue. Null when unavailable. */
export function getHeaderPairsRaw(map: MapType): ArrayBuffer | null {
  if (abi.proxy_get_header_map_pairs(map, OUT_A, OUT_B) != WasmResult.Ok) return null;
  return takeBuffer();
}

/** The first value of `name` in a serialized map, or null; a truncated buffer holds only the pairs before the fault. */
export function pairValue(buf: ArrayBuffer, name: Str): string | null {
  const size = <usize>buf.byteLength;
  if (size < 4) return null;
  const base = changetype<usize>(buf);
  const n = <usize>load<u32>(base);
  if (<usize>4 + n * 8 > size) return null;
  const want = name.len;
  let data = base + 4 + n * 8;
  const end = base + size;
  for (let i: usize = 0; i < n; i++) {
    const kl = <usize>load<u32>(base + 4 + i * 8);
    const vl = <usize>load<u32>(base + 8 + i * 8);
    if (data + kl + vl + 2 > end) return null;
    if (kl == want && memory.compare(data, name.ptr, kl) == 0) return decodeValue(data + kl + 1, vl);
    data += kl + vl + 2;
  }
  return null;
}

/** Replaces the whole map (the host wipes it first). */
export function setHeaderPairs(map: MapType, pairs: HeaderPair[]): bool {
  const buf = serializePairs(pairs);
  return abi.proxy_set_header_map_pairs(map, changetype<usize>(buf), <usize>buf.byteLength) == WasmResult.Ok;
}

/**
 * Serializes pairs as the host expects: u32 count, count x (u32 keyLen, u32 valueLen), then each key and value
 * NUL-terminated. Little-endian. The host silently treats a malformed buffer as an empty map, so this must be exact.
 */
export function serializePairs(pairs: HeaderPair[]): ArrayBuffer {
  const n = pairs.length;
  const names = new Array<ArrayBuffer>(n);
  const values = new Array<ArrayBuffer>(n);
  let size: i32 = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const k = String.UTF8.encode(pairs[i].name);
    const v = String.UTF8.encode(pairs[i].value);
    names[i] = k;
    values[i] = v;
    size += k.byteLength + v.byteLength + 2;
  }
  const buf = new ArrayBuffer(size);
  const base = changetype<usize>(buf);
  store<u32>(base, <u32>n);
  let data = base + 4 + <usize>n * 8;
  for (let i = 0; i < n; i++) {
    const k = names[i];
    const v = values[i];
    store<u32>(base + 4 + <usize>i * 8, <u32>k.byteLength);
    store<u32>(base + 8 + <usize>i * 8, <u32>v.byteLength);
    memory.copy(data, changetype<usize>(k), <usize>k.byteLength);
    data += <usize>k.byteLength;
    store<u8>(data, 0);
    data += 1;
    memory.copy(data, changetype<usize>(v), <usize>v.byteLength);
    data += <usize>v.byteLength;
    store<u8>(data, 0);
    data += 1;
  }
  return buf;
}

/** Inverse of serializePairs; a truncated or inconsistent buffer yields the pairs read before the fault. */
export function deserializePairs(buf: ArrayBuffer): HeaderPair[] {
  const out = new Array<HeaderPair>();
  const size = <usize>buf.byteLength;
  if (size < 4) return out;
  const base = changetype<usize>(buf);
  const n = <usize>load<u32>(base);
  if (<usize>4 + n * 8 > size) return out;
  let data = base + 4 + n * 8;
  const end = base + size;
  for (let i: usize = 0; i < n; i++) {
    const kl = <usize>load<u32>(base + 4 + i * 8);
    const vl = <usize>load<u32>(base + 8 + i * 8);
    if (data + kl + vl + 2 > end) break;
    const k = String.UTF8.decodeUnsafe(data, kl);
    data += kl + 1;
    const v = String.UTF8.decodeUnsafe(data, vl);
    data += vl + 1;
    out.push(new HeaderPair(k, v));
  }
  return out;
}

// ---------------------------------------------------------------- properties

/** Raw bytes of a property, or null when it does not exist (yet) for this stream. */
export function getProperty(path: Str): ArrayBuffer | null {
  const r = abi.proxy_get_property(path.ptr, path.len, OUT_A, OUT_B);
  if (r != WasmResult.Ok) return null;
  return takeBuffer();
}

/** A string property (request.host, xds.cluster_name, upstream.address...), or null when absent. */
export function getPropertyString(path: Str): string | null {
  const r = abi.proxy_get_property(path.ptr, path.len, OUT_A, OUT_B);
  if (r != WasmResult.Ok) return null;
  return takeString();
}

/**
 * An integer, timestamp (ns since epoch) or duration (ns) property: 8 bytes little-endian on the wire.
 * Returns `absent` when the property does not exist or is not 8 bytes long.
 */
export function getPropertyI64(path: Str, absent: i64): i64 {
  const r = abi.proxy_get_property(path.ptr, path.len, OUT_A, OUT_B);
  if (r != WasmResult.Ok) return absent;
  const ptr = load<usize>(OUT_A);
  const len = load<u32>(OUT_B);
  if (len == 0) return absent;
  const v = len == 8 ? load<i64>(ptr) : absent;
  releaseFromHost(ptr);
  return v;
}

/** Writes filter state `wasm.<path>`; false where there is no stream (e.g. a root context). */
export function setProperty(path: Str, value: string): bool {
  const ptr = toHost(value);
  return abi.proxy_set_property(path.ptr, path.len, ptr, sentLength) == WasmResult.Ok;
}

// ---------------------------------------------------------------- buffers

/** The whole of a buffer (plugin or VM configuration, bodies, call responses); empty when unavailable. */
export function getBuffer(type: BufferType, start: u32 = 0, maxLen: u32 = 0xFFFFFFFF): ArrayBuffer {
  const r = abi.proxy_get_buffer_bytes(type, start, maxLen, OUT_A, OUT_B);
  if (r != WasmResult.Ok) return new ArrayBuffer(0);
  return takeBuffer();
}

// ---------------------------------------------------------------- local replies, streams, route cache

/**
 * Answers the stream locally: later filters and the router never see the request. `details` becomes
 * `response.code_details` (spaces -> `_`). Pass grpcStatus GrpcStatus.None for plain HTTP.
 */
export function sendLocalResponse(status: u32, details: string, body: string, headers: HeaderPair[], grpcStatus: i32 = GrpcStatus.None): bool {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const h = serializePairs(headers);
  return abi.proxy_send_local_response(
    status, changetype<usize>(d), <usize>d.byteLength, changetype<usize>(b), <usize>b.byteLength,
    changetype<usize>(h), <usize>h.byteLength, grpcStatus) == WasmResult.Ok;
}

/** Resumes a paused request (0) or response (1). */
export function continueStream(stream: i32): bool {
  return abi.proxy_continue_stream(stream) == WasmResult.Ok;
}

const CLEAR_ROUTE_CACHE = new Str("clear_route_cache");

/**
 * Makes Envoy re-select the route (Envoy 1.33+; false on older ones). Not needed after a request-header change by this
 * binding's modules: Envoy clears the cache itself for ABI 0.2.1; for a module of a later ABI, or a route change other
 * than a header.
 */
export function clearRouteCache(): bool {
  return abi.proxy_call_foreign_function(CLEAR_ROUTE_CACHE.ptr, CLEAR_ROUTE_CACHE.len, 0, 0, 0, 0) == WasmResult.Ok;
}

/** Calls a host foreign function; null when it is unknown or fails. */
export function callForeignFunction(name: Str, args: ArrayBuffer): ArrayBuffer | null {
  const r = abi.proxy_call_foreign_function(name.ptr, name.len, changetype<usize>(args), <usize>args.byteLength, OUT_A, OUT_B);
  if (r != WasmResult.Ok) return null;
  return takeBuffer();
}

/** Routes later host calls of this callback to another context (e.g. a stream, from an http-call response). */
export function setEffectiveContext(contextId: u32): bool {
  return abi.proxy_set_effective_context(contextId) == WasmResult.Ok;
}

// ---------------------------------------------------------------- http callouts

/**
 * Sends an HTTP request to an Envoy cluster; the answer arrives at the owning root context's onHttpCallResponse.
 * Headers must hold :method, :path and :authority. Returns the token, or 0 when the host refused the call.
 */
export function httpCall(cluster: string, headers: HeaderPair[], body: string, timeoutMs: u32): u32 {
  const c = String.UTF8.encode(cluster);
  const h = serializePairs(headers);
  const b = String.UTF8.encode(body);
  const t = serializePairs([]);
  const r = abi.proxy_http_call(
    changetype<usize>(c), <usize>c.byteLength, changetype<usize>(h), <usize>h.byteLength,
    changetype<usize>(b), <usize>b.byteLength, changetype<usize>(t), <usize>t.byteLength, timeoutMs, OUT_A);
  return r == WasmResult.Ok ? load<u32>(OUT_A) : 0;
}

/** Status of the last failed call of the root context (11 "reset" after a failed http call). */
export function getStatusCode(): u32 {
  if (abi.proxy_get_status(OUT_A, OUT_B, OUT_C) != WasmResult.Ok) return 0;
  const ptr = load<usize>(OUT_B);
  if (load<u32>(OUT_C) != 0) releaseFromHost(ptr);
  return load<u32>(OUT_A);
}

// ---------------------------------------------------------------- shared data

/** A shared-data value with the CAS token its next conditional write must present. */
export class SharedValue {
  constructor(public data: ArrayBuffer, public cas: u32) {}
}

/** Reads a key of the VM-id-wide shared store, or null when the key was never written. */
export function getSharedData(key: Str): SharedValue | null {
  const r = abi.proxy_get_shared_data(key.ptr, key.len, OUT_A, OUT_B, OUT_C);
  if (r == WasmResult.NotFound) return null;
  if (r != WasmResult.Ok) { unexpected("proxy_get_shared_data", r); return null; }
  const cas = load<u32>(OUT_C);
  return new SharedValue(takeBuffer(), cas);
}

/**
 * The CAS token for a conditional write after reading `value`: its cas, or, for a key that was absent, a token the
 * store never holds. The host writes an absent key whatever the token, but once another worker has created it the
 * write fails, so two workers creating one key at once cannot both win (with 0 the second would overwrite the first).
 */
export function casFor(value: SharedValue | null): u32 {
  return value !== null ? value.cas : CAS_CREATE;
}

/** See casFor: a token no stored value has (the host's counter would need 2^32 writes to reach it). */
// @ts-ignore: decorator
@inline export const CAS_CREATE: u32 = 0xFFFFFFFF;

/**
 * Writes a key. With cas != 0 the write succeeds only if nobody wrote since that read (false on a CAS
 * mismatch: read again and retry). cas 0 writes unconditionally.
 */
export function setSharedData(key: Str, data: ArrayBuffer, cas: u32): bool {
  const r = abi.proxy_set_shared_data(key.ptr, key.len, changetype<usize>(data), <usize>data.byteLength, cas);
  if (r == WasmResult.Ok) return true;
  if (r != WasmResult.CasMismatch) unexpected("proxy_set_shared_data", r);
  return false;
}

// ---------------------------------------------------------------- metrics

/** Defines a metric (Envoy stat `wasmcustom.<name>`); returns its id for this VM. */
export function defineMetric(type: MetricType, name: string): u32 {
  const n = String.UTF8.encode(name);
  const r = abi.proxy_define_metric(type, changetype<usize>(n), <usize>n.byteLength, OUT_A);
  if (r != WasmResult.Ok) unexpected("proxy_define_metric(" + name + ")", r);
  return load<u32>(OUT_A);
}

@inline export function incrementMetric(id: u32, delta: i64): void {
  abi.proxy_increment_metric(id, delta);
}

@inline export function recordMetric(id: u32, value: u64): void {
  abi.proxy_record_metric(id, value);
}

export function getMetric(id: u32): u64 {
  if (abi.proxy_get_metric(id, OUT_A) != WasmResult.Ok) return 0;
  return load<u64>(OUT_A);
}

/** For a root context that deferred its on_done: tell the host it may now delete it. */
export function rootDone(): bool {
  return abi.proxy_done() == WasmResult.Ok;
}
