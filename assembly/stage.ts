/**
 * Filters as stages. A filter's host-free core is wrapped in a Stage (per plugin, per VM) that makes a StageStream
 * per request. A single-filter module runs one stage; the combined module runs several in one Wasm filter, over one
 * StreamView, in one pass: on request each stage may read, set headers, or answer locally (which ends the pass); at
 * completion every stage records the outcome.
 */
import { FilterHeadersStatus, LogLevel } from "./abi/types";
import { RootContext, HttpContext } from "./context";
import { StreamView } from "./stream";
import { nowMs, log } from "./host";
import { ConfigReader } from "./config";
import { RootEntry, registerRootEntry } from "./registry";

/** One filter's per-plugin part: parsed config, metrics, shared-state handles. */
export abstract class Stage {
  /** The filter's name: config section, metric label, log prefix, shared-data key prefix. */
  abstract get name(): string;
  /** Per-request state, or null when this stage has nothing to do for the stream. */
  abstract newStream(view: StreamView): StageStream | null;
  /** Periodic work on this VM (shared-state refresh); nowMs is wall-clock milliseconds. */
  onTick(nowMs: i64): void {}
  /** The tick period the stage wants (0: housekeeping only). */
  tickPeriodMs(): u32 { return 0; }
  /** False when the stage never looks at `nowMs`: then a module of such stages reads no clock per request. */
  usesClock(): bool { return true; }
  /** False when onComplete can take the time read on request headers (then no clock read at completion for it). */
  clockAtCompletion(): bool { return this.usesClock(); }
  /** True when onComplete always reads `request.duration` (view.requestDurationNs): completion time then costs no call. */
  readsDuration(): bool { return false; }

  private unused: StageStream | null = null;
  /** A stream of this stage that serves no request (made once): what renewFrom copies a used stream's fields from. */
  unusedStream(view: StreamView): StageStream | null {
    if (this.unused === null) this.unused = this.newStream(view);
    return this.unused;
  }
}

/** One filter's per-request part. */
export abstract class StageStream {
  /** On request headers. Returns false when it answered locally (the pass ends). */
  onRequest(view: StreamView, nowMs: i64): bool { return true; }
  /** On response headers (the response can still be changed). Runs only in modules whose entry re-exports
   *  exports-response.ts (Envoy calls only exported callbacks; each call into the VM costs). */
  onResponse(view: StreamView, nowMs: i64): void {}
  /**
   * False when onResponse does not look at `nowMs` for this stream: it then gets the request's reading, and the clock is
   * not read. Asked only of the streams of stages whose usesClock() is true.
   */
  clockOnResponse(): bool { return true; }
  /** Stream complete: record the outcome (code, flags, attempts, duration are final). */
  onComplete(view: StreamView, nowMs: i64): void {}
  /** The stream is gone; in a cluster's upstream filter chain this comes without onComplete (Envoy logs no upstream filter). */
  onDone(view: StreamView): void {}
  /**
   * Makes this stream what its stage's newStream would make, for the next request of a pooled context; false when it
   * cannot (the stage then makes a new one). See renewFrom.
   */
  renew(view: StreamView): bool { return false; }
}

/**
 * Renews a stream by copying every field from `unused`, a stream of the same stage that never served a request. Only
 * for stream classes whose fields hold values, strings, or objects that belong to the stage (a destination's record):
 * an object made per stream would be shared by every renewed stream.
 */
export function renewFrom<T>(stream: T, unused: StageStream | null): bool {
  if (!(unused instanceof T)) return false;
  memory.copy(changetype<usize>(stream), changetype<usize>(unused), offsetof<T>());
  return true;
}

/** Makes the stages of a root context from its configuration; sets `error` (naming the field) on bad config. */
export abstract class StageSetup {
  error: string | null = null;
  abstract build(config: ArrayBuffer): Stage[];
}

/**
 * The per-stream HttpContext that runs a root's stages in order. The clock is read at most once per callback and only
 * when a stage needs it: on request headers; on response headers only for a stream that asks (clockOnResponse); at
 * completion, request start + `request.duration` when a stage reads that property anyway, else one read.
 */
export class StagedHttpContext extends HttpContext {
  private readonly view: StreamView;
  /** The streams of the stages that act on this request, in order: the first `count` slots (one allocation, sized once). */
  private readonly active: StaticArray<StageStream | null>;
  private count: i32 = 0;
  /** How many streams the stages made for this context (count may end lower: a stage replied locally). */
  private made: i32 = 0;
  private readonly stagedRoot: StagedRoot;
  /** The clock on request headers (ms), 0 when not read. */
  private startMs: i64 = 0;
  /** Bit i: active[i] belongs to a stage that reads the clock (a module has at most 32 stages). */
  private clocked: u32 = 0;

  /** The root's stages this context was made for. */
  readonly stages: Stage[];
  /** The next context in the root's pool while this one waits there. */
  nextFree: StagedHttpContext | null = null;

  constructor(id: u32, root: StagedRoot) {
    super(id, root);
    this.view = new StreamView(id);
    this.stages = root.stages;
    this.active = new StaticArray<StageStream | null>(root.stages.length);
    this.stagedRoot = root;
    this.begin();
  }

  /** Asks each stage for its stream of this request. */
  private begin(): void {
    const view = this.view;
    const stages = this.stages;
    const active = this.active;
    let clocked: u32 = 0;
    let n: i32 = 0;
    for (let i = 0; i < stages.length; i++) {
      const stage = unchecked(stages[i]);
      const s = stage.newStream(view);
      if (s === null) continue;
      if (stage.usesClock()) clocked |= (<u32>1) << <u32>n;
      unchecked(active[n++] = s);
    }
    this.clocked = clocked;
    this.count = n;
    this.made = n;
  }

  /** Takes stream `id`: a context from the root's pool starts over with its view, stage list and streams renewed. */
  restart(id: u32): void {
    this.id = id;
    this.nextFree = null;
    this.view.reset(id);
    this.startMs = 0;
    const active = this.active;
    const made = this.made;
    for (let i = 0; i < made; i++) {
      if (!stageAt(active, i).renew(this.view)) {
        this.begin();
        return;
      }
    }
    this.count = made;
  }

  recycle(): void {
    this.stagedRoot.recycle(this);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const now = this.stagedRoot.usesClock ? nowMs() : 0;
    this.startMs = now;
    const view = this.view;
    view.requestHasBody = !endOfStream;
    const active = this.active;
    for (let i = 0, n = this.count; i < n; i++) {
      if (!stageAt(active, i).onRequest(view, now)) {
        // Stages after the one that replied never saw the request: they record nothing.
        this.count = i + 1;
        return FilterHeadersStatus.StopIteration;
      }
    }
    view.finishRequest();
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const active = this.active;
    const n = this.count;
    if (n == 0) return FilterHeadersStatus.Continue;
    let now = this.startMs;
    const clocked = this.clocked;
    for (let i = 0; i < n; i++) {
      if ((clocked & ((<u32>1) << <u32>i)) != 0 && stageAt(active, i).clockOnResponse()) { now = nowMs(); break; }
    }
    for (let i = 0; i < n; i++) stageAt(active, i).onResponse(this.view, now);
    return FilterHeadersStatus.Continue;
  }

  onLog(): void {
    const active = this.active;
    const n = this.count;
    if (n == 0) return;
    const now = this.completionMs();
    for (let i = 0; i < n; i++) stageAt(active, i).onComplete(this.view, now);
  }

  /** The time at completion for the stages (0 when none reads the clock), read from the host only when not derivable. */
  private completionMs(): i64 {
    const root = this.stagedRoot;
    if (!root.usesClock) return 0;
    const start = this.startMs;
    if (start == 0) return nowMs(); // the stream never reached request headers (Envoy logs it anyway)
    if (!root.clockAtCompletion) return start;
    if (root.readsDuration) {
      // A stage reads request.duration anyway (the view caches it): start + duration is the completion time.
      const d = this.view.requestDurationNs();
      if (d >= 0) return start + d / 1_000_000;
    }
    return nowMs();
  }

  onDone(): void {
    const active = this.active;
    for (let i = 0, n = this.count; i < n; i++) stageAt(active, i).onDone(this.view);
  }
}

/** Slot i (< count) of a context's streams: always set. */
// @ts-ignore: decorator
@inline function stageAt(active: StaticArray<StageStream | null>, i: i32): StageStream {
  return changetype<StageStream>(unchecked(active[i]));
}

/** A root context whose behaviour is a list of stages built from the plugin configuration. */
export class StagedRoot extends RootContext {
  stages: Stage[] = [];
  /** Whether any stage reads the clock. */
  usesClock: bool = false;
  /** Whether any stage needs the time at completion (not the request's reading). */
  clockAtCompletion: bool = false;
  /** Whether a stage reads request.duration at completion anyway. */
  readsDuration: bool = false;
  /** Contexts of ended streams, linked through nextFree, made for these stages (emptied when the stages change). */
  private pool: StagedHttpContext | null = null;
  private pooled: i32 = 0;

  constructor(id: u32, name: string, private readonly setup: StageSetup) {
    super(id);
    this.name = name;
  }

  onConfigure(config: ArrayBuffer): bool {
    super.onConfigure(config);
    const stages = this.setup.build(config);
    const err = this.setup.error;
    if (err !== null) {
      // One critical line naming the field and quoting the value; Envoy then refuses the configuration.
      log(LogLevel.Critical, err);
      return false;
    }
    this.stages = stages;
    this.pool = null;
    this.pooled = 0;
    let clock = false, atCompletion = false, duration = false;
    for (let i = 0; i < stages.length; i++) {
      const st = stages[i];
      clock = clock || st.usesClock();
      atCompletion = atCompletion || st.clockAtCompletion();
      duration = duration || st.readsDuration();
    }
    this.usesClock = clock;
    this.clockAtCompletion = atCompletion;
    this.readsDuration = duration;
    let period: u32 = 0;
    for (let i = 0; i < stages.length; i++) {
      const p = stages[i].tickPeriodMs();
      if (p != 0 && (period == 0 || p < period)) period = p;
    }
    if (period != 0) this.setTickPeriod(period);
    return true;
  }

  onTick(): void {
    super.onTick();
    const now = nowMs();
    const stages = this.stages;
    for (let i = 0; i < stages.length; i++) unchecked(stages[i]).onTick(now);
  }

  newHttpContext(id: u32): HttpContext | null {
    const c = this.pool;
    if (c === null) return new StagedHttpContext(id, this);
    this.pool = c.nextFree;
    this.pooled--;
    c.restart(id);
    return c;
  }

  /**
   * Keeps an ended stream's context for a later one, up to POOL_CAP (past a spike, the rest are collected); not one made
   * for stages a new configuration replaced (its stage list is sized for those).
   */
  recycle(c: StagedHttpContext): void {
    if (c.stages !== this.stages || this.pooled >= POOL_CAP) return;
    c.nextFree = this.pool;
    this.pool = c;
    this.pooled++;
  }
}

/** Contexts a root keeps for reuse: a stream's context, view and stage list are then not allocated per request. */
// @ts-ignore: decorator
@inline const POOL_CAP: i32 = 64;

/** Builds one filter's stage from its configuration; returns null, with the reader's error set, on a bad config. */
export type StageBuilder = (r: ConfigReader) => Stage | null;

/** One filter: the whole plugin configuration is its own. */
class SingleSetup extends StageSetup {
  constructor(readonly filterName: string, readonly builder: StageBuilder) { super(); }

  build(config: ArrayBuffer): Stage[] {
    const r = ConfigReader.fromBytes(config, this.filterName);
    const b = this.builder;
    const stage = b(r);
    r.done();
    this.error = r.error;
    return stage !== null && r.error === null ? [stage] : [];
  }
}

/**
 * Several filters in one Wasm filter (the combined module). Its configuration has one optional object per filter,
 * keyed by the filter's name, and `filters`, the list of those to run (default: all, in the module's order).
 */
class CombinedSetup extends StageSetup {
  constructor(readonly moduleName: string, readonly names: string[], readonly builders: StageBuilder[]) { super(); }

  build(config: ArrayBuffer): Stage[] {
    const r = ConfigReader.fromBytes(config, this.moduleName);
    const enabled = r.stringList("filters", this.names);
    for (let i = 0; i < enabled.length; i++) {
      if (!this.names.includes(enabled[i])) {
        r.fail("filters[" + i.toString() + "]", "unknown filter \"" + enabled[i] + "\"; this module has " + this.names.join(", "));
      }
    }
    const stages = new Array<Stage>();
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i];
      // Every section is read, so a section for a filter not in `filters` is still checked, not ignored.
      const section = r.object(name);
      const b = this.builders[i];
      const stage = b(section);
      if (stage !== null && enabled.includes(name)) stages.push(stage);
    }
    r.done();
    this.error = r.error;
    return r.error === null ? stages : [];
  }
}

class StagedEntry extends RootEntry {
  constructor(readonly name: string, readonly setup: StageSetup) { super(); }
  create(id: u32): RootContext {
    return new StagedRoot(id, this.name, this.setup);
  }
}

/** Registers a filter under its root_id: call once at the top level of the filter's entry file. */
export function registerFilter(name: string, builder: StageBuilder): void {
  registerRootEntry(name, new StagedEntry(name, new SingleSetup(name, builder)));
}

/** Registers the combined module's root: `names[i]` is built by `builders[i]`, and runs in that order. */
export function registerCombined(moduleName: string, names: string[], builders: StageBuilder[]): void {
  assert(names.length <= 32, "at most 32 stages per module (StagedHttpContext keeps one bit per stage)");
  registerRootEntry(moduleName, new StagedEntry(moduleName, new CombinedSetup(moduleName, names, builders)));
}
