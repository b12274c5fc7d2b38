// One HTTP stream through the Wasm filter: verbs that drive the module's callbacks in Envoy's order, the
// per-phase mutability of header maps and bodies (Envoy's Context::getMap/getConstMap/getBuffer), deferred
// continue/reset/local-reply actions, and the stream attributes the module can read as properties.
import { BufferType, FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, MapType, StreamType } from "./abi.js";
import { EmulatorError } from "./errors.js";
import { HeaderMap, type HeadersInit } from "./headers.js";
import { bytesToString, toBytes, type HeaderPairs } from "./pairs.js";
import { PropertyTree, descend, prop, type PropertyValue } from "./properties.js";
import type { HostBuffer, RootContext, Vm } from "./vm.js";

export interface StreamOptions {
  /** The root context the stream belongs to (default: the VM's first root). */
  root?: RootContext;
  /** Properties to set before the first callback (same as calling setProperty for each). */
  properties?: Record<string, PropertyValue>;
}

/** A local reply the module sent with proxy_send_local_response. */
export interface LocalReply {
  status: number;
  /** The details string as sent (response.code_details has whitespace replaced by "_"). */
  details: string;
  body: Uint8Array;
  bodyText: string;
  /** The headers the module asked for, in its order (keys lower-cased by Envoy). */
  headers: HeaderPairs;
  /** 0..16, or null when the module passed any other value (no grpc-status). */
  grpcStatus: number | null;
  /** The callback it was sent from, e.g. "proxy_on_request_headers (context 2)". */
  sentFrom: string;
  /**
   * How Envoy delivers it: "filter-chain" (response not started: the reply runs through this filter's
   * on_response_headers/body), "direct" (response headers held by a filter, not yet sent: replaced, no callbacks),
   * or "reset" (the response already started: the stream is reset).
   */
  delivery: "filter-chain" | "direct" | "reset";
}

interface ModuleLocalReply {
  status: number;
  details: string;
  body: Uint8Array;
  headers: HeaderPairs;
  grpcStatus: number | null;
}

const EMPTY = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Envoy's Grpc::Utility::httpToGrpcStatus, used when a local reply to a gRPC request carries no grpc status. */
function httpToGrpcStatus(status: number): number {
  const map: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };
  return map[status] ?? 2;
}

/** One direction of the stream (request = decoder side, response = encoder side). */
class Side {
  headers: HeaderMap | undefined;
  trailers: HeaderMap | undefined;
  /** The headers callback ran. */
  headersDone = false;
  /** The header map is mutable/readable now (Envoy's request_headers_/response_headers_ pointer is set). */
  headersLive = false;
  trailersLive = false;
  /** Headers went past this filter (Continue, or proxy_continue_stream). */
  forwarded = false;
  /** A StopAll* status holds body and trailers back from this filter until it continues. */
  pausedAll = false;
  /** End of stream was seen (headers or body with end_of_stream, or trailers). */
  ended = false;
  /** The body data in the filter's hands: the chunk (or buffered body) of the last body callback, until forwarded. */
  current: Uint8Array | undefined;
  /** Envoy still points at the body buffer: during a body callback and after a non-Continue result. */
  bodyAccessible = false;
  /** Previous body callback returned StopIterationAndBuffer: the next one sees the whole buffered body. */
  buffering = false;
  /** Older body data this filter holds back (from StopIterationAndWatermark/NoBuffer results). */
  pending: Uint8Array = EMPTY;
  /** Body data that went past this filter, after the module's edits. */
  forwardedBody: Uint8Array = EMPTY;
  /** A body chunk waiting for the filter to continue (local-reply body behind a StopAll). */
  queuedBody: Uint8Array | undefined;

  constructor(readonly name: "request" | "response") {}

  /** Everything held goes past the filter. */
  flush(): void {
    this.forwardedBody = concat(this.forwardedBody, concat(this.pending, this.current ?? EMPTY));
    this.pending = EMPTY;
    this.current = undefined;
    this.buffering = false;
    this.bodyAccessible = false;
  }

  resume(): void {
    this.forwarded = true;
    this.pausedAll = false;
    this.flush();
  }
}

export class Stream {
  readonly kind = "stream" as const;
  /** Properties set by the test for this stream (they win over derived attributes). */
  readonly properties = new PropertyTree();
  /** Values the module stored with proxy_set_property (filter state `wasm.<path>`). */
  readonly filterState = new Map<string, Uint8Array>();
  /** Host calls made while this stream's context was current, by function name. */
  readonly hostCallCount: Record<string, number> = {};
  /** Times this stream's route cache was cleared: by a request-header change (Envoy does it for ABI 0.2.1) or by the
   *  clear_route_cache foreign function. */
  routeCacheClears = 0;
  /** The local reply, once delivered. */
  localReply: LocalReply | undefined;
  /** Set when the stream was reset (proxy_close_stream, or a local reply after the response started). */
  resetReason: string | undefined;
  /** Response code as Envoy's stream info has it (upstream :status or local reply). */
  responseCode: number | undefined;
  responseCodeDetails: string | undefined;
  /** Stream start (request.time), realtime ns. */
  readonly startNs: bigint;
  /** When the request completed (set by log()): request.duration = completeNs - startNs. */
  completeNs: bigint | undefined;
  created = false;
  logged = false;
  deleted = false;
  inLogPhase = false;
  private readonly req = new Side("request");
  private readonly resp = new Side("response");
  private pendingLocalReply: (ModuleLocalReply & { sentFrom: string }) | undefined;
  /** end_of_stream of the last headers/body callback (Envoy keeps one flag for both directions). */
  private lastEndOfStream = false;

  constructor(
    readonly vm: Vm,
    readonly root: RootContext,
    readonly id: number,
    opts: StreamOptions,
  ) {
    this.startNs = vm.host.clock.nowNs;
    for (const [path, value] of Object.entries(opts.properties ?? {})) this.setProperty(path, value);
  }

  // ---- test-facing setup ----

  /** Sets a property the module can read (dotted, NUL-separated or array path). */
  setProperty(path: string | readonly string[], value: PropertyValue): this {
    this.properties.set(path, value);
    return this;
  }

  deleteProperty(path: string | readonly string[]): this {
    this.properties.delete(path);
    return this;
  }

  // ---- verbs: request side ----

  /** Drives on_request_headers and returns the FilterHeadersStatus Envoy acts on. */
  requestHeaders(headers: HeadersInit, endOfStream?: boolean): FilterHeadersStatus;
  /** The request header map as it is now, after the module's edits. */
  requestHeaders(): HeaderMap;
  requestHeaders(headers?: HeadersInit, endOfStream = false): FilterHeadersStatus | HeaderMap {
    if (headers === undefined) return this.mapOrThrow(this.req.headers, "request headers");
    this.checkDrivable("requestHeaders");
    this.checkRequestOpen("requestHeaders");
    if (this.req.headersDone) throw new EmulatorError(`stream ${this.id}: requestHeaders was already driven`);
    return this.headersPhase(this.req, headers, endOfStream, "proxy_on_request_headers");
  }

  /** Drives on_request_body with one chunk and returns the FilterDataStatus. */
  requestBody(data: string | Uint8Array, endOfStream = false): FilterDataStatus {
    this.checkDrivable("requestBody");
    this.checkRequestOpen("requestBody");
    this.checkBodyAllowed(this.req, "requestBody");
    return this.bodyPhase(this.req, toBytes(data), endOfStream, "proxy_on_request_body");
  }

  /** Drives on_request_trailers and returns the FilterTrailersStatus. */
  requestTrailers(trailers: HeadersInit): FilterTrailersStatus;
  requestTrailers(): HeaderMap;
  requestTrailers(trailers?: HeadersInit): FilterTrailersStatus | HeaderMap {
    if (trailers === undefined) return this.mapOrThrow(this.req.trailers, "request trailers");
    this.checkDrivable("requestTrailers");
    this.checkRequestOpen("requestTrailers");
    this.checkBodyAllowed(this.req, "requestTrailers");
    return this.trailersPhase(this.req, trailers, "proxy_on_request_trailers");
  }

  // ---- verbs: response side ----

  /** Drives on_response_headers with an upstream response and returns the FilterHeadersStatus. */
  responseHeaders(headers: HeadersInit, endOfStream?: boolean): FilterHeadersStatus;
  /** The response header map as it is now (upstream or local reply), after the module's edits. */
  responseHeaders(): HeaderMap;
  responseHeaders(headers?: HeadersInit, endOfStream = false): FilterHeadersStatus | HeaderMap {
    if (headers === undefined) return this.mapOrThrow(this.resp.headers, "response headers");
    this.checkDrivable("responseHeaders");
    if (this.localReply) throw new EmulatorError(`stream ${this.id}: the module already answered with a local reply (${this.localReply.status})`);
    if (!this.req.forwarded) {
      throw new EmulatorError(
        `stream ${this.id}: responseHeaders: the request never got past the filter (on_request_headers did not continue and proxy_continue_stream(0) was not called), so there is no upstream response`,
      );
    }
    if (this.resp.headersDone) throw new EmulatorError(`stream ${this.id}: responseHeaders was already driven`);
    const map = new HeaderMap(headers);
    const status = Number(map.get(":status"));
    if (!Number.isInteger(status)) throw new EmulatorError(`stream ${this.id}: responseHeaders needs a numeric :status`);
    this.responseCode = status;
    this.responseCodeDetails ??= "via_upstream";
    return this.headersPhase(this.resp, map, endOfStream, "proxy_on_response_headers");
  }

  responseBody(data: string | Uint8Array, endOfStream = false): FilterDataStatus {
    this.checkDrivable("responseBody");
    this.checkBodyAllowed(this.resp, "responseBody");
    return this.bodyPhase(this.resp, toBytes(data), endOfStream, "proxy_on_response_body");
  }

  responseTrailers(trailers: HeadersInit): FilterTrailersStatus;
  responseTrailers(): HeaderMap;
  responseTrailers(trailers?: HeadersInit): FilterTrailersStatus | HeaderMap {
    if (trailers === undefined) return this.mapOrThrow(this.resp.trailers, "response trailers");
    this.checkDrivable("responseTrailers");
    this.checkBodyAllowed(this.resp, "responseTrailers");
    return this.trailersPhase(this.resp, trailers, "proxy_on_response_trailers");
  }

  // ---- verbs: completion ----

  /** Access-log phase: on_log (creating the VM context first if the request never reached the filter). */
  log(): void {
    if (this.deleted) throw new EmulatorError(`stream ${this.id}: log after done`);
    if (this.logged) throw new EmulatorError(`stream ${this.id}: log was already driven (Envoy logs once, at completion)`);
    this.ensureCreated();
    this.logged = true;
    this.completeNs = this.vm.host.clock.nowNs;
    this.inLogPhase = true;
    try {
      this.vm.invoke("proxy_on_log", [this.id], this.id);
    } finally {
      this.inLogPhase = false;
    }
  }

  /** Stream destruction: on_done (result ignored for HTTP streams) then on_delete, if the context was created. */
  done(): void {
    if (this.deleted) throw new EmulatorError(`stream ${this.id}: done was already driven`);
    this.deleted = true;
    if (this.created) {
      this.vm.invoke("proxy_on_done", [this.id], this.id);
      this.vm.invoke("proxy_on_delete", [this.id], this.id);
    }
    this.vm.dropContext(this.id);
  }

  /** Envoy's order at completion on HTTP/1 and HTTP/2: on_log, then on_done and on_delete. */
  finish(): void {
    this.log();
    this.done();
  }

  // ---- inspection ----

  /** Request body bytes that went past the filter (after the module's edits). */
  get requestBodyForwarded(): Uint8Array {
    return this.req.forwardedBody;
  }

  /** Response body bytes that went downstream (after the module's edits), local-reply body included. */
  get responseBodyForwarded(): Uint8Array {
    return this.resp.forwardedBody;
  }

  get responseBodyText(): string {
    return bytesToString(this.resp.forwardedBody);
  }

  /** True when the request headers went past the filter (the router would see the request). */
  get requestForwarded(): boolean {
    return this.req.forwarded;
  }

  /** True when the response headers went downstream. */
  get responseForwarded(): boolean {
    return this.resp.forwarded;
  }

  // ---- what the host calls see ----

  /** Envoy's getConstMap for maps 0..3. */
  constMap(type: MapType): HeaderMap | undefined {
    if (this.inLogPhase) {
      if (type === MapType.HttpRequestHeaders) return this.req.headers;
      if (type === MapType.HttpResponseHeaders) return this.resp.headers;
      if (type === MapType.HttpResponseTrailers) return this.resp.trailers;
      return undefined;
    }
    const side = type <= MapType.HttpRequestTrailers ? this.req : this.resp;
    if (type === MapType.HttpRequestHeaders || type === MapType.HttpResponseHeaders) return side.headersLive ? side.headers : undefined;
    return side.trailersLive ? side.trailers : undefined;
  }

  /** Envoy's getMap for maps 0..3: live maps only; trailers may be added in a body callback at end of stream. */
  mutableMap(type: MapType): HeaderMap | undefined {
    const side = type <= MapType.HttpRequestTrailers ? this.req : this.resp;
    if (type === MapType.HttpRequestHeaders || type === MapType.HttpResponseHeaders) return side.headersLive ? side.headers : undefined;
    if (side.trailersLive) return side.trailers;
    if (!side.trailers && side.bodyAccessible && this.lastEndOfStream) {
      side.trailers = new HeaderMap();
      side.trailersLive = true;
      return side.trailers;
    }
    return undefined;
  }

  bodyBuffer(type: BufferType): HostBuffer | undefined {
    const side = type === BufferType.HttpRequestBody ? this.req : this.resp;
    if (!side.bodyAccessible || !side.current) return undefined;
    return { bytes: side.current, write: (next) => (side.current = next) };
  }

  /** proxy_continue_stream(0|1): Envoy drops the request-side map pointers at once and resumes after the VM call. */
  continueFromModule(type: StreamType): void {
    this.req.headersLive = false;
    this.req.trailersLive = false;
    this.req.bodyAccessible = false;
    const side = type === StreamType.HttpRequest ? this.req : this.resp;
    this.vm.defer(() => {
      if (this.deleted || this.resetReason) return;
      if (side === this.req && this.localReply) return;
      side.resume();
      const queued = side.queuedBody;
      if (queued) {
        side.queuedBody = undefined;
        this.bodyPhase(side, queued, true, side === this.req ? "proxy_on_request_body" : "proxy_on_response_body");
      }
    });
  }

  /** proxy_close_stream(0|1): reset after the VM call, details wasm_close_stream. */
  closeFromModule(): void {
    this.responseCodeDetails ??= "wasm_close_stream";
    this.vm.defer(() => {
      this.resetReason ??= "wasm_close_stream";
    });
  }

  /** proxy_send_local_response: recorded now, delivered after the VM call returns. */
  localReplyFromModule(reply: ModuleLocalReply): void {
    if (this.pendingLocalReply || this.localReply) {
      throw new EmulatorError(`stream ${this.id}: a second proxy_send_local_response on the same stream`);
    }
    this.pendingLocalReply = { ...reply, sentFrom: this.vm.describeFrame() };
    this.vm.defer(() => this.deliverLocalReply());
  }

  /**
   * Envoy's attributes for `request.*`, `response.*` and `upstream.request_attempt_count` (reference section 8).
   * The attempt count is 1 once the request got past the filter (the router tried once), 0 otherwise (e.g. a local
   * reply from the request path); set the property to model retries.
   */
  derivedProperty(segments: readonly string[]): PropertyValue | undefined {
    const [top, field, ...rest] = segments;
    let value: PropertyValue | undefined;
    if (top === "request" && field) value = this.requestAttribute(field);
    else if (top === "response" && field) value = this.responseAttribute(field);
    else if (top === "upstream" && field === "request_attempt_count") value = prop.uint(this.req.forwarded ? 1 : 0);
    return value === undefined ? undefined : descend(value, rest);
  }

  // ---- internals ----

  private requestAttribute(field: string): PropertyValue | undefined {
    if (field === "time") return prop.timestamp(this.startNs);
    if (field === "duration") return this.completeNs === undefined ? undefined : prop.duration(this.completeNs - this.startNs);
    if (field === "protocol") return "HTTP/1.1";
    // Header-based attributes exist only while Envoy's activation has the request headers: live, or in on_log.
    const h = this.req.headersLive || this.inLogPhase ? this.req.headers : undefined;
    if (!h) return undefined;
    const path = h.get(":path");
    switch (field) {
      case "headers":
        return prop.map(h.toObject());
      case "path":
        return path;
      case "url_path":
        return path?.split("?")[0];
      case "query":
        return path?.includes("?") ? path.slice(path.indexOf("?") + 1) : undefined;
      case "host":
        return h.get(":authority");
      case "scheme":
        return h.get(":scheme");
      case "method":
        return h.get(":method");
      case "referer":
        return h.get("referer");
      case "useragent":
        return h.get("user-agent");
      case "id":
        return h.get("x-request-id");
      case "size": {
        const cl = h.get("content-length");
        return cl !== undefined && /^\d+$/.test(cl) ? BigInt(cl) : undefined;
      }
      default:
        return undefined;
    }
  }

  private responseAttribute(field: string): PropertyValue | undefined {
    switch (field) {
      case "code":
        return this.responseCode === undefined ? undefined : BigInt(this.responseCode);
      case "code_details":
        return this.responseCodeDetails;
      case "flags":
        return 0n;
      case "headers": {
        const h = this.resp.headersLive || this.inLogPhase ? this.resp.headers : undefined;
        return h ? prop.map(h.toObject()) : undefined;
      }
      case "trailers": {
        const t = this.resp.trailersLive || this.inLogPhase ? this.resp.trailers : undefined;
        return t ? prop.map(t.toObject()) : undefined;
      }
      default:
        return undefined;
    }
  }

  private mapOrThrow(map: HeaderMap | undefined, what: string): HeaderMap {
    if (!map) throw new EmulatorError(`stream ${this.id}: no ${what} yet`);
    return map;
  }

  private checkDrivable(verb: string): void {
    if (this.deleted) throw new EmulatorError(`stream ${this.id}: ${verb} after done`);
    if (this.logged) throw new EmulatorError(`stream ${this.id}: ${verb} after log (the stream completed)`);
    if (this.resetReason) throw new EmulatorError(`stream ${this.id}: ${verb} on a reset stream (${this.resetReason})`);
  }

  private checkRequestOpen(verb: string): void {
    if (this.localReply) {
      throw new EmulatorError(`stream ${this.id}: ${verb}: the module answered with a local reply; Envoy delivers no more request data to the filter`);
    }
  }

  private checkBodyAllowed(side: Side, verb: string): void {
    if (!side.headersDone) throw new EmulatorError(`stream ${this.id}: ${verb} before ${side.name} headers`);
    if (side.ended) throw new EmulatorError(`stream ${this.id}: ${verb} after the ${side.name} ended (end_of_stream was already seen)`);
    if (side.pausedAll) {
      throw new EmulatorError(
        `stream ${this.id}: ${verb}: the ${side.name} headers callback returned StopAllIteration; Envoy holds body and trailers back until the module calls proxy_continue_stream`,
      );
    }
  }

  private ensureCreated(): void {
    if (this.created) return;
    this.created = true;
    this.vm.invoke("proxy_on_context_create", [this.id, this.root.id], this.id);
  }

  private headersPhase(side: Side, init: HeadersInit | HeaderMap, endOfStream: boolean, callback: string): FilterHeadersStatus {
    this.ensureCreated();
    side.headers = init instanceof HeaderMap ? init : new HeaderMap(init);
    side.headersDone = true;
    side.headersLive = true;
    side.ended = endOfStream;
    this.lastEndOfStream = endOfStream;
    const { raw, stopped } = this.vm.invoke(callback, [this.id, side.headers.size, endOfStream ? 1 : 0], this.id);
    const r = (raw ?? 0) >>> 0;
    let status: FilterHeadersStatus;
    if (stopped || r > FilterHeadersStatus.StopAllIterationAndWatermark) status = FilterHeadersStatus.StopAllIterationAndWatermark;
    else if (r === FilterHeadersStatus.StopIteration && !this.root.allowOnHeadersStopIteration) status = FilterHeadersStatus.StopAllIterationAndWatermark;
    else if (r === FilterHeadersStatus.ContinueAndEndStream) status = FilterHeadersStatus.Continue;
    else status = r;
    if (status === FilterHeadersStatus.Continue) {
      side.headersLive = false;
      side.forwarded = true;
    } else if (!side.forwarded) {
      side.pausedAll = status !== FilterHeadersStatus.StopIteration;
    }
    return status;
  }

  private bodyPhase(side: Side, chunk: Uint8Array, endOfStream: boolean, callback: string): FilterDataStatus {
    if (side.buffering) {
      side.current = concat(side.current ?? EMPTY, chunk);
    } else {
      side.pending = concat(side.pending, side.current ?? EMPTY);
      side.current = chunk;
    }
    side.bodyAccessible = true;
    side.ended = endOfStream;
    this.lastEndOfStream = endOfStream;
    const { raw, stopped } = this.vm.invoke(callback, [this.id, side.current.length, endOfStream ? 1 : 0], this.id);
    const r = (raw ?? 0) >>> 0;
    const status: FilterDataStatus = stopped || r > FilterDataStatus.StopIterationNoBuffer ? FilterDataStatus.StopIterationNoBuffer : r;
    if (status === FilterDataStatus.Continue) side.flush();
    else side.buffering = status === FilterDataStatus.StopIterationAndBuffer;
    return status;
  }

  private trailersPhase(side: Side, init: HeadersInit, callback: string): FilterTrailersStatus {
    side.trailers = new HeaderMap(init);
    side.trailersLive = true;
    side.ended = true;
    const { raw, stopped } = this.vm.invoke(callback, [this.id, side.trailers.size], this.id);
    const r = (raw ?? 0) >>> 0;
    const status: FilterTrailersStatus = stopped || r > FilterTrailersStatus.StopIteration ? FilterTrailersStatus.StopIteration : r;
    if (status === FilterTrailersStatus.Continue) side.trailersLive = false;
    return status;
  }

  /** Runs after the VM call that sent the reply: via this filter's encoder callbacks, directly, or as a reset. */
  private deliverLocalReply(): void {
    const r = this.pendingLocalReply!;
    this.pendingLocalReply = undefined;
    const delivery: LocalReply["delivery"] = !this.resp.headersDone ? "filter-chain" : !this.resp.forwarded ? "direct" : "reset";
    this.localReply = { ...r, bodyText: bytesToString(r.body), delivery };
    if (delivery === "reset") {
      this.resetReason ??= "local reply after the response started";
      return;
    }
    this.responseCode = r.status;
    this.responseCodeDetails = r.details.replace(/\s/g, "_");
    const grpc = this.req.headers?.get("content-type")?.startsWith("application/grpc") ?? false;
    const headers = new HeaderMap({ ":status": grpc ? "200" : String(r.status) });
    for (const [k, v] of r.headers) headers.add(k, v);
    let body = r.body;
    if (grpc) {
      if (!headers.has("content-type")) headers.add("content-type", "application/grpc");
      headers.add("grpc-status", String(r.grpcStatus ?? httpToGrpcStatus(r.status)));
      if (body.length > 0) headers.add("grpc-message", bytesToString(body));
      body = EMPTY;
    } else if (body.length > 0) {
      headers.replace("content-length", String(body.length));
      if (!headers.has("content-type")) headers.add("content-type", "text/plain");
    }
    if (delivery === "direct") {
      this.resp.headers = headers;
      this.resp.headersLive = false;
      this.resp.trailersLive = false;
      this.resp.current = undefined;
      this.resp.bodyAccessible = false;
      this.resp.pending = EMPTY;
      this.resp.forwardedBody = body;
      this.resp.forwarded = true;
      this.resp.ended = true;
      return;
    }
    this.headersPhase(this.resp, headers, body.length === 0, "proxy_on_response_headers");
    if (body.length === 0) return;
    if (this.resp.pausedAll) this.resp.queuedBody = body;
    else this.bodyPhase(this.resp, body, true, "proxy_on_response_body");
  }
}
