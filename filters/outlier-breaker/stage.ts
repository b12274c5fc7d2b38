/**
 * outlier-breaker as a stage: one closed/open/half-open breaker per destination (optionally per upstream host),
 * its record in shared data so every worker sees the same state, written with CAS so one transition wins
 * (assembly/shared.ts).
 *
 * Shared state on the request path. Each worker keeps a view of each breaker: whether its record was closed, and
 * quiet (closed, no failure in a row, no failure in the window, slow-call rule off: BreakerRecord.quiet), when last read
 * or written, and at which value of the process-wide counter `resilience_outlier_breaker_changes_total`. Every write
 * that moves a record's state, or makes it stop being quiet (a first failure), bumps that counter after the write.
 * A request reads the counter (proxy_get_metric: nothing allocated, no re-entry into the VM); while it equals the
 * view's and the view is closed, no transition happened anywhere since, so the request passes without reading the
 * record. At completion a success on a quiet view is counted in the worker's PendingSuccesses and merged into the
 * record with the worker's next write or on its tick (at most min(windowSeconds x 100 ms, 1 s) later); any other
 * outcome is read, applied and CAS-written at once, as before. So a trip, a first failure or a half-open transition on
 * one worker is seen by the next request on every worker, and counts stay exact but for successes still pending.
 *
 * Host calls per request (besides the outcome's response.code, response.flags and attempt count at completion).
 * Closed: one metric read on request; at completion nothing for a success on a quiet breaker, else one record read
 * and one CAS write (more only on a CAS race), plus one counter increment when that write made the record unquiet
 * or moved its state. Open: the metric read, one record read, the local reply. Half-open: the metric read, the record
 * read, a CAS write for each probe slot taken and given back.
 */
import { Stage, StageStream, renewFrom } from "../../assembly/stage";
import { StreamView, P_RESPONSE_FLAGS } from "../../assembly/stream";
import { Counter, Gauge, labelTag } from "../../assembly/metrics";
import { SharedDirectory } from "../common/directory";
import { Cause, classify as classifyCause, isNeutral, outcomeOf } from "../common/outcome";
import {
  Str, HeaderPair, SharedValue, getPropertyI64, getSharedData, randomF64, nowMs as hostNowMs,
  defineMetric, getMetric, incrementMetric, LogLevel, MetricType,
} from "../../assembly/host";
import { RecordUpdate, SharedRecords, Update } from "../../assembly/shared";
import { StageLog } from "../../assembly/log";
import { METRIC_PREFIX } from "../../assembly/context";
import { ConfigReader } from "../../assembly/config";
import { OutlierBreakerConfig, FILTER_NAME, FailOn, parseConfig } from "./config";
import {
  Admit, BreakerRecord, Outcome, PendingSuccesses, RECORD_SIZE, MAX_KEY_LENGTH, State, STATE_NAMES, Transition, TRIP_NAMES,
  bucketMs, isSlow, recordEpoch, recordOpenUntilMs, recordState, retryAfterSeconds,
} from "./core";

/** Longest wait before a worker's pending successes reach the shared window: the tick period's upper bound. */
// @ts-ignore: decorator
@inline const MAX_FLUSH_MS: i64 = 1000;

const KEY_PREFIX = "resilience." + FILTER_NAME + ".";
const H_RETRY_AFTER = "retry-after";
const DETAILS: string[] = ["", "outlier_breaker_open", "outlier_breaker_half_open"];
const BODY: string[] = ["", "upstream circuit open\n", "upstream circuit half-open, no probe slot free\n"];
/** The breaker every destination beyond maxBreakers shares: still guarded, never unguarded. */
const OVERFLOW = "other";
const LOG = new StageLog(FILTER_NAME);

/** One breaker as this VM knows it: its shared-data key and its series. */
class Breaker {
  readonly key: Str;
  readonly state: Gauge;
  readonly opens: Counter;
  readonly rejections: Counter;
  readonly fallbacks: Counter;
  readonly probes: Counter;
  readonly transitions: StaticArray<Counter>;
  /** Rejections not yet added to `rejections`: flushed on each tick, so an open-state answer makes no metric call. */
  pendingRejections: i64 = 0;
  /** This worker's view: the record was closed, and quiet, when last read or written at changes-counter value `viewGen`. */
  closed: bool = false;
  quiet: bool = false;
  viewGen: u64 = 0;
  /** The record's epoch in that view, and whether the record existed (the first outcome creates it). */
  viewEpoch: u32 = 0;
  exists: bool = false;
  /** Successes counted on a quiet view, not yet in the shared window. */
  readonly pending: PendingSuccesses = new PendingSuccesses();

  constructor(readonly name: string, slot: i32) {
    this.key = new Str(KEY_PREFIX + "b." + (slot >= 0 ? slot.toString() : OVERFLOW));
    this.state = new Gauge(series(name, "", "state"));
    this.opens = new Counter(series(name, "", "opens_total"));
    this.rejections = new Counter(series(name, "", "rejections_total"));
    this.fallbacks = new Counter(series(name, "", "fallbacks_total"));
    this.probes = new Counter(series(name, "", "probes_total"));
    const t = new StaticArray<Counter>(3);
    for (let s = 0; s < 3; s++) t[s] = new Counter(series(name, STATE_NAMES[s], "transitions_total"));
    this.transitions = t;
  }
}

/** `destination_service=.=<name>;.;[state=.=<s>;.;]resilience_outlier_breaker_<what>`. */
function series(destination: string, state: string, what: string): string {
  const metric = METRIC_PREFIX + "outlier_breaker_" + what;
  const tag = labelTag("destination_service", destination);
  return state.length == 0 ? tag + metric : tag + labelTag("state", state) + metric;
}

/** An admission decided on the record as read: a half-open transition or a probe slot is written back (CAS). */
class AdmitUpdate extends RecordUpdate {
  nowMs: i64 = 0;
  hasBody: bool = false;
  decision: Admit = Admit.Reject;

  constructor(readonly config: OutlierBreakerConfig, readonly rec: BreakerRecord, readonly out: ArrayBuffer) { super(); }

  apply(cur: SharedValue | null): ArrayBuffer | null {
    const rec = this.rec;
    rec.decode(cur !== null ? cur.data : null);
    this.decision = rec.admit(this.config, this.nowMs, this.hasBody);
    if (!rec.dirty) return null;
    rec.encodeInto(this.out);
    return this.out;
  }
}

/** An outcome applied to the record as read, with this worker's pending successes merged in (or, on the tick, those alone). */
class OutcomeUpdate extends RecordUpdate {
  breaker: Breaker | null = null;
  /** False: only merge the pending successes (the tick). */
  withOutcome: bool = true;
  admitted: Admit = Admit.Pass;
  epoch: u32 = 0;
  hasBody: bool = false;
  ticket: u32 = 0;
  outcome: Outcome = Outcome.Neutral;
  slow: bool = false;
  nowMs: i64 = 0;
  /** Whether the record read by the last apply() was quiet, and whether it existed. */
  wasQuiet: bool = false;
  existed: bool = false;

  constructor(readonly config: OutlierBreakerConfig, readonly rec: BreakerRecord, readonly out: ArrayBuffer) { super(); }

  apply(cur: SharedValue | null): ArrayBuffer | null {
    const c = this.config;
    const rec = this.rec;
    rec.decode(cur !== null ? cur.data : null);
    this.existed = cur !== null;
    this.wasQuiet = rec.quiet(c, this.nowMs);
    const merged = rec.mergeSuccesses(changetype<Breaker>(this.breaker).pending, c, this.nowMs);
    if (this.withOutcome) {
      rec.complete(c, this.admitted, this.epoch, this.hasBody, this.ticket, this.outcome, this.slow, this.nowMs, randomF64());
    } else {
      rec.dirty = false;
      rec.transition = Transition.None;
    }
    // A fresh breaker's first counted outcome creates its record, so a success is stored like a failure.
    if (!rec.dirty && !merged) return null;
    rec.encodeInto(this.out);
    return this.out;
  }
}

export class OutlierBreakerStage extends Stage {
  /** Breakers this VM has met, by key (at most maxBreakers). */
  private readonly breakers: Map<string, Breaker> = new Map<string, Breaker>();
  private readonly known: Breaker[] = [];
  /** Which keys have a breaker (a shared record slot), shared by all workers. */
  private readonly directory: SharedDirectory;
  /** Scratch record and output buffer, reused by every update on this VM. */
  private readonly rec: BreakerRecord;
  private readonly out: ArrayBuffer;
  private readonly records: SharedRecords = new SharedRecords(FILTER_NAME);
  private readonly admission: AdmitUpdate;
  private readonly outcomeUpdate: OutcomeUpdate;
  /** `resilience_outlier_breaker_changes_total`: bumped after every write other workers must see at once. */
  private readonly changes: u32;
  /** The changes counter as this worker last read it (on request or tick). */
  lastGen: u64 = 0;
  private readonly untracked: Counter;
  readonly fallbackHeader: Str | null;
  private warnedNoHost: bool = false;
  private lastReplyState: State = State.Closed;
  private lastRetryAfter: i64 = -1;
  private lastReplyHeaders: HeaderPair[] = [];

  constructor(readonly config: OutlierBreakerConfig) {
    super();
    this.untracked = new Counter(series(OVERFLOW, "", "untracked_total"));
    this.changes = defineMetric(MetricType.Counter, METRIC_PREFIX + "outlier_breaker_changes_total");
    this.fallbackHeader = config.fallbackHeader.length > 0 ? new Str(config.fallbackHeader) : null;
    this.directory = new SharedDirectory(KEY_PREFIX + "breakers", <i32>config.maxBreakers, MAX_KEY_LENGTH, OVERFLOW,
      FILTER_NAME + ": " + config.maxBreakers.toString() + " breakers in use; later destinations share the \"" + OVERFLOW + "\" breaker");
    const rec = new BreakerRecord();
    const out = new ArrayBuffer(RECORD_SIZE);
    this.rec = rec;
    this.out = out;
    this.admission = new AdmitUpdate(config, rec, out);
    this.outcomeUpdate = new OutcomeUpdate(config, rec, out);
  }

  get name(): string { return FILTER_NAME; }

  /** Pending successes reach the shared window within one window bucket (and within a second). */
  tickPeriodMs(): u32 {
    const b = bucketMs(this.config);
    return <u32>(b < MAX_FLUSH_MS ? b : MAX_FLUSH_MS);
  }

  newStream(view: StreamView): StageStream | null {
    return new OutlierBreakerStream(this);
  }

  /** Reads the changes counter (one host call, nothing allocated): a view taken at another value may be stale. */
  readGeneration(): u64 {
    const g = getMetric(this.changes);
    this.lastGen = g;
    return g;
  }

  /**
   * Merges each breaker's pending successes into its record (CAS) or reads it, refreshing this worker's view, and keeps
   * each state gauge current, also for a breaker whose open time ran out with no request since.
   */
  onTick(nowMs: i64): void {
    const known = this.known;
    if (known.length == 0) return;
    const gen = this.readGeneration();
    const rec = this.rec;
    for (let i = 0; i < known.length; i++) {
      const b = unchecked(known[i]);
      if (b.pendingRejections != 0) {
        b.rejections.inc(b.pendingRejections);
        b.pendingRejections = 0;
      }
      let exists = false;
      if (b.pending.count != 0) {
        const u = this.outcomeUpdate;
        u.breaker = b;
        u.withOutcome = false;
        u.nowMs = nowMs;
        const r = this.records.update(b.key, u);
        if (r == Update.Exhausted) {
          b.closed = false;
          b.quiet = false;
          continue;
        }
        if (r == Update.Written) b.pending.clear();
        exists = r == Update.Written || u.existed;
      } else {
        const v = getSharedData(b.key);
        if (v === null) {
          b.closed = true;
          b.quiet = true;
          b.exists = false;
          b.viewEpoch = 0;
          b.viewGen = gen;
          continue;
        }
        rec.decode(v.data);
        exists = true;
      }
      this.see(b, exists, gen, nowMs);
      let s = rec.state;
      if (s == State.Open && nowMs >= rec.openUntilMs) s = State.HalfOpen;
      b.state.set(<u64>s);
    }
  }

  /** Takes the record in `rec` (read or written at changes-counter value `gen`) as b's view. */
  private see(b: Breaker, exists: bool, gen: u64, nowMs: i64): void {
    const rec = this.rec;
    b.closed = rec.state == State.Closed;
    b.quiet = rec.quiet(this.config, nowMs);
    b.exists = exists;
    b.viewEpoch = rec.epoch;
    b.viewGen = gen;
  }

  /** This VM's breaker of `key`, if it has met it already (no host call). */
  knownBreaker(key: string): Breaker | null {
    return this.breakers.has(key) ? this.breakers.get(key) : null;
  }

  /**
   * The breaker of a routed `key`: admitted to the shared registry on first sight; beyond the cap (or for a name that
   * may not have a slot) the one overflow breaker all such destinations share. Only names of routed requests get here,
   * and overflow names are not remembered, so clients cannot grow this VM's map.
   */
  breakerFor(key: string): Breaker {
    if (this.breakers.has(key)) return this.breakers.get(key);
    const slot = this.directory.slotOf(key);
    if (slot < 0) {
      this.untracked.inc();
      return this.overflow();
    }
    const b = new Breaker(key, slot);
    this.breakers.set(key, b);
    this.known.push(b);
    return b;
  }

  private overflow(): Breaker {
    if (this.breakers.has(OVERFLOW)) return this.breakers.get(OVERFLOW);
    const b = new Breaker(OVERFLOW, -1);
    this.breakers.set(OVERFLOW, b);
    this.known.push(b);
    return b;
  }

  /**
   * Decides a request. A closed view at the current changes-counter value passes with no further host call (every
   * transition bumps the counter); otherwise the record is read, and when the decision changes it (half-open
   * transition, probe slot) written back with CAS. Sets `rec` to the record (or view) the decision was made on.
   */
  admitRequest(b: Breaker, nowMs: i64, hasBody: bool): Admit {
    const gen = this.readGeneration();
    const rec = this.rec;
    if (b.closed && b.viewGen == gen) {
      rec.epoch = b.viewEpoch;
      rec.state = State.Closed;
      return Admit.Pass;
    }
    const v = getSharedData(b.key);
    if (v === null || recordState(v.data) == State.Closed) {
      rec.decode(v !== null ? v.data : null);
      this.see(b, v !== null, gen, nowMs);
      return Admit.Pass;
    }
    b.closed = false;
    b.quiet = false;
    if (recordState(v.data) == State.Open && nowMs < recordOpenUntilMs(v.data)) {
      rec.state = State.Open;
      rec.openUntilMs = recordOpenUntilMs(v.data);
      return Admit.Reject;
    }
    const u = this.admission;
    u.nowMs = nowMs;
    u.hasBody = hasBody;
    const r = this.records.updateFrom(b.key, v, u);
    if (r == Update.Exhausted) return Admit.Reject; // lost every race: treat like a full half-open
    if (r == Update.Written) this.transitioned(b, nowMs, false);
    return u.decision;
  }

  /**
   * Applies a finished call's outcome. A success admitted on a quiet view that still holds on this worker is counted
   * locally (no host call); anything else is read, applied with the pending successes, and CAS-written.
   */
  completeRequest(b: Breaker, admitted: Admit, epoch: u32, hasBody: bool, ticket: u32, outcome: Outcome, slow: bool, nowMs: i64): void {
    if (admitted == Admit.Pass && outcome == Outcome.Success && b.quiet && b.exists && b.viewEpoch == epoch && b.viewGen == this.lastGen) {
      b.pending.add(this.config, nowMs, epoch);
      return;
    }
    const u = this.outcomeUpdate;
    u.breaker = b;
    u.withOutcome = true;
    u.admitted = admitted;
    u.epoch = epoch;
    u.hasBody = hasBody;
    u.ticket = ticket;
    u.outcome = outcome;
    u.slow = slow;
    u.nowMs = nowMs;
    const r = this.records.update(b.key, u);
    if (r == Update.Exhausted) {
      b.closed = false;
      b.quiet = false;
      return;
    }
    if (r == Update.Written) {
      b.pending.clear();
      this.transitioned(b, nowMs, u.wasQuiet);
    }
    // The view as of this read or write; a bump of ours makes the next request look again (lastGen predates it).
    this.see(b, r == Update.Written || u.existed, this.lastGen, nowMs);
  }

  get record(): BreakerRecord { return this.rec; }

  /** The epoch of a breaker's shared record now (0 for a fresh one). */
  epochOf(b: Breaker): u32 {
    const v = getSharedData(b.key);
    return v !== null ? recordEpoch(v.data) : 0;
  }

  /** The local reply's headers; the last list is reused while state and seconds stay the same. */
  replyHeaders(state: State, retryAfter: i64): HeaderPair[] {
    if (state != this.lastReplyState || retryAfter != this.lastRetryAfter) {
      this.lastReplyState = state;
      this.lastRetryAfter = retryAfter;
      this.lastReplyHeaders = [
        new HeaderPair(H_RETRY_AFTER, retryAfter.toString()),
        new HeaderPair(this.config.stateHeader, STATE_NAMES[<i32>state]),
      ];
    }
    return this.lastReplyHeaders;
  }

  /** perHost where no host is known on request (the downstream chain): said once per VM, requests pass. */
  warnNoHost(): void {
    if (this.warnedNoHost) return;
    this.warnedNoHost = true;
    LOG.warn("perHost is set but upstream.address is unknown on request headers: requests pass " +
      "unguarded; run the filter in the cluster's upstream http_filters");
  }

  /**
   * After a write: metrics and one log line for a transition (only its writer reports it), and a bump of the changes
   * counter when other workers' views must not hold any more (a transition, or the record stopped being quiet).
   */
  private transitioned(b: Breaker, nowMs: i64, wasQuiet: bool): void {
    const rec = this.rec;
    const t = rec.transition;
    if (t == Transition.None) {
      if (wasQuiet && !rec.quiet(this.config, nowMs)) incrementMetric(this.changes, 1);
      return;
    }
    incrementMetric(this.changes, 1);
    b.state.set(<u64>rec.state);
    unchecked(b.transitions[<i32>rec.state]).inc();
    if (t == Transition.Opened || t == Transition.Reopened) b.opens.inc();
    if (LOG.on(LogLevel.Info)) {
      let line = b.name + " -> " + STATE_NAMES[<i32>rec.state];
      if (rec.state == State.Open) {
        line += " (" + TRIP_NAMES[<i32>rec.lastTrip] + ") for " + (rec.openUntilMs - nowMs).toString() + " ms, open #" + (rec.reopens + 1).toString();
      }
      LOG.info(line);
    }
  }
}

class OutlierBreakerStream extends StageStream {
  private breaker: Breaker | null = null;
  private admitted: Admit = Admit.Reject;
  private epoch: u32 = 0;
  /** A probe's pool (the request has a body) and slot generation, handed back with its outcome. */
  private hasBody: bool = false;
  private ticket: u32 = 0;
  private startMs: i64 = 0;
  /** Time to response headers; -1 until they arrive. */
  private elapsedMs: i64 = -1;
  /** perHost with the host known on request: a cluster's upstream filter chain, where Envoy reports no completion. */
  private upstreamChain: bool = false;
  private finished: bool = false;

  constructor(readonly stage: OutlierBreakerStage) { super(); }

  /** Every field is a value, a string or the stage's own object: copied from a stream that never served a request. */
  renew(view: StreamView): bool { return renewFrom<OutlierBreakerStream>(this, this.stage.unusedStream(view)); }

  onRequest(view: StreamView, nowMs: i64): bool {
    const stage = this.stage;
    const c = stage.config;
    const fallback = stage.fallbackHeader;
    this.startMs = nowMs;
    // A client must not pick the fallback route itself.
    if (fallback !== null && view.requestHeader(fallback) !== null) view.removeRoutingHeader(fallback);
    let key = c.destination.of(view);
    // No state for a request no route sends anywhere (Envoy answers it 404): made-up names cannot squat breakers.
    let known = stage.knownBreaker(key);
    if (known === null && (c.destination.byCluster ? key.length == 0 : view.clusterName().length == 0)) return true;
    if (key.length == 0) key = "unknown";
    if (c.perHost) {
      // The host is known on request only in a cluster's upstream filter chain (the router picked it already).
      const host = view.upstreamAddress();
      if (host.length == 0) {
        stage.warnNoHost();
        return true;
      }
      key += "@" + host;
      this.upstreamChain = true;
      known = null;
    }
    const b = known !== null ? known : stage.breakerFor(key);
    this.breaker = b;
    this.startMs = nowMs;
    this.hasBody = view.requestHasBody;
    const decision = stage.admitRequest(b, nowMs, this.hasBody);
    const rec = stage.record;
    this.epoch = rec.epoch;
    this.ticket = rec.ticket;
    this.admitted = decision;
    if (decision == Admit.Probe) b.probes.inc();
    if (decision != Admit.Reject) return true;
    const state = rec.state;
    if (fallback !== null && !this.upstreamChain) {
      view.setRoutingHeader(fallback, STATE_NAMES[<i32>state]);
      b.fallbacks.inc();
      return true;
    }
    b.pendingRejections++;
    view.reply(503, DETAILS[<i32>state], BODY[<i32>state], stage.replyHeaders(state, retryAfterSeconds(state, rec.openUntilMs, nowMs)));
    return false;
  }

  /** The clock on response headers only where the answer's time decides: a probe, the slow-call rule, the upstream chain. */
  clockOnResponse(): bool {
    return this.admitted != Admit.Reject && this.breaker !== null &&
      (this.upstreamChain || this.admitted == Admit.Probe || this.stage.config.slowCallRateThreshold != 0);
  }

  onResponse(view: StreamView, nowMs: i64): void {
    if (this.admitted == Admit.Reject) return;
    // Without a reading of its own (clockOnResponse false) the elapsed time is taken at completion instead.
    if (this.clockOnResponse()) this.elapsedMs = nowMs - this.startMs;
    if (!this.upstreamChain) {
      if (this.admitted == Admit.Probe) this.decideProbe(view, nowMs);
      return;
    }
    // Upstream chain: this is the host's answer (response.code is not set yet here, :status is).
    const code = view.responseStatus();
    this.finish(verdict(classifyCause(code, 0, 1, -1, 0), code, this.stage.config), nowMs);
  }

  onComplete(view: StreamView, nowMs: i64): void {
    // A re-routed request whose cluster was not known on request: the view learns where such requests go, and its
    // outcome counts for that cluster's breaker (only its admission was not checked).
    if (this.breaker === null && view.routeChanged) this.bindLate(view);
    // Not guarded, the breaker's own answers, and re-routed (fallback) requests say nothing about this upstream.
    if (this.breaker === null || this.admitted == Admit.Reject || this.finished) return;
    this.finish(verdict(outcomeOf(view), view.responseCode(), this.stage.config), nowMs);
  }

  /** Binds a re-routed request to its breaker once its cluster is known, at completion (unrouted: none). */
  private bindLate(view: StreamView): void {
    const c = this.stage.config;
    if (view.finalClusterName().length == 0 || c.perHost) return;
    let key = c.destination.of(view);
    if (key.length == 0) key = "unknown";
    const b = this.stage.breakerFor(key);
    this.breaker = b;
    this.admitted = Admit.Pass;
    this.epoch = this.stage.epochOf(b);
  }

  onDone(view: StreamView): void {
    // Upstream chain, no response headers: the host reset, refused or timed out (or the client gave up).
    if (!this.upstreamChain || this.breaker === null || this.admitted == Admit.Reject || this.finished) return;
    const anyFailure = FailOn.RESET | FailOn.CONNECT_FAILURE | FailOn.TIMEOUT;
    this.finish((this.stage.config.failOn & anyFailure) != 0 ? Outcome.Failure : Outcome.Neutral, hostNowMs());
  }

  /**
   * A probe is decided by the answer's status line, so a response body the client reads slowly holds no slot. Flags
   * are read here, not through the view: they may still grow (DC, UR) before the other stages' completion.
   */
  private decideProbe(view: StreamView, nowMs: i64): void {
    const code = view.responseStatus();
    const cause = classifyCause(code, getPropertyI64(P_RESPONSE_FLAGS, 0), view.attemptCount(), this.elapsedMs * 1_000_000, view.callerBudget());
    this.finish(verdict(cause, code, this.stage.config), nowMs);
  }

  private finish(outcome: Outcome, nowMs: i64): void {
    this.finished = true;
    if (outcome == Outcome.Neutral && this.admitted == Admit.Pass) return;
    const c = this.stage.config;
    const elapsed = this.elapsedMs >= 0 ? this.elapsedMs : nowMs - this.startMs;
    this.stage.completeRequest(changetype<Breaker>(this.breaker), this.admitted, this.epoch, this.hasBody, this.ticket, outcome, isSlow(elapsed, c), nowMs);
  }
}

/**
 * What a finished call says to the breaker (causes: filters/common/outcome.ts). Caller-caused causes are neutral; an
 * upstream failure counts when failOn names it, else by its code, like an answer.
 */
function verdict(cause: Cause, code: i64, c: OutlierBreakerConfig): Outcome {
  if (isNeutral(cause)) return Outcome.Neutral;
  const on = c.failOn;
  if (cause == Cause.UpstreamReset && (on & FailOn.RESET) != 0) return Outcome.Failure;
  if (cause == Cause.UpstreamConnectFailure && (on & FailOn.CONNECT_FAILURE) != 0) return Outcome.Failure;
  if (cause == Cause.UpstreamTimeout && (on & FailOn.TIMEOUT) != 0) return Outcome.Failure;
  if (code <= 0) return Outcome.Neutral;
  if ((on & FailOn.SERVER_ERROR) != 0 && code >= 500 && code <= 599) return Outcome.Failure;
  if ((on & FailOn.GATEWAY_ERROR) != 0 && code >= 502 && code <= 504) return Outcome.Failure;
  const codes = c.failureStatusCodes;
  for (let i = 0; i < codes.length; i++) {
    if (<i64>unchecked(codes[i]) == code) return Outcome.Failure;
  }
  return Outcome.Success;
}

/** The stage from its configuration, or null (the reader's error names the field). */
export function buildOutlierBreaker(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new OutlierBreakerStage(c) : null;
}
