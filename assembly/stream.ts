/**
 * StreamView: one stream's host data, read lazily and at most once. Several filter stages asking for `:authority`
 * cost one host call; constant names and property paths are encoded once at start. Stages read through the view and
 * write through it, so the combined module applies every stage's header changes in one pass.
 */
import { MapType, GrpcStatus } from "./abi/types";
import {
  Str, propertyPath, getHeader, getHeaderPairsRaw, pairValue, replaceHeader, removeHeader, getPropertyI64, getPropertyString,
  sendLocalResponse, HeaderPair, setProperty, getSharedData, SharedValue,
} from "./host";
import { RecordUpdate, SharedRecords } from "./shared";
import { splitOn } from "./text";

export const H_AUTHORITY = new Str(":authority");
export const H_PATH = new Str(":path");
const H_STATUS = new Str(":status");
export const H_METHOD = new Str(":method");
export const H_CONTENT_TYPE = new Str("content-type");
export const H_REQUEST_ID = new Str("x-request-id");
export const P_CLUSTER_NAME = propertyPath(["xds", "cluster_name"]);
export const P_REQUEST_TIME = propertyPath(["request", "time"]);
export const P_REQUEST_DURATION = propertyPath(["request", "duration"]);
export const P_RESPONSE_CODE = propertyPath(["response", "code"]);
export const P_RESPONSE_FLAGS = propertyPath(["response", "flags"]);
export const P_ATTEMPT_COUNT = propertyPath(["upstream", "request_attempt_count"]);
export const P_UPSTREAM_ADDRESS = propertyPath(["upstream", "address"]);
/** Filter state `wasm.resilience_caller_budget_ms`: the caller's budget, published for the other Wasm filters of a chain. */
export const P_CALLER_BUDGET = propertyPath(["resilience_caller_budget_ms"]);
/** Filter state `wasm.resilience_retries_granted`: "<granted>/<wanted>", set only when a retry budget granted fewer. */
export const P_RETRIES_GRANTED = propertyPath(["resilience_retries_granted"]);
/** First URI SAN of the peer's / this proxy's certificate on the downstream connection ("" or absent without TLS). */
export const P_DOWNSTREAM_PEER_URI_SAN = propertyPath(["connection", "uri_san_peer_certificate"]);
export const P_DOWNSTREAM_LOCAL_URI_SAN = propertyPath(["connection", "uri_san_local_certificate"]);
/** The same on the upstream connection the router used (known at completion). */
export const P_UPSTREAM_PEER_URI_SAN = propertyPath(["upstream", "uri_san_peer_certificate"]);
export const P_UPSTREAM_LOCAL_URI_SAN = propertyPath(["upstream", "uri_san_local_certificate"]);
/** Request / response size in bytes, headers included (known at completion). */
export const P_REQUEST_TOTAL_SIZE = propertyPath(["request", "total_size"]);
export const P_RESPONSE_TOTAL_SIZE = propertyPath(["response", "total_size"]);
/** The gRPC status of the response (trailers, or headers for a trailers-only reply). */
export const P_GRPC_STATUS = propertyPath(["response", "grpc_status"]);

/** Envoy's legacy response-flag bits (`response.flags`: bit n = CoreResponseFlag n), classified in filters/common. */
export namespace ResponseFlag {
  // @ts-ignore: decorator
  @inline export const UPSTREAM_HEALTHY_NONE: i64 = 0x2;        // UH: no healthy upstream
  // @ts-ignore: decorator
  @inline export const UPSTREAM_TIMEOUT: i64 = 0x4;             // UT
  // @ts-ignore: decorator
  @inline export const LOCAL_RESET: i64 = 0x8;                  // LR
  // @ts-ignore: decorator
  @inline export const UPSTREAM_RESET: i64 = 0x10;              // UR
  // @ts-ignore: decorator
  @inline export const UPSTREAM_CONNECT_FAILURE: i64 = 0x20;    // UF
  // @ts-ignore: decorator
  @inline export const UPSTREAM_CONNECT_TERMINATION: i64 = 0x40; // UC
  // @ts-ignore: decorator
  @inline export const UPSTREAM_OVERFLOW: i64 = 0x80;           // UO
  // @ts-ignore: decorator
  @inline export const NO_ROUTE: i64 = 0x100;                   // NR
  // @ts-ignore: decorator
  @inline export const DOWNSTREAM_CONNECTION_TERMINATION: i64 = 0x4000; // DC
  // @ts-ignore: decorator
  @inline export const UPSTREAM_RETRY_LIMIT: i64 = 0x8000;      // URX
  // @ts-ignore: decorator
  @inline export const UPSTREAM_MAX_STREAM_DURATION: i64 = 0x80000; // UMSDR
  // @ts-ignore: decorator
  @inline export const UPSTREAM_PROTOCOL_ERROR: i64 = 0x800000;  // UPE
  // @ts-ignore: decorator
  @inline export const NO_CLUSTER: i64 = 0x1000000;              // NC
  // @ts-ignore: decorator
  @inline export const DOWNSTREAM_REMOTE_RESET: i64 = 0x10000000; // DR
}

// @ts-ignore: decorator
@inline const UNREAD: i64 = i64.MIN_VALUE;
/** Routes this VM learned (see RouteMemo) at most. */
// @ts-ignore: decorator
@inline const ROUTE_MEMO_CAP: i32 = 256;

/**
 * Envoy keeps naming the first route's cluster (`xds.cluster_name`) after a filter changed a routing header, until its
 * router re-selects the route; only at completion does the property name the cluster the request went to. So the
 * module learns, from completed requests, "first route's cluster + the routing headers the stages wrote -> final
 * cluster", and a later request with the same pair gets its final cluster on request headers. What one worker learns
 * is shared with the others through one shared-data value (read once by a worker on a miss), so a destination whose
 * requests taught its breaker or budget something is known on every worker from then on. Bounded: clusters x routing
 * values, at most ROUTE_MEMO_CAP pairs; the keys are the operator's cluster names and the stages' own header writes.
 */
const routeMemo = new Map<string, string>();
const ROUTE_MEMO_KEY = new Str("resilience.route_memo");
/** Separators in the shared value: header names, values and cluster names never hold control characters. */
const MEMO_ENTRY = "\x1e";
const MEMO_FIELD = "\x1f";
/** Shared-data cas of the value last merged into routeMemo (0: never read). */
let routeMemoCas: u32 = 0;

/** Merges the shared memo into this VM's map; true when the value was read. */
function loadSharedRouteMemo(): bool {
  const v = getSharedData(ROUTE_MEMO_KEY);
  if (v === null || v.cas == routeMemoCas) return false;
  routeMemoCas = v.cas;
  const entries = splitOn(String.UTF8.decode(v.data), MEMO_ENTRY);
  for (let i = 0; i < entries.length; i++) {
    const e = unchecked(entries[i]);
    const sep = e.indexOf(MEMO_FIELD);
    if (sep > 0 && routeMemo.size < ROUTE_MEMO_CAP) routeMemo.set(e.substring(0, sep), e.substring(sep + 1));
  }
  return true;
}

/** Appends one learned pair to the shared memo, unless it is full or another worker taught the pair already. */
class RouteMemoAppend extends RecordUpdate {
  key: string = "";
  entry: string = "";

  apply(v: SharedValue | null): ArrayBuffer | null {
    const cur = v !== null ? String.UTF8.decode(v.data) : "";
    if (splitOn(cur, MEMO_ENTRY).length > ROUTE_MEMO_CAP) return null;
    if ((MEMO_ENTRY + cur).includes(MEMO_ENTRY + this.key + MEMO_FIELD)) return null; // another worker taught it already
    return String.UTF8.encode(cur.length > 0 ? cur + MEMO_ENTRY + this.entry : this.entry);
  }
}
const routeMemoRecords = new SharedRecords("route_memo");
const routeMemoAppend = new RouteMemoAppend();

/** Learns a pair on this VM and adds it to the shared memo (assembly/shared.ts: a CAS append under the one retry policy). */
function learnRoute(key: string, cluster: string): void {
  if (routeMemo.has(key) || routeMemo.size >= ROUTE_MEMO_CAP) return;
  routeMemo.set(key, cluster);
  const u = routeMemoAppend;
  u.key = key;
  u.entry = key + MEMO_FIELD + cluster;
  routeMemoRecords.update(ROUTE_MEMO_KEY, u);
}

/**
 * One routing write as the RouteMemo key spells it: "\n<name>=<value>", or "\n<name>" for a removal. Streams of a
 * worker repeat the same writes (a subset's name), so the last one is kept: no string is built per request.
 */
let lastWriteName: Str | null = null;
let lastWriteValue: string | null = null;
let lastWrite: string = "";

function routingWrite(name: Str, value: string | null): string {
  if (name === lastWriteName && value == lastWriteValue) return lastWrite;
  const write = value !== null ? "\n" + name.text + "=" + value : "\n" + name.text;
  lastWriteName = name;
  lastWriteValue = value;
  lastWrite = write;
  return write;
}

/** The RouteMemo key of a first route's cluster and the routing writes after it; the last one is kept, as above. */
let lastKeyCluster: string = "";
let lastKeyWrites: string = "";
let lastKey: string = "";

function memoKey(cluster: string, writes: string): string {
  if (cluster == lastKeyCluster && writes == lastKeyWrites) return lastKey;
  const key = cluster + writes;
  lastKeyCluster = cluster;
  lastKeyWrites = writes;
  lastKey = key;
  return key;
}

// @ts-ignore: decorator
@inline const MAX_CACHED_HEADERS: i32 = 8;
/**
 * Request headers a stream's stages look up (not counting repeats) from which one `proxy_get_header_map_pairs` call
 * is cheaper than single gets: an absent header's get costs a host call, the map costs one call and one copy into the VM.
 * Decided per VM from the previous stream, so a module whose stages read one header keeps single gets.
 */
// @ts-ignore: decorator
@inline const BATCH_FROM_READS: i32 = 3;
let batchRequestHeaders = false;

/** A lazily-read view of one stream. The two header arrays come first: reset() keeps them and renews the rest. */
export class StreamView {
  private headerNames: StaticArray<Str | null> = new StaticArray<Str | null>(MAX_CACHED_HEADERS);
  private headerValues: StaticArray<string | null> = new StaticArray<string | null>(MAX_CACHED_HEADERS);
  private headerCount: i32 = 0;
  /** The request headers read in one call (batchRequestHeaders); null before, or after a write the cache missed. */
  private requestPairs: ArrayBuffer | null = null;
  /** Distinct request headers looked up in the host so far. */
  private headerReads: i32 = 0;
  private cluster: string | null = null;
  private clusterRead: bool = false;
  private finalClusterRead: bool = false;
  /** The first route's cluster, as Envoy named it after a routing change (the RouteMemo key's first part). */
  private firstCluster: string | null = null;
  /** The routing header changes the stages made, in order: the RouteMemo key's second part. */
  private routingWrites: string = "";
  private requestTime: i64 = UNREAD;
  private code: i64 = UNREAD;
  private flags: i64 = UNREAD;
  private attempts: i64 = UNREAD;
  private durationNs: i64 = UNREAD;
  private upstream: string | null = null;
  /** True once a stage changed a request header that routing may match on. */
  routeChanged: bool = false;
  /** True once a stage answered the stream locally. */
  repliedLocally: bool = false;
  /** False when the request ended with its headers (Envoy's end_of_stream on request headers): no body to wait for. */
  requestHasBody: bool = true;
  /**
   * The budget (ms) a caller's own deadline put on this request's upstream timeout, when it is below what the
   * operator's route or configuration gives; 0 when the operator's bound applies. Set by the deadline stage through
   * setCallerBudget; outcome classification treats an upstream timeout that ran the caller's budget out as caller-caused.
   */
  callerBudgetMs: i64 = 0;
  /** The outcome's cause once classified (filters/common/outcome.ts), -1 before: stages of one module share it. */
  outcomeCause: i32 = -1;
  /** Whether the published caller budget was read back (a filter of a chain only reads it for a timeout). */
  private callerBudgetRead: bool = false;

  /** The stream's context id (a pooled context's view takes the next stream's through reset). */
  id: u32;

  constructor(id: u32) {
    this.id = id;
  }

  /**
   * Makes this view what `new StreamView(id)` would be, keeping its two header arrays (a pooled context's next stream,
   * assembly/stage.ts): every field after them is copied from a view never used, so no field can be left out.
   */
  reset(id: u32): void {
    const from = offsetof<StreamView>("headerValues") + sizeof<usize>();
    memory.copy(changetype<usize>(this) + from, changetype<usize>(UNUSED_VIEW) + from, offsetof<StreamView>() - from);
    this.id = id;
  }

  /** First value of a request header (cached; a stage's own writes update the cache). */
  requestHeader(name: Str): string | null {
    for (let i = 0; i < this.headerCount; i++) {
      if (unchecked(this.headerNames[i]) === name) return unchecked(this.headerValues[i]);
    }
    this.headerReads++;
    let pairs = this.requestPairs;
    if (pairs === null && batchRequestHeaders && this.headerCount < MAX_CACHED_HEADERS) {
      pairs = getHeaderPairsRaw(MapType.HttpRequestHeaders);
      this.requestPairs = pairs;
    }
    const v = pairs !== null ? pairValue(pairs, name) : getHeader(MapType.HttpRequestHeaders, name);
    this.remember(name, v);
    return v;
  }

  /** `:authority` without its port. */
  host(): string {
    const a = this.requestHeader(H_AUTHORITY);
    if (a === null) return "";
    return stripPort(a);
  }

  /**
   * The cluster the route selected (`xds.cluster_name`), "" when there is no route. After a stage changed a routing
   * header: the cluster this VM learned such requests go to, "" until a completed one taught it (see RouteMemo).
   */
  clusterName(): string {
    if (!this.clusterRead) {
      let c = getPropertyString(P_CLUSTER_NAME);
      if (this.routeChanged && c !== null) {
        this.firstCluster = c;
        const key = memoKey(c, this.routingWrites);
        // A miss on this worker: another worker may have learned the pair (one shared read, only on a miss).
        if (!routeMemo.has(key)) loadSharedRouteMemo();
        c = routeMemo.has(key) ? routeMemo.get(key) : null;
      }
      this.cluster = c;
      this.clusterRead = true;
    }
    const c = this.cluster;
    return c !== null ? c : "";
  }

  /** Records that the caller's budget `ms` bounds this request's upstream timeout, and publishes it for later Wasm filters. */
  setCallerBudget(ms: i64): void {
    this.callerBudgetMs = ms;
    this.callerBudgetRead = true;
    setProperty(P_CALLER_BUDGET, ms.toString());
  }

  /** Publishes that a retry budget granted `granted` of the `wanted` retries, for access logs and spans (denials only). */
  setRetriesGranted(granted: u32, wanted: u32): void {
    setProperty(P_RETRIES_GRANTED, granted.toString() + "/" + wanted.toString());
  }

  /**
   * The caller's budget (ms) that bounded the upstream timeout, 0 when the operator's did: this module's own word,
   * else what an earlier Wasm filter of the chain published (one property read, made once and only when asked).
   */
  callerBudget(): i64 {
    if (this.callerBudgetMs > 0 || this.callerBudgetRead) return this.callerBudgetMs;
    this.callerBudgetRead = true;
    const v = getPropertyString(P_CALLER_BUDGET);
    if (v !== null) this.callerBudgetMs = parseDigits(v);
    return this.callerBudgetMs;
  }

  /**
   * The cluster the request went to, for use at completion: re-read once when a stage changed a routing header, since
   * Envoy keeps naming the first route's cluster until its router re-selects the route.
   */
  finalClusterName(): string {
    if (this.routeChanged && !this.finalClusterRead) {
      this.finalClusterRead = true;
      const first = this.firstCluster;
      const c = getPropertyString(P_CLUSTER_NAME);
      if (first !== null && c !== null) learnRoute(memoKey(first, this.routingWrites), c);
      this.clusterRead = true;
      this.cluster = c;
    }
    return this.clusterName();
  }

  /** When the first byte of the request arrived, in ns since the epoch (0 if unknown). */
  requestTimeNs(): i64 {
    if (this.requestTime == UNREAD) this.requestTime = getPropertyI64(P_REQUEST_TIME, 0);
    return this.requestTime;
  }

  /** Sets a request header (only while request headers are writable). */
  setRequestHeader(name: Str, value: string): bool {
    const ok = replaceHeader(MapType.HttpRequestHeaders, name, value);
    if (ok) this.remember(name, value);
    return ok;
  }

  /** Removes a request header (only while request headers are writable). */
  removeRequestHeader(name: Str): bool {
    const ok = removeHeader(MapType.HttpRequestHeaders, name);
    if (ok) this.remember(name, null);
    return ok;
  }

  /**
   * Sets a header the route table matches on. Envoy clears the route cache on any request-header change by an ABI 0.2.1
   * module (the only ABI this binding declares), so the router re-selects the route: no `clear_route_cache` call is
   * needed (verified on Envoy 1.36-1.40 with and without it, reference section 12; tests/e2e/traffic-split.test.ts).
   */
  setRoutingHeader(name: Str, value: string): bool {
    const ok = this.setRequestHeader(name, value);
    if (ok) this.routingChanged(routingWrite(name, value));
    return ok;
  }

  /** Removes a header the route table matches on; the router re-selects the route (see setRoutingHeader). */
  removeRoutingHeader(name: Str): bool {
    const ok = this.removeRequestHeader(name);
    if (ok) this.routingChanged(routingWrite(name, null));
    return ok;
  }

  /** Answers the request locally; later stages and the router never see it. */
  reply(status: u32, details: string, body: string, headers: HeaderPair[], grpcStatus: i32 = GrpcStatus.None): void {
    sendLocalResponse(status, details, body, headers, grpcStatus);
    this.repliedLocally = true;
  }

  /** Called once after the request stages ran: the next stream of this worker batches its header reads or not. */
  finishRequest(): void {
    batchRequestHeaders = this.headerReads >= BATCH_FROM_READS;
  }

  private routingChanged(write: string): void {
    const writes = this.routingWrites;
    if (writes.length == 0) {
      this.routingWrites = write;
    } else if (writes.length < 1024) {
      this.routingWrites = writes + write;
    }
    this.routeChanged = true;
    // A later stage asking for the cluster must see the re-selected route, not the cached first one.
    this.clusterRead = false;
  }

  /**
   * The response's `:status` as a number, 0 when absent or not digits: on response headers, before `response.code` is
   * set (one header read per call; Envoy only forwards a valid 3-digit status).
   */
  responseStatus(): i64 {
    const status = getHeader(MapType.HttpResponseHeaders, H_STATUS);
    return status !== null ? parseDigits(status) : 0;
  }

  /** Final response code (0 when no response was produced, e.g. the client went away). */
  responseCode(): i64 {
    if (this.code == UNREAD) this.code = getPropertyI64(P_RESPONSE_CODE, 0);
    return this.code;
  }

  /** Envoy's response-flags bitmask (ResponseFlag). */
  responseFlags(): i64 {
    if (this.flags == UNREAD) this.flags = getPropertyI64(P_RESPONSE_FLAGS, 0);
    return this.flags;
  }

  /** How many times the router sent the request upstream (0: never, 2+: retried). */
  attemptCount(): i64 {
    if (this.attempts == UNREAD) this.attempts = getPropertyI64(P_ATTEMPT_COUNT, 0);
    return this.attempts;
  }

  /** Request duration in nanoseconds, known at completion (on_log); -1 when the host has none. */
  requestDurationNs(): i64 {
    if (this.durationNs == UNREAD) this.durationNs = getPropertyI64(P_REQUEST_DURATION, -1);
    return this.durationNs;
  }

  /** The upstream host the router picked (`upstream.address`, "ip:port"); "" before host selection. */
  upstreamAddress(): string {
    // Cached once known: absent on request in the downstream chain, present at completion.
    if (this.upstream === null) this.upstream = getPropertyString(P_UPSTREAM_ADDRESS);
    const u = this.upstream;
    return u !== null ? u : "";
  }

  /** A string property only one stage asks for (no cache): "" when absent. */
  stringProperty(path: Str): string {
    const v = getPropertyString(path);
    return v !== null ? v : "";
  }

  /** An integer property only one stage asks for (no cache); `absent` when the host has none. */
  intProperty(path: Str, absent: i64): i64 {
    return getPropertyI64(path, absent);
  }

  private remember(name: Str, value: string | null): void {
    for (let i = 0; i < this.headerCount; i++) {
      if (unchecked(this.headerNames[i]) === name) {
        unchecked(this.headerValues[i] = value);
        return;
      }
    }
    if (this.headerCount < MAX_CACHED_HEADERS) {
      unchecked(this.headerNames[this.headerCount] = name);
      unchecked(this.headerValues[this.headerCount] = value);
      this.headerCount++;
    } else {
      // Not cached: a later read must ask the host, not the map as it was before this write.
      this.requestPairs = null;
    }
  }
}

/** Decimal digits only (at most 12) as a number, else 0: a published budget in ms, a :status. */
function parseDigits(v: string): i64 {
  if (v.length == 0 || v.length > 12) return 0;
  let n: i64 = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return 0;
    n = n * 10 + <i64>(c - 0x30);
  }
  return n;
}

/** `host:port` -> `host`; keeps IPv6 literals (`[::1]:80` -> `[::1]`). */
export function stripPort(authority: string): string {
  const colon = authority.lastIndexOf(":");
  if (colon < 0) return authority;
  if (authority.charCodeAt(0) == 0x5b) { // '['
    const close = authority.indexOf("]");
    return close > 0 ? authority.substring(0, close + 1) : authority;
  }
  return authority.substring(0, colon);
}

/** What reset() copies a view's fields from: its own values are those of `new`, and it is never used for a stream. */
const UNUSED_VIEW = new StreamView(0);
