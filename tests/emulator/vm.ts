// One VM = one instance of the module (one Envoy worker thread): its contexts, call frames, memory access and timers.
import { ALLOWED_DURING_INIT, ALLOWED_DURING_MALLOC, BufferType, LogLevel, MapType } from "./abi.js";
import { EmulatorError } from "./errors.js";
import type { HeaderMap } from "./headers.js";
import type { Host } from "./host.js";
import { buildImports } from "./hostcalls.js";
import type { CompiledModule } from "./load.js";
import { VmMetrics } from "./metrics.js";
import { toBytes } from "./pairs.js";
import { encodeProperty, showPath, type PropertyValue } from "./properties.js";
import { Stream, type StreamOptions } from "./stream.js";

export interface VmOptions {
  /** vm_config.vm_id: the shared-data and shared-queue namespace. Default: the host's vmId (""). */
  vmId?: string;
  /** vm_config.configuration bytes (VmConfiguration buffer, readable at any time). */
  vmConfig?: string | Uint8Array;
  /** vm_config.environment_variables, visible through WASI environ_get. */
  env?: Record<string, string>;
}

export interface RootOptions {
  /** PluginConfig.root_id (property plugin_root_id). */
  rootId?: string;
  /** PluginConfig.name (property plugin_name). */
  pluginName?: string;
  /** PluginConfig.configuration bytes (PluginConfiguration buffer, readable only during on_configure). */
  pluginConfig?: string | Uint8Array;
  /** PluginConfig.allow_on_headers_stop_iteration: keep StopIteration(1) from header callbacks instead of StopAll. */
  allowOnHeadersStopIteration?: boolean;
}

/** A readable (and, for body buffers, writable) host buffer. */
export interface HostBuffer {
  bytes: Uint8Array;
  write?: (next: Uint8Array) => void;
}

/** An http_call response as the module sees it during proxy_on_http_call_response. */
export interface HttpCallResponseView {
  headers: HeaderMap;
  body: Uint8Array;
  trailers: HeaderMap;
}

type FrameKind = "start" | "initialize" | "malloc" | "callback";
interface Frame {
  kind: FrameKind;
  name: string;
  contextId: number;
  effectiveId: number;
}

/** A root (plugin) context inside one VM. */
export class RootContext {
  readonly kind = "root" as const;
  readonly rootId: string;
  readonly pluginName: string;
  readonly pluginConfig: Uint8Array;
  readonly allowOnHeadersStopIteration: boolean;
  /** Result of proxy_on_vm_start (true when the export is absent). */
  vmStartResult: boolean | undefined;
  /** Result of proxy_on_configure (undefined when on_vm_start failed). */
  configureResult: boolean | undefined;
  /** Tick period set by proxy_set_tick_period_milliseconds; 0 = disabled. */
  tickPeriodMs = 0;
  /** When the next tick is due (realtime ns), if a period is set. */
  nextTickNs: bigint | undefined;
  /** Last status for proxy_get_status (set by a failed http_call). */
  status = { code: 0, message: "" };
  /** Set only while proxy_on_http_call_response runs for this root. */
  httpCallResponse: HttpCallResponseView | undefined;
  /** True only while proxy_on_configure runs. */
  inConfigure = false;
  /** True after on_done returned false, until the module calls proxy_done. */
  awaitingDone = false;
  deleted = false;

  constructor(
    readonly vm: Vm,
    readonly id: number,
    opts: RootOptions,
  ) {
    this.rootId = opts.rootId ?? "";
    this.pluginName = opts.pluginName ?? "";
    this.pluginConfig = toBytes(opts.pluginConfig ?? "");
    this.allowOnHeadersStopIteration = opts.allowOnHeadersStopIteration ?? false;
  }

  get root(): RootContext {
    return this;
  }
}

export type Context = RootContext | Stream;

function describeError(e: unknown): string {
  if (e instanceof WebAssembly.RuntimeError) return `the module trapped: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** An error raised while the module ran; carries its own context, so outer frames do not wrap it again. */
export class ModuleCallError extends EmulatorError {
  override name = "ModuleCallError";
}

export class Vm {
  readonly vmId: string;
  readonly vmConfig: Uint8Array;
  readonly env: Record<string, string>;
  readonly metrics: VmMetrics;
  readonly roots: RootContext[] = [];
  readonly contexts = new Map<number, Context>();
  readonly instance: WebAssembly.Instance;
  /** Set once the module trapped or broke an ABI rule: Envoy would mark this VM failed. */
  failed: string | undefined;
  /** Exit code of the last proc_exit call, if any. */
  procExitCode: number | undefined;
  private readonly frames: Frame[] = [];
  private deferred: (() => void)[] = [];
  private nextContextId = 1;
  private nextHttpCallToken = 0;
  /** Set by proxy_send_local_response: the current callback's result is forced to "stop". */
  private stopIteration = false;

  constructor(
    readonly host: Host,
    readonly index: number,
    readonly compiled: CompiledModule,
    opts: VmOptions,
  ) {
    this.vmId = opts.vmId ?? host.vmId;
    this.vmConfig = toBytes(opts.vmConfig ?? "");
    this.env = { ...opts.env };
    this.metrics = new VmMetrics(host.metricStore);
    const imports = buildImports(this);
    this.frames.push({ kind: "start", name: "start section", contextId: 0, effectiveId: 0 });
    try {
      this.instance = new WebAssembly.Instance(compiled.module, imports);
    } catch (e) {
      this.failed = describeError(e);
      throw new ModuleCallError(`VM ${index}: instantiating ${compiled.name} failed: ${this.failed}`, { cause: e });
    } finally {
      this.frames.pop();
    }
    this.runInitialize();
  }

  private get exports(): Record<string, unknown> {
    return this.instance.exports as Record<string, unknown>;
  }

  hasExport(name: string): boolean {
    return typeof this.exports[name] === "function";
  }

  // ---- memory (views are recreated on every access, so growth during a call is safe) ----

  private memoryBytes(): Uint8Array {
    return new Uint8Array((this.exports.memory as WebAssembly.Memory).buffer);
  }

  private checkRange(ptr: number, len: number, what: string): void {
    const size = this.memoryBytes().length;
    if (len > 0 && ptr === 0) throw new EmulatorError(`${what}: null pointer with length ${len}`);
    if (ptr + len > size) {
      throw new EmulatorError(`${what}: range [${ptr}, ${ptr + len}) is outside linear memory (${size} bytes)`);
    }
  }

  /** Copies `len` bytes at `ptr` out of module memory. */
  read(ptr: number, len: number, what: string): Uint8Array {
    ptr >>>= 0;
    len >>>= 0;
    this.checkRange(ptr, len, what);
    return this.memoryBytes().slice(ptr, ptr + len);
  }

  readString(ptr: number, len: number, what: string): string {
    return new TextDecoder().decode(this.read(ptr, len, what));
  }

  write(ptr: number, data: Uint8Array, what: string): void {
    ptr >>>= 0;
    this.checkRange(ptr, data.length, what);
    this.memoryBytes().set(data, ptr);
  }

  writeU32(ptr: number, value: number, what: string): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(ptr, b, what);
  }

  writeU64(ptr: number, value: bigint, what: string): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(ptr, b, what);
  }

  /** Calls the module's allocator (malloc, else proxy_on_memory_allocate) under the malloc restrictions. */
  malloc(len: number, what: string): number {
    const ptr = (this.callExport(this.compiled.allocator, [len], this.currentFrameContextId(), "malloc") as number) >>> 0;
    if (ptr === 0) throw new EmulatorError(`${what}: ${this.compiled.allocator}(${len}) returned 0`);
    this.checkRange(ptr, len, `${what}: ${this.compiled.allocator}(${len}) result`);
    return ptr;
  }

  /** Returns data to the module the host's way: malloc + copy + write ptr/len; ptr=0,len=0 when empty. */
  returnBytes(data: Uint8Array, outPtr: number, outLen: number, what: string): void {
    this.checkRange(outPtr >>> 0, 4, `${what} out_ptr`);
    this.checkRange(outLen >>> 0, 4, `${what} out_len`);
    let ptr = 0;
    if (data.length > 0) {
      ptr = this.malloc(data.length, what);
      this.write(ptr, data, what);
    }
    this.writeU32(outPtr, ptr, `${what} out_ptr`);
    this.writeU32(outLen, data.length, `${what} out_len`);
  }

  // ---- frames and calls into the module ----

  private currentFrameContextId(): number {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const f = this.frames[i]!;
      if (f.kind === "callback") return f.effectiveId || f.contextId;
    }
    return 0;
  }

  /** The context host calls act on now: the effective context if one was set, else the running callback's context. */
  currentContext(): Context | undefined {
    return this.contexts.get(this.currentFrameContextId());
  }

  /** The running callback's own context id (ignoring proxy_set_effective_context). */
  callingContextId(): number {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const f = this.frames[i]!;
      if (f.kind === "callback") return f.contextId;
    }
    return 0;
  }

  /** What is running now, for error messages. */
  describeFrame(): string {
    const f = this.frames[this.frames.length - 1];
    if (!f) return "outside any module call";
    return f.kind === "callback" ? `${f.name} (context ${f.contextId})` : f.name;
  }

  /** Enforces the section 0 restrictions for the import `name`; throws if the current phase forbids it. */
  checkAllowed(name: string): void {
    const f = this.frames[this.frames.length - 1];
    if (!f) throw new EmulatorError(`${name} was called while no module call is running`);
    if (f.kind === "start") {
      throw new EmulatorError(
        `${name} was called from the wasm start section, before the host has any context; compile with --exportStart _initialize`,
      );
    }
    if (f.kind === "initialize" && !ALLOWED_DURING_INIT.has(name)) {
      throw new EmulatorError(
        `${name} was called during ${f.name}, where Envoy only allows proxy_log and a few WASI calls (restricted_callback trap)`,
      );
    }
    if (f.kind === "malloc" && !ALLOWED_DURING_MALLOC.has(name)) {
      throw new EmulatorError(`${name} was called inside the module's ${f.name}, where Envoy only allows proxy_log, fd_write and clock_time_get`);
    }
  }

  /** Sets the effective context of the running callback (proxy_set_effective_context). */
  setEffectiveContext(id: number): boolean {
    const target = this.contexts.get(id);
    if (!target || (target.kind === "stream" && target.deleted)) return false;
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const f = this.frames[i]!;
      if (f.kind === "callback") {
        f.effectiveId = id;
        return true;
      }
    }
    return false;
  }

  private callExport(name: string, args: number[], contextId: number, kind: FrameKind): number | undefined {
    if (this.failed) throw new EmulatorError(`VM ${this.index} already failed (${this.failed}); it cannot run ${name}`);
    const fn = this.exports[name] as ((...a: number[]) => number | undefined) | undefined;
    if (typeof fn !== "function") return undefined;
    this.host.countModuleCall(name);
    this.frames.push({ kind, name, contextId, effectiveId: 0 });
    try {
      return fn(...args);
    } catch (e) {
      if (e instanceof ModuleCallError) {
        this.failed ??= e.message;
        throw e;
      }
      this.failed = describeError(e);
      const logs = this.host.logs
        .filter((l) => l.vm === this.index && l.level >= LogLevel.Warn)
        .slice(-5)
        .map((l) => `\n    [${LogLevel[l.level]}] ${l.message}`)
        .join("");
      throw new ModuleCallError(
        `VM ${this.index}: ${name}(${args.join(", ")}) failed: ${this.failed}${logs ? `\n  last warn+ logs of this VM:${logs}` : ""}`,
        { cause: e },
      );
    } finally {
      this.frames.pop();
    }
  }

  private runInitialize(): void {
    if (this.hasExport("_initialize")) {
      this.callExport("_initialize", [], 0, "initialize");
      if (this.hasExport("main")) this.callExport("main", [0, 0], 0, "initialize");
      else if (this.hasExport("__main_void")) this.callExport("__main_void", [], 0, "initialize");
    } else if (this.hasExport("_start")) {
      this.callExport("_start", [], 0, "initialize");
    }
  }

  /**
   * A host->VM entry on behalf of a context: calls the export (if present), then runs the actions Envoy defers until
   * the VM call returns (continue, local reply, reset). `stopped` tells whether a local reply forced "stop".
   */
  invoke(name: string, args: number[], contextId: number): { raw: number | undefined; stopped: boolean } {
    if (this.frames.length > 0) {
      throw new EmulatorError(`${name} cannot be driven while ${this.describeFrame()} is running (Envoy never re-enters a VM)`);
    }
    this.stopIteration = false;
    const raw = this.callExport(name, args, contextId, "callback");
    const stopped = this.stopIteration;
    this.stopIteration = false;
    this.runDeferred();
    return { raw, stopped };
  }

  /** Queues an action to run after the current VM call returns (Envoy's addAfterVmCallAction). */
  defer(action: () => void): void {
    this.deferred.push(action);
  }

  /** Marks the running callback's result as forced to "stop" (send_local_response). */
  forceStop(): void {
    this.stopIteration = true;
  }

  private runDeferred(): void {
    while (this.deferred.length > 0) {
      const batch = this.deferred;
      this.deferred = [];
      for (const action of batch) action();
    }
  }

  // ---- contexts and lifecycle ----

  allocContextId(): number {
    return this.nextContextId++;
  }

  nextHttpCallId(): number {
    this.nextHttpCallToken += 4;
    return this.nextHttpCallToken >>> 0;
  }

  /** The first root context (the usual single plugin). */
  get root(): RootContext {
    const r = this.roots[0];
    if (!r) throw new EmulatorError(`VM ${this.index} has no root context yet; call vm.startRoot() first`);
    return r;
  }

  /**
   * Starts a plugin's root context as Envoy does: on_context_create(root, 0), on_vm_start(root, vm config size),
   * then on_configure(root, plugin config size) unless on_vm_start returned false. Returns the root; read
   * vmStartResult/configureResult on it.
   */
  startRoot(opts: RootOptions = {}): RootContext {
    const root = new RootContext(this, this.allocContextId(), opts);
    this.contexts.set(root.id, root);
    this.roots.push(root);
    this.invoke("proxy_on_context_create", [root.id, 0], root.id);
    const start = this.invoke("proxy_on_vm_start", [root.id, this.vmConfig.length], root.id);
    root.vmStartResult = start.raw === undefined ? true : start.raw !== 0;
    if (!root.vmStartResult) return root;
    root.inConfigure = true;
    try {
      const conf = this.invoke("proxy_on_configure", [root.id, root.pluginConfig.length], root.id);
      root.configureResult = conf.raw === undefined ? true : conf.raw !== 0;
    } finally {
      root.inConfigure = false;
    }
    return root;
  }

  /** Creates an HTTP stream on a root context (default: the first). Its VM context is created lazily, as in Envoy. */
  newStream(opts: StreamOptions = {}): Stream {
    const root = opts.root ?? this.root;
    if (root.vm !== this) throw new EmulatorError(`newStream: root context ${root.id} belongs to VM ${root.vm.index}, not VM ${this.index}`);
    if (root.deleted) throw new EmulatorError(`newStream: root context ${root.id} was deleted`);
    const stream = new Stream(this, root, this.allocContextId(), opts);
    this.contexts.set(stream.id, stream);
    return stream;
  }

  /** Forgets a deleted context (on_delete ran). */
  dropContext(id: number): void {
    this.contexts.delete(id);
  }

  /** Calls proxy_on_tick on every root of this VM with a tick period set (or only `root`); returns the number fired. */
  tick(root?: RootContext): number {
    let fired = 0;
    for (const r of root ? [root] : this.roots) {
      if (r.tickPeriodMs > 0 && !r.deleted) {
        this.fireTick(r);
        fired++;
      }
    }
    return fired;
  }

  /** Fires one root's tick and re-arms its timer from the current time. */
  fireTick(root: RootContext): void {
    this.invoke("proxy_on_tick", [root.id], root.id);
    if (root.tickPeriodMs > 0) root.nextTickNs = this.host.clock.nowNs + BigInt(root.tickPeriodMs) * 1_000_000n;
  }

  setTickPeriod(root: RootContext, ms: number): void {
    root.tickPeriodMs = ms;
    root.nextTickNs = ms > 0 ? this.host.clock.nowNs + BigInt(ms) * 1_000_000n : undefined;
  }

  /**
   * Plugin removal / shutdown: on_done for each root; a root returning false waits for proxy_done, others get
   * on_delete right away.
   */
  shutdown(): void {
    for (const root of this.roots) {
      if (root.deleted || root.awaitingDone) continue;
      const done = this.invoke("proxy_on_done", [root.id], root.id);
      if (done.raw === 0) root.awaitingDone = true;
      else this.deleteRoot(root);
    }
  }

  deleteRoot(root: RootContext): void {
    root.awaitingDone = false;
    root.deleted = true;
    this.invoke("proxy_on_delete", [root.id], root.id);
    this.dropContext(root.id);
  }

  // ---- what the module can see: properties, maps, buffers ----

  /** proxy_get_property: test-set values first (stream, then host), then Envoy's derived attributes. */
  getProperty(ctx: Context | undefined, key: string): Uint8Array | undefined {
    const stream = ctx?.kind === "stream" ? ctx : undefined;
    let value: PropertyValue | undefined;
    if (stream?.properties.covers(key)) value = stream.properties.lookup(key);
    else if (this.host.properties.covers(key)) value = this.host.properties.lookup(key);
    else {
      const segments = key.split("\0");
      if (stream) value = stream.derivedProperty(segments);
      if (value === undefined && segments.length === 1) {
        const root = ctx?.root;
        if (key === "plugin_name" && root) value = root.pluginName;
        else if (key === "plugin_root_id" && root) value = root.rootId;
        else if (key === "plugin_vm_id") value = this.vmId;
        else if (stream) value = stream.filterState.get(key);
      }
    }
    return value === undefined ? undefined : encodeProperty(value, showPath(key));
  }

  /** Read access to a header map (Envoy's getConstMap). */
  constMap(ctx: Context | undefined, type: MapType): HeaderMap | undefined {
    if (type <= MapType.HttpResponseTrailers) return ctx?.kind === "stream" ? ctx.constMap(type) : undefined;
    if (type === MapType.HttpCallResponseHeaders) return ctx?.root.httpCallResponse?.headers;
    if (type === MapType.HttpCallResponseTrailers) return ctx?.root.httpCallResponse?.trailers;
    return undefined; // gRPC metadata: the emulator never has a gRPC callback running
  }

  /** Write access to a header map (Envoy's getMap): only request/response maps that are mutable now. */
  mutableMap(ctx: Context | undefined, type: MapType): HeaderMap | undefined {
    if (type <= MapType.HttpResponseTrailers && ctx?.kind === "stream") return ctx.mutableMap(type);
    return undefined;
  }

  buffer(ctx: Context | undefined, type: BufferType): HostBuffer | undefined {
    switch (type) {
      case BufferType.VmConfiguration:
        return { bytes: this.vmConfig };
      case BufferType.PluginConfiguration:
        return ctx?.root.inConfigure ? { bytes: ctx.root.pluginConfig } : undefined;
      case BufferType.HttpRequestBody:
      case BufferType.HttpResponseBody:
        return ctx?.kind === "stream" ? ctx.bodyBuffer(type) : undefined;
      case BufferType.HttpCallResponseBody: {
        const r = ctx?.root.httpCallResponse;
        return r ? { bytes: r.body } : undefined;
      }
      default:
        return undefined; // TCP data, gRPC receive buffer, foreign-function args: never available to an HTTP filter here
    }
  }
}
