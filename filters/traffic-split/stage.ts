/**
 * traffic-split as a stage: on request, choose a subset (rules, sticky weights, current shared state) and set the
 * routing header the route table matches on (replacing any value the client sent); at completion, count the outcome
 * in a per-worker pending window; on every tick, merge that window into the configuration's shared state with CAS,
 * decide rollbacks, cool-downs and ramp steps there, and adopt the result.
 *
 * Host calls per request: the headers the rules and the sticky key need (each read once), one header replace on
 * request (Envoy re-selects the route on its own, see StreamView.setRoutingHeader); response.code, response.flags and the attempt count at completion (the outcome's
 * cause). No clock: an outcome goes into the window bucket of this VM's last sync. Metrics are counted locally and
 * added to the host's counters on the tick. Per tick and VM: one shared-data get, and one set when there was traffic or a decision;
 * one more get when a gauge would change (or, in a replaced configuration, on each tick).
 */
import { Stage, StageStream, renewFrom } from "../../assembly/stage";
import { ConfigReader } from "../../assembly/config";
import { StreamView } from "../../assembly/stream";
import { isNeutral, isUpstreamFailure, outcomeOf } from "../common/outcome";
import { normalizeName } from "../common/destination";
import { Counter, Gauge, labelTag } from "../../assembly/metrics";
import { Str, SharedValue, getSharedData, setSharedData, nowMs, randomU64, LogLevel } from "../../assembly/host";
import { StageLog } from "../../assembly/log";
import { RecordUpdate, SharedRecords, Update } from "../../assembly/shared";
import { METRIC_PREFIX } from "../../assembly/context";
import { TrafficSplitConfig, FILTER_NAME, parseConfig } from "./config";
import {
  Inputs, SplitState, SplitEvent, EventKind, Window, chooseSubset, randomPoint, evaluate, decodeState, encodeState,
  bucketOf, hashText, hex64, rate,
} from "./core";

/** Shared-data layout version, part of the key: a module with another layout never reads this one's values. */
const KEY_PREFIX = "resilience." + FILTER_NAME + ".v1.";
const PREFIX = METRIC_PREFIX + "traffic_split_";
const LOG = new StageLog(FILTER_NAME);
/** The state key of the newest configuration: the only one whose weights the (process-wide) gauges show. */
const PUBLISHER_KEY = new Str(KEY_PREFIX + "publisher");

/** The request headers of the configuration, read through the view (each fetched at most once per stream). */
class ViewInputs extends Inputs {
  view: StreamView | null = null;
  constructor(readonly names: Str[]) { super(); }
  get(i: i32): string | null {
    return changetype<StreamView>(this.view).requestHeader(unchecked(this.names[i]));
  }
}

/** One sync's update of the shared state: pending outcomes merged, decisions applied (retried on a lost race). */
class SplitMerge extends RecordUpdate {
  now: i64 = 0;
  /** The state and decisions of the last apply(). */
  st: SplitState | null = null;
  events: SplitEvent[] = [];

  constructor(readonly config: TrafficSplitConfig, readonly pending: Window) { super(); }

  apply(cur: SharedValue | null): ArrayBuffer | null {
    const c = this.config;
    const decoded = cur !== null ? decodeState(cur.data, c.subsets.length) : null;
    // Absent (a new configuration) or unreadable: start fresh, overwriting with the value's own CAS.
    const fresh = decoded === null;
    const st = fresh ? SplitState.initial(c, this.now) : changetype<SplitState>(decoded);
    const hadPending = !this.pending.isEmpty();
    if (hadPending) st.window.addAll(this.pending);
    this.events = evaluate(c, st, this.now);
    this.st = st;
    return fresh || hadPending || this.events.length > 0 ? encodeState(st) : null;
  }
}

export class TrafficSplitStage extends Stage {
  readonly key: Str;
  readonly routing: Str;
  readonly names: string[] = [];
  private readonly inputs: ViewInputs;
  /** The shared state as last read or written by this VM: what requests are routed by. */
  state: SplitState;
  /** Outcomes on this VM not yet merged into the shared window. */
  private readonly pending: Window;
  private readonly merge: SplitMerge;
  private readonly records: SharedRecords;
  /** The window bucket of the last sync: where outcomes completing until the next one are counted. */
  private bucket: i64;
  private readonly routedCounts: StaticArray<u32>;
  private readonly failureCounts: StaticArray<u32>;
  private readonly routed: Counter[] = [];
  private readonly failed: Counter[] = [];
  private readonly rollbacks: Counter[] = [];
  private readonly weightGauges: Gauge[] = [];
  private readonly rolledBackGauges: Gauge[] = [];
  /** What this VM last published per subset (weight * 2 + rolled back), -1 = nothing yet. */
  private readonly published: StaticArray<i32>;

  constructor(readonly config: TrafficSplitConfig, configHash: u64) {
    super();
    const n = config.subsets.length;
    this.key = new Str(KEY_PREFIX + hex64(configHash));
    // Requests' destinations are normalised (authority, header): so are the configured ones they are compared with.
    if (!config.destination.byCluster) {
      for (let i = 0; i < config.destinations.length; i++) config.destinations[i] = normalizeName(config.destinations[i]);
    }
    const inputNames = new Array<Str>();
    for (let i = 0; i < config.inputs.length; i++) inputNames.push(new Str(config.inputs[i]));
    this.routing = inputNames[0];
    this.inputs = new ViewInputs(inputNames);
    const pending = new Window(n);
    this.pending = pending;
    this.merge = new SplitMerge(config, pending);
    this.records = new SharedRecords(FILTER_NAME);
    this.routedCounts = new StaticArray<u32>(n);
    this.failureCounts = new StaticArray<u32>(n);
    this.published = new StaticArray<i32>(n);
    const now = nowMs();
    this.state = SplitState.initial(config, now);
    this.bucket = bucketOf(now, config.rollback);
    for (let i = 0; i < n; i++) {
      const name = config.subsets[i].name;
      this.names.push(name);
      const tag = labelTag("subset", name);
      this.routed.push(new Counter(tag + PREFIX + "requests_total"));
      this.failed.push(new Counter(tag + PREFIX + "failures_total"));
      this.rollbacks.push(new Counter(tag + PREFIX + "rollbacks_total"));
      this.weightGauges.push(new Gauge(tag + PREFIX + "weight_percent"));
      this.rolledBackGauges.push(new Gauge(tag + PREFIX + "rolled_back"));
      this.published[i] = -1;
    }
    // The newest configuration publishes: a replaced one keeps running while its listener drains (and on the main
    // thread), and its late decisions would otherwise overwrite the gauges every configuration shares.
    setSharedData(PUBLISHER_KEY, this.key.bytes, 0);
    // Join (or create) the shared state now: a VM started after a rollback must not route to the rolled-back subset.
    this.sync(now);
  }

  get name(): string { return FILTER_NAME; }

  tickPeriodMs(): u32 { return this.config.syncIntervalMs; }

  /** Requests never read the clock (outcomes use the bucket of the last sync). */
  usesClock(): bool { return false; }

  onTick(nowMs: i64): void {
    this.sync(nowMs);
  }

  newStream(view: StreamView): StageStream | null {
    return new TrafficSplitStream(this);
  }

  /** The subset for this request (index into config.subsets). */
  choose(view: StreamView): i32 {
    const inputs = this.inputs;
    inputs.view = view;
    const i = chooseSubset(this.config, this.state, inputs, randomPoint(randomU64()));
    inputs.view = null;
    unchecked(this.routedCounts[i]++);
    return i;
  }

  /** Counts a completed request of subset `i` in this VM's pending window. */
  record(i: i32, failed: bool): void {
    this.pending.add(this.bucket, i, 1, failed ? 1 : 0);
    if (failed) unchecked(this.failureCounts[i]++);
  }

  /** Merges pending outcomes into the shared state, applies decisions there (CAS), and adopts the result. */
  sync(now: i64): void {
    this.bucket = bucketOf(now, this.config.rollback);
    const u = this.merge;
    u.now = now;
    const r = this.records.update(this.key, u);
    if (r != Update.Exhausted) {
      const st = changetype<SplitState>(u.st);
      if (r == Update.Written) this.pending.clear();
      this.adopt(st);
      if (r == Update.Written) {
        const events = u.events;
        for (let e = 0; e < events.length; e++) this.report(events[e]);
      }
    }
    this.flushCounts();
  }

  private adopt(st: SplitState): void {
    this.state = st;
    let checked = false;
    for (let i = 0; i < st.subsets.length; i++) {
      const s = st.subsets[i];
      const w = i == 0 ? st.baselineWeight() : s.weight;
      const code = <i32>(w * 2) + (s.rolledBack ? 1 : 0);
      if (this.published[i] == code) continue;
      if (!checked) {
        if (!this.publishes()) return;
        checked = true;
      }
      this.published[i] = code;
      this.weightGauges[i].set(<u64>w);
      this.rolledBackGauges[i].set(s.rolledBack ? 1 : 0);
    }
  }

  /** Whether this configuration is the newest (the gauges are one stat per name across configurations and VMs). */
  private publishes(): bool {
    const cur = getSharedData(PUBLISHER_KEY);
    return cur === null || String.UTF8.decode(cur.data) == this.key.text;
  }

  private flushCounts(): void {
    for (let i = 0; i < this.names.length; i++) {
      const r = this.routedCounts[i];
      if (r != 0) { this.routed[i].inc(<i64>r); this.routedCounts[i] = 0; }
      const f = this.failureCounts[i];
      if (f != 0) { this.failed[i].inc(<i64>f); this.failureCounts[i] = 0; }
    }
  }

  /** One log line per decision; a rollback is critical and counted once (by the VM whose write made it). */
  private report(e: SplitEvent): void {
    const c = this.config;
    const name = this.names[e.subset];
    if (e.kind == EventKind.RolledBack) {
      this.rollbacks[e.subset].inc();
      if (!LOG.on(LogLevel.Critical)) return;
      const rb = c.rollback;
      LOG.critical("rolled back subset \"" + name + "\"" + this.revisionText() +
        ": error rate " + percent(rate(e.failures, e.requests)) + " (" + e.failures.toString() + " of " + e.requests.toString() +
        " requests) in the last " + rb.windowMs.toString() + " ms, baseline \"" + this.names[0] + "\" " +
        percent(rate(e.baseFailures, e.baseRequests)) + " (" + e.baseFailures.toString() + " of " + e.baseRequests.toString() +
        "); limits errorRate " + percent(rb.errorRate) + ", margin " + percent(rb.margin) + ", minRequests " +
        rb.minRequests.toString() + "; weight " + e.fromWeight.toString() + "% -> 0% on every worker " +
        (rb.cooldownMs != 0 ? "for " + rb.cooldownMs.toString() + " ms" : "until a new configuration"));
    } else if (e.kind == EventKind.Restored) {
      if (LOG.on(LogLevel.Warn)) {
        LOG.warn("cool-down over, subset \"" + name + "\"" + this.revisionText() +
          " restored to weight " + e.toWeight.toString() + "%");
      }
    } else if (LOG.on(LogLevel.Info)) {
      LOG.info("ramp step for subset \"" + name + "\"" + this.revisionText() + ": weight " +
        e.fromWeight.toString() + "% -> " + e.toWeight.toString() + "% (error rate " + percent(rate(e.failures, e.requests)) +
        " over " + e.requests.toString() + " requests)");
    }
  }

  private revisionText(): string {
    const rev = this.config.revision;
    return rev.length > 0 ? " (revision \"" + rev + "\")" : "";
  }
}

/** 0.3103 -> "31.0%". */
function percent(r: f64): string {
  const tenths = <i64>Math.round(r * 1000.0);
  return (tenths / 10).toString() + "." + (tenths % 10).toString() + "%";
}

class TrafficSplitStream extends StageStream {
  private subset: i32 = -1;

  constructor(readonly stage: TrafficSplitStage) { super(); }

  /** Every field is a value, a string or the stage's own object: copied from a stream that never served a request. */
  renew(view: StreamView): bool { return renewFrom<TrafficSplitStream>(this, this.stage.unusedStream(view)); }

  onRequest(view: StreamView, nowMs: i64): bool {
    const stage = this.stage;
    const c = stage.config;
    if (c.destinations.length > 0 && !c.destinations.includes(c.destination.of(view))) {
      // Not a destination being split: not routed, not counted; a client's routing header still has no effect.
      // Removed only when sent: removing an absent header would mark the route changed for every request.
      if (!c.allowClientHeader && view.requestHeader(stage.routing) !== null) view.removeRoutingHeader(stage.routing);
      return true;
    }
    const i = stage.choose(view);
    // Always written: it replaces (every value of) a client-supplied routing header, so clients cannot pick a subset.
    view.setRoutingHeader(stage.routing, stage.names[i]);
    this.subset = i;
    return true;
  }

  onComplete(view: StreamView, nowMs: i64): void {
    const i = this.subset;
    if (i < 0) return; // an earlier stage answered locally: this request was never routed
    // Caller-caused outcomes (its own short deadline, a disconnect, a later stage's local reply) never roll a canary back.
    const cause = outcomeOf(view);
    if (isNeutral(cause)) return;
    this.stage.record(i, isUpstreamFailure(cause) || view.responseCode() >= 500);
  }
}

/**
 * Builds the stage from its configuration (the whole plugin configuration, or its section in the combined module).
 * The shared-state key holds a hash of that configuration: a new configuration starts fresh.
 */
export function buildTrafficSplit(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new TrafficSplitStage(c, hashText(r.toJson())) : null;
}
