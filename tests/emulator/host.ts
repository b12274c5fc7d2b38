// The emulated Envoy process: VMs standing for worker threads, and what they share (shared data, queues, stats,
// the clock), plus the records tests inspect (logs, host-call counts, rejected calls, http calls).
import { LogLevel, MetricType, WasmResult } from "./abi.js";
import { FakeClock } from "./clock.js";
import { EmulatorError } from "./errors.js";
import { HeaderMap, type HeadersInit } from "./headers.js";
import { compileModule, type CompiledModule, type WasmSource } from "./load.js";
import { MetricStore } from "./metrics.js";
import { bytesToString, toBytes, type HeaderPairs } from "./pairs.js";
import { PropertyTree, type PropertyValue } from "./properties.js";
import { SharedDataStore, SharedQueues } from "./shared-data.js";
import { Vm, type Context, type HttpCallResponseView, type RootContext, type RootOptions, type VmOptions } from "./vm.js";

export interface HostOptions {
  /** Level reported by proxy_get_log_level; logs below it are not recorded. Default Info (Envoy's default). */
  logLevel?: LogLevel;
  /** Realtime clock start in ns (default 2026-01-01T00:00:00Z). */
  startNs?: bigint;
  /** Default vm_id for VMs (shared-data namespace). Default "". */
  vmId?: string;
  /** Known cluster names for proxy_http_call; unknown → BadArgument. Default: any name is accepted. */
  clusters?: string[];
  /** Seed for WASI random_get (deterministic). */
  randomSeed?: number;
  /** Print every recorded log line to stderr as it happens (or set EMULATOR_LOGS=1). */
  echoLogs?: boolean;
  /**
   * Non-Ok results this test expects beyond EXPECTED_RESULTS, each with its reason (see allowRejection). Any other
   * non-Ok result of a proxy_* call fails the test at the call.
   */
  allowRejections?: AllowedRejection[];
}

/** A test's opt-in to a non-Ok host result: `call` ("*" for any call), the results, and why the test expects them. */
export interface AllowedRejection {
  call: string;
  results: WasmResult[];
  reason: string;
}

/**
 * Non-Ok results Envoy gives a correct module in normal operation; the module reads them as "absent" or "retry".
 * Any other non-Ok result means the module misused the host (wrong phase, wrong id, unknown name) and fails the test.
 */
export const EXPECTED_RESULTS: Readonly<Record<string, readonly WasmResult[]>> = {
  proxy_get_header_map_value: [WasmResult.NotFound], // the header is absent (or, in on_log, its map is)
  proxy_get_property: [WasmResult.NotFound], // the attribute is absent on this stream (no route, no upstream, no response yet)
  proxy_get_shared_data: [WasmResult.NotFound], // no entry yet: first use of a key
  proxy_set_shared_data: [WasmResult.CasMismatch], // another worker wrote first; the module re-reads
  proxy_dequeue_shared_queue: [WasmResult.Empty], // nothing queued
  proxy_resolve_shared_queue: [WasmResult.NotFound], // the queue is not registered yet
  proxy_set_effective_context: [WasmResult.BadArgument], // the stream ended while its http call was out (never cancelled)
};

export interface LogEntry {
  /** Index of the VM that logged. */
  vm: number;
  level: LogLevel;
  message: string;
  /** Context current when logging (0 during _initialize). */
  contextId: number;
  source: "proxy_log" | "stdout" | "stderr" | "proc_exit";
}

/** A host call that returned something other than Ok (useful to assert a module handles, or avoids, them). */
export interface Rejection {
  vm: number;
  call: string;
  result: WasmResult;
  resultName: string;
  during: string;
}

export interface HttpCallRequest {
  cluster: string;
  headers: HeaderPairs;
  body: Uint8Array;
  trailers: HeaderPairs;
  timeoutMs: number;
}

export interface HttpCallResponse {
  headers: HeadersInit;
  body?: string | Uint8Array;
  trailers?: HeadersInit;
}

/** A dispatched proxy_http_call; answer it with respond() or fail(). */
export class HttpCall implements HttpCallRequest {
  readonly cluster: string;
  readonly headers: HeaderPairs;
  readonly body: Uint8Array;
  readonly trailers: HeaderPairs;
  readonly timeoutMs: number;
  state: "pending" | "answered" | "failed" = "pending";

  constructor(
    readonly vm: Vm,
    /** The root context that owns the call and receives the response. */
    readonly root: RootContext,
    /** The context that issued the call (a stream or the root). */
    readonly issuerContextId: number,
    readonly token: number,
    req: HttpCallRequest,
  ) {
    this.cluster = req.cluster;
    this.headers = req.headers;
    this.body = req.body;
    this.trailers = req.trailers;
    this.timeoutMs = req.timeoutMs;
  }

  get bodyText(): string {
    return bytesToString(this.body);
  }

  /** The first value of a request header the module sent. */
  header(name: string): string | undefined {
    return this.headers.find(([k]) => k === name.toLowerCase())?.[1];
  }

  /** Delivers a response: proxy_on_http_call_response(root, token, n_headers, body_size, n_trailers). */
  respond(response: HttpCallResponse): void {
    const view = {
      headers: new HeaderMap(response.headers),
      body: toBytes(response.body ?? ""),
      trailers: new HeaderMap(response.trailers ?? []),
    };
    if (view.headers.size === 0) throw new EmulatorError(`http call ${this.token}: a response needs headers (use fail() for a reset)`);
    this.deliver("answered", view, [view.headers.size, view.body.length, view.trailers.size]);
  }

  /** Delivers a failure (reset/timeout): num_headers 0, and proxy_get_status reads 11 "reset" during the callback. */
  fail(): void {
    this.root.status = { code: WasmResult.BrokenConnection, message: "reset" };
    try {
      this.deliver("failed", undefined, [0, 0, 0]);
    } finally {
      this.root.status = { code: WasmResult.BrokenConnection, message: "" };
    }
  }

  private deliver(state: "answered" | "failed", view: HttpCallResponseView | undefined, sizes: number[]): void {
    if (this.state !== "pending") throw new EmulatorError(`http call ${this.token} was already ${this.state}`);
    if (this.root.deleted) throw new EmulatorError(`http call ${this.token}: its root context ${this.root.id} was deleted`);
    this.state = state;
    this.root.httpCallResponse = view;
    try {
      this.vm.invoke("proxy_on_http_call_response", [this.root.id, this.token, ...sizes], this.root.id);
    } finally {
      this.root.httpCallResponse = undefined;
    }
  }
}

function checkAllowed(a: AllowedRejection): AllowedRejection {
  if (typeof a.reason !== "string" || a.reason.trim() === "") throw new EmulatorError(`allowRejection(${a.call}): give the reason the test expects it`);
  if (a.results.length === 0 || a.results.some((r) => r === WasmResult.Ok || WasmResult[r] === undefined)) {
    throw new EmulatorError(`allowRejection(${a.call}): results must be non-Ok WasmResult values, got ${a.results.join(", ")}`);
  }
  return a;
}

const LEVEL_NAMES = ["trace", "debug", "info", "warn", "error", "critical", "off"];

export class Host {
  readonly clock: FakeClock;
  logLevel: LogLevel;
  readonly vmId: string;
  readonly clusters: Set<string> | undefined;
  readonly vms: Vm[] = [];
  readonly logs: LogEntry[] = [];
  /** Host calls by import name, across all VMs (reset with resetHostCallCount). */
  hostCallCount: Record<string, number> = {};
  /** Calls into the module by export name (callbacks and malloc), across all VMs. */
  moduleCallCount: Record<string, number> = {};
  readonly rejections: Rejection[] = [];
  readonly httpCalls: HttpCall[] = [];
  readonly foreignCalls: { vm: number; contextId: number; name: string; args: Uint8Array }[] = [];
  readonly sharedDataStore = new SharedDataStore();
  readonly queues = new SharedQueues();
  readonly metricStore = new MetricStore();
  /** Properties visible in every context of every VM (e.g. xds.node.*); stream properties win over these. */
  readonly properties = new PropertyTree();
  private readonly echoLogs: boolean;
  private randomState: number;
  private readonly compiled = new Map<string, CompiledModule>();
  private readonly allowed: AllowedRejection[];

  constructor(opts: HostOptions = {}) {
    this.allowed = [...(opts.allowRejections ?? [])].map((a) => checkAllowed(a));
    this.clock = new FakeClock(opts.startNs);
    this.logLevel = opts.logLevel ?? LogLevel.Info;
    this.vmId = opts.vmId ?? "";
    this.clusters = opts.clusters ? new Set(opts.clusters) : undefined;
    this.randomState = (opts.randomSeed ?? 0x9e3779b9) >>> 0 || 1;
    this.echoLogs = opts.echoLogs ?? process.env.EMULATOR_LOGS === "1";
  }

  // ---- VMs ----

  /** Compiles (once per path) and checks a module against Envoy's load rules. */
  compile(source: WasmSource | CompiledModule): CompiledModule {
    if (typeof source === "object" && "module" in source) return source;
    if (typeof source !== "string") return compileModule(source);
    let c = this.compiled.get(source);
    if (!c) this.compiled.set(source, (c = compileModule(source)));
    return c;
  }

  /** Instantiates one VM (a worker) and runs _initialize under the init restrictions. No root context yet. */
  createVm(source: WasmSource | CompiledModule, opts: VmOptions = {}): Vm {
    const vm = new Vm(this, this.vms.length, this.compile(source), opts);
    this.vms.push(vm);
    return vm;
  }

  /** createVm + startRoot; throws if on_vm_start or on_configure returns false (Envoy would refuse the plugin). */
  startVm(source: WasmSource | CompiledModule, opts: VmOptions & RootOptions = {}): Vm {
    const vm = this.createVm(source, opts);
    const root = vm.startRoot(opts);
    if (!root.vmStartResult || !root.configureResult) {
      const which = root.vmStartResult ? "proxy_on_configure" : "proxy_on_vm_start";
      const logs = this.logs
        .filter((l) => l.vm === vm.index)
        .map((l) => `\n    [${LEVEL_NAMES[l.level]}] ${l.message}`)
        .join("");
      throw new EmulatorError(`VM ${vm.index}: ${which} returned false; Envoy would refuse the plugin${logs ? `. Logs:${logs}` : ""}`);
    }
    return vm;
  }

  /** `count` workers running the same module and configuration (same vm_id), each started as startVm does. */
  startVms(source: WasmSource | CompiledModule, count: number, opts: VmOptions & RootOptions = {}): Vm[] {
    const compiled = this.compile(source);
    return Array.from({ length: count }, () => this.startVm(compiled, opts));
  }

  // ---- time ----

  /** Calls proxy_on_tick on every root (of every VM) that has a tick period set; returns how many fired. */
  tick(): number {
    return this.vms.reduce((n, vm) => n + vm.tick(), 0);
  }

  /**
   * Advances the clock by `ms`, firing every tick that falls due on the way, in time order (ties: VM index, then
   * root id), with the clock set to each tick's due time. Returns the number of ticks fired.
   */
  advanceMs(ms: number | bigint): number {
    const target = this.clock.nowNs + BigInt(ms) * 1_000_000n;
    let fired = 0;
    for (;;) {
      let next: RootContext | undefined;
      for (const vm of this.vms) {
        for (const root of vm.roots) {
          if (root.deleted || vm.failed || root.nextTickNs === undefined || root.nextTickNs > target) continue;
          if (!next || root.nextTickNs < next.nextTickNs!) next = root;
        }
      }
      if (!next) break;
      if (next.nextTickNs! > this.clock.nowNs) this.clock.advanceNs(next.nextTickNs! - this.clock.nowNs);
      next.vm.fireTick(next);
      fired++;
    }
    this.clock.advanceNs(target - this.clock.nowNs);
    return fired;
  }

  // ---- inspection ----

  /** Value of the counter `name` (as the module defined it, without `wasmcustom.`). Throws if never defined. */
  counter(name: string): bigint {
    return this.metricStore.require(MetricType.Counter, name).value;
  }

  gauge(name: string): bigint {
    return this.metricStore.require(MetricType.Gauge, name).value;
  }

  /** Every value recorded into the histogram `name`, in order. */
  histogram(name: string): bigint[] {
    return [...this.metricStore.require(MetricType.Histogram, name).values];
  }

  /** Names of every defined metric of a type. */
  metricNames(type: MetricType): string[] {
    return this.metricStore
      .all()
      .filter((s) => s.type === type)
      .map((s) => s.name);
  }

  /** The shared-data entry for `key` in namespace `vmId` (default: the host's vm_id), or undefined. */
  sharedData(key: string, vmId = this.vmId): { value: Uint8Array; text: string; cas: number } | undefined {
    const e = this.sharedDataStore.get(vmId, key);
    return e && { value: e.value.slice(), text: bytesToString(e.value), cas: e.cas };
  }

  /** Writes shared data as a module would (cas 0 = unconditional); returns Ok or CasMismatch. */
  setSharedData(key: string, value: string | Uint8Array, cas = 0, vmId = this.vmId): WasmResult {
    return this.sharedDataStore.set(vmId, key, toBytes(value), cas);
  }

  /** Sets a property visible to every context (dotted, NUL-separated or array path). */
  setProperty(path: string | readonly string[], value: PropertyValue): this {
    this.properties.set(path, value);
    return this;
  }

  /** Logs at or above `level` (default: all recorded), optionally of one VM. */
  logsAt(level: LogLevel = LogLevel.Trace, vm?: number): LogEntry[] {
    return this.logs.filter((l) => l.level >= level && (vm === undefined || l.vm === vm));
  }

  resetHostCallCount(): void {
    this.hostCallCount = {};
    this.moduleCallCount = {};
  }

  /** Http calls not yet answered. */
  get pendingHttpCalls(): HttpCall[] {
    return this.httpCalls.filter((c) => c.state === "pending");
  }

  /** Delivers every queue-ready notification posted by enqueue so far; returns how many were delivered. */
  deliverQueueReady(): number {
    const batch = this.queues.pending.splice(0);
    for (const { token, receiver } of batch) {
      const vm = this.vms[receiver.vmIndex]!;
      vm.invoke("proxy_on_queue_ready", [receiver.rootContextId, token], receiver.rootContextId);
    }
    return batch.length;
  }

  /**
   * Lets `call` ("*": any call) return `results` without failing the test, for a test that provokes them on purpose
   * or a module known to meet them; `reason` says why (it shows in nothing, it is for the reader). Chainable.
   */
  allowRejection(call: string, results: WasmResult | WasmResult[], reason: string): this {
    this.allowed.push(checkAllowed({ call, results: Array.isArray(results) ? results : [results], reason }));
    return this;
  }

  /** Whether a non-Ok `result` of `call` is expected (normal operation, or the test opted in). */
  isExpected(call: string, result: WasmResult): boolean {
    if (EXPECTED_RESULTS[call]?.includes(result)) return true;
    return this.allowed.some((a) => (a.call === "*" || a.call === call) && a.results.includes(result));
  }

  /** Throws if any proxy_* call returned a non-Ok result (listing them). */
  assertNoRejections(): void {
    if (this.rejections.length > 0) {
      const list = this.rejections.map((r) => `${r.call} -> ${r.resultName} (VM ${r.vm}, ${r.during})`).join("\n  ");
      throw new EmulatorError(`host calls were rejected:\n  ${list}`);
    }
  }

  // ---- called by the VMs ----

  recordLog(vm: Vm, level: number, message: string, source: LogEntry["source"]): void {
    if (level < this.logLevel) return;
    const entry: LogEntry = { vm: vm.index, level, message, contextId: vm.callingContextId(), source };
    this.logs.push(entry);
    if (this.echoLogs) process.stderr.write(`[vm ${entry.vm} ctx ${entry.contextId} ${LEVEL_NAMES[level]}] ${message}\n`);
  }

  countHostCall(vm: Vm, name: string): void {
    this.hostCallCount[name] = (this.hostCallCount[name] ?? 0) + 1;
    const c = vm.currentContext();
    if (c?.kind === "stream") c.hostCallCount[name] = (c.hostCallCount[name] ?? 0) + 1;
  }

  countModuleCall(name: string): void {
    this.moduleCallCount[name] = (this.moduleCallCount[name] ?? 0) + 1;
  }

  /** Records a non-Ok result; one neither normal nor allowed throws, failing the module call and so the test. */
  recordRejection(vm: Vm, call: string, result: WasmResult): void {
    const r: Rejection = { vm: vm.index, call, result, resultName: WasmResult[result] ?? String(result), during: vm.describeFrame() };
    this.rejections.push(r);
    if (!this.isExpected(call, result)) {
      throw new EmulatorError(
        `${call} returned ${r.resultName} during ${r.during}: a correct module does not meet this in normal operation ` +
          `(strict host; a test that expects it says so with host.allowRejection("${call}", WasmResult.${r.resultName}, "why"))`,
      );
    }
  }

  randomBytes(len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      let x = this.randomState; // xorshift32
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.randomState = x >>> 0;
      out[i] = this.randomState & 0xff;
    }
    return out;
  }

  /** proxy_http_call: validates like Envoy, records the call on the issuing context's root, writes the token. */
  startHttpCall(vm: Vm, ctx: Context, req: HttpCallRequest, outToken: number): WasmResult {
    if (req.timeoutMs < 0) return WasmResult.BadArgument;
    if (this.clusters && !this.clusters.has(req.cluster)) return WasmResult.BadArgument;
    const names = new Set(req.headers.map(([k]) => k.toLowerCase()));
    if (!names.has(":path") || !names.has(":method") || !names.has(":authority")) return WasmResult.BadArgument;
    const token = vm.nextHttpCallId();
    vm.writeU32(outToken, token, "out_token");
    this.httpCalls.push(new HttpCall(vm, ctx.root, ctx.id, token, req));
    return WasmResult.Ok;
  }
}
