/**
 * Context base classes. The exported callbacks (exports.ts) dispatch by context id to these objects;
 * a filter subclasses RootContext (one per plugin configuration per VM) and HttpContext (one per stream).
 */
import { FilterHeadersStatus, FilterDataStatus, FilterTrailersStatus, LogLevel } from "./abi/types";
import { log, logEnabled, refreshLogLevel, setTickPeriodMs } from "./host";
import { Gauge, labelTag, flushBatched } from "./metrics";
import { BUNDLE_VERSION } from "./version";

// Whether this VM has said which bundle it runs (once per VM, at the first configure).
let announced = false;

/** Metric prefix of the project's own series (the Istio-compatible mode of a filter may use others). */
// @ts-ignore: decorator
@inline export const METRIC_PREFIX = "resilience_";

/** How often every root context refreshes the cached log level and its memory gauge. */
// @ts-ignore: decorator
@inline export const HOUSEKEEPING_PERIOD_MS: u32 = 1000;

/** Per-plugin state: configuration, metrics, shared-state handles. One instance per VM (worker). */
export class RootContext {
  /** The filter's name: log prefix, metric label `filter`, shared-data key prefix. */
  name: string = "";
  private memoryGauge: Gauge | null = null;
  private reportedMemory: i64 = 0;
  private tickPeriodMs: u32 = 0;

  constructor(public readonly id: u32) {}

  /** Called once per root context after creation; vmConfig is the VM configuration bytes. */
  onVmStart(vmConfig: ArrayBuffer): bool { return true; }

  /** Parses the plugin configuration; false makes Envoy refuse it. Subclasses call super.onConfigure first. */
  onConfigure(config: ArrayBuffer): bool {
    refreshLogLevel();
    if (!announced) {
      announced = true;
      log(LogLevel.Info, "resilience filters " + BUNDLE_VERSION + " (proxy-wasm ABI 0.2.1): starting " + this.name);
    }
    if (this.memoryGauge === null) {
      this.memoryGauge = new Gauge(labelTag("filter", this.name) + METRIC_PREFIX + "wasm_memory_bytes");
    }
    this.recordMemory();
    if (this.tickPeriodMs == 0) this.setTickPeriod(HOUSEKEEPING_PERIOD_MS);
    return true;
  }

  /** A filter needing a faster tick than housekeeping sets it here; housekeeping runs on every tick. */
  setTickPeriod(ms: u32): void {
    this.tickPeriodMs = ms;
    setTickPeriodMs(ms);
  }

  /** Runs on the timer; subclasses call super.onTick(nowMs) to keep housekeeping. */
  onTick(): void {
    flushBatched();
    refreshLogLevel();
    this.recordMemory();
  }

  /** New stream context, or null when this plugin has nothing to do for streams. */
  newHttpContext(id: u32): HttpContext | null { return null; }

  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {}

  /** Plugin removal or shutdown (run from proxy_on_delete: deletion cannot be deferred). Subclasses call super.onDone(). */
  onDone(): void {
    // Nothing summed on this VM is lost with the plugin.
    flushBatched();
    // This VM's memory leaves the filter's total with it.
    const g = this.memoryGauge;
    if (g !== null && this.reportedMemory != 0) g.add(-this.reportedMemory);
    this.reportedMemory = 0;
  }

  /**
   * The gauge `resilience_wasm_memory_bytes{filter}` is the total linear memory of the VMs running this filter:
   * each VM adds the change since its last report (workers' gauges are one shared stat, so `set` would flip
   * between VMs).
   */
  private recordMemory(): void {
    const g = this.memoryGauge;
    if (g === null) return;
    const now = <i64>memory.size() << 16;
    const delta = now - this.reportedMemory;
    if (delta != 0) g.add(delta);
    this.reportedMemory = now;
  }

  /** Logs with the filter name and context id, if the level is enabled. */
  log(level: LogLevel, message: string): void {
    if (logEnabled(level)) log(level, this.name + " [root " + this.id.toString() + "] " + message);
  }
}

/** Per-stream state. Dropped (and its memory reclaimed) at on_delete. */
export class HttpContext {
  /** `id` changes only when a pooled context takes a new stream (StagedHttpContext.restart). */
  constructor(public id: u32, public readonly root: RootContext) {}

  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus { return FilterHeadersStatus.Continue; }
  onRequestBody(bodySize: u32, endOfStream: bool): FilterDataStatus { return FilterDataStatus.Continue; }
  onRequestTrailers(numTrailers: u32): FilterTrailersStatus { return FilterTrailersStatus.Continue; }
  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus { return FilterHeadersStatus.Continue; }
  onResponseBody(bodySize: u32, endOfStream: bool): FilterDataStatus { return FilterDataStatus.Continue; }
  onResponseTrailers(numTrailers: u32): FilterTrailersStatus { return FilterTrailersStatus.Continue; }
  /** Stream complete (access-log time): response code, flags and durations are final here. */
  onLog(): void {}
  onDone(): void {}
  /** After on_delete, once the registry forgot the context: it may be kept for a later stream (no other use after). */
  recycle(): void {}

  /** Logs with the filter name and stream id, if the level is enabled. */
  log(level: LogLevel, message: string): void {
    if (logEnabled(level)) log(level, this.root.name + " [" + this.id.toString() + "] " + message);
  }
}

/** Creates a filter's root context for a context id. */
export type RootFactory = (id: u32) => RootContext;
