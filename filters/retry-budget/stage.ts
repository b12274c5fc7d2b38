/**
 * retry-budget as a stage: per request, how many retries Envoy's router may make (x-envoy-max-retries, with
 * x-envoy-retry-on and optionally a per-try timeout); at completion, the retries actually made
 * (upstream.request_attempt_count - 1) and the attempts' outcomes go into the destination's window.
 *
 * State per destination: `cache` (the shared window as of this worker's last sync) + `delta` (this worker's counts
 * since). Decisions read cache + delta with no host call. A sync (tick every syncIntervalMs, or at once when a
 * completion spent or gave back a whole retry more than reserved) merges the delta into shared data with CAS and reads
 * the other workers' counts back. When a grant's expected retries reach SHARED_RESERVATION_MIN (a failing destination) the
 * grant itself is a CAS on shared data, so the workers cannot both spend the same retries.
 */
import { Stage, StageStream, renewFrom } from "../../assembly/stage";
import { StreamView } from "../../assembly/stream";
import { Counter, Gauge, taggedName } from "../../assembly/metrics";
import { SharedDirectory } from "../common/directory";
import { Str, getSharedData, SharedValue } from "../../assembly/host";
import { RecordUpdate, SharedRecords, Update } from "../../assembly/shared";
import { METRIC_PREFIX } from "../../assembly/context";
import { ConfigReader } from "../../assembly/config";
import { RetryBudgetConfig, FILTER_NAME, MAX_RETRIES_CAP, parseConfig } from "./config";
import {
  BUCKETS, RETRY_UNIT, BudgetWindow, BudgetPolicy, Totals, OVERFLOW, MAX_NAME_LENGTH, ENCODED_BYTES, decodeWindow,
  encodeWindow, failedAttempts, verdictOf, okAttempts, retryDenied,
} from "./core";
import { outcomeOf } from "../common/outcome";

/** A grant whose expected retries reach 0.1 is reserved in shared data at once (2 host calls), not at the next sync. */
// @ts-ignore: decorator
@inline export const SHARED_RESERVATION_MIN: i64 = RETRY_UNIT / 10;
/** Before giving a request fewer retries than it wants, re-read the shared window if this worker's copy is this old. */
// @ts-ignore: decorator
@inline export const REFRESH_BEFORE_DENY_MS: i64 = 10;

const KEY_PREFIX = "resilience." + FILTER_NAME + ".";
const H_RETRY_ON = new Str("x-envoy-retry-on");
const H_MAX_RETRIES = new Str("x-envoy-max-retries");
const H_PER_TRY_TIMEOUT = new Str("x-envoy-upstream-rq-per-try-timeout-ms");

/** "0".."10": the x-envoy-max-retries values, made once. */
const COUNT_TEXT: string[] = [];
for (let i: u32 = 0; i <= MAX_RETRIES_CAP; i++) COUNT_TEXT.push(i.toString());

/** One destination's budget on this VM: the shared window's last copy, this worker's unshared counts, metrics. */
class DestinationBudget {
  readonly cache: BudgetWindow;
  readonly delta: BudgetWindow;
  /** When the cache was last read from shared data (0: never). */
  readAtMs: i64 = 0;
  lastUsedMs: i64 = 0;
  /** Counts not yet added to the counters: they are added on the tick, not per request. */
  pendingRequests: i64 = 0;
  pendingRetries: i64 = 0;
  pendingDenied: i64 = 0;
  readonly requests: Counter;
  readonly retries: Counter;
  readonly denied: Counter;
  readonly available: Gauge;
  readonly ratio: Gauge;

  constructor(readonly name: string, readonly key: Str, bucketMs: i64) {
    this.cache = new BudgetWindow(bucketMs);
    this.delta = new BudgetWindow(bucketMs);
    const labels = ["destination_service"];
    const values = [name];
    const prefix = METRIC_PREFIX + "retry_budget_";
    this.requests = new Counter(taggedName(labels, values, prefix + "requests_total"));
    this.retries = new Counter(taggedName(labels, values, prefix + "retries_total"));
    this.denied = new Counter(taggedName(labels, values, prefix + "retries_denied_total"));
    this.available = new Gauge(taggedName(labels, values, prefix + "available_retries"));
    this.ratio = new Gauge(taggedName(labels, values, prefix + "effective_ratio_permille"));
  }

  /** Adds the pending counts to the counters (host calls only for non-zero ones). */
  publishCounts(): void {
    if (this.pendingRequests != 0) this.requests.inc(this.pendingRequests);
    if (this.pendingRetries != 0) this.retries.inc(this.pendingRetries);
    if (this.pendingDenied != 0) this.denied.inc(this.pendingDenied);
    this.pendingRequests = 0;
    this.pendingRetries = 0;
    this.pendingDenied = 0;
  }
}

/** A sync: this worker's delta merged into the shared window (nothing written when there is none). */
class WindowMerge extends RecordUpdate {
  d: DestinationBudget | null = null;
  nowMs: i64 = 0;

  constructor(readonly buffer: ArrayBuffer) { super(); }

  apply(cur: SharedValue | null): ArrayBuffer | null {
    const d = changetype<DestinationBudget>(this.d);
    loadWindow(d, cur, this.nowMs);
    if (d.delta.empty) return null;
    d.cache.mergeFrom(d.delta);
    return encodeWindow(d.cache, this.buffer);
  }
}

/** A grant decided on the shared window as read, its reservation written with the delta in the same CAS write. */
class Reservation extends RecordUpdate {
  d: DestinationBudget | null = null;
  nowMs: i64 = 0;
  epoch: i64 = 0;
  wanted: u32 = 0;
  granted: u32 = 0;
  reserved: i64 = 0;

  constructor(readonly policy: BudgetPolicy, readonly scratch: Totals, readonly buffer: ArrayBuffer) { super(); }

  apply(cur: SharedValue | null): ArrayBuffer | null {
    const d = changetype<DestinationBudget>(this.d);
    loadWindow(d, cur, this.nowMs);
    d.cache.mergeFrom(d.delta);
    const t = this.scratch.reset();
    d.cache.addTo(t, this.nowMs);
    this.granted = this.policy.grant(t, this.wanted);
    this.reserved = this.policy.reservation(t, this.granted);
    d.cache.charge(this.epoch, this.nowMs, this.reserved);
    return encodeWindow(d.cache, this.buffer);
  }
}

/** Takes `cur` (a read of d's key) as d's cache (empty when the key was never written). */
function loadWindow(d: DestinationBudget, cur: SharedValue | null, nowMs: i64): void {
  if (cur === null) d.cache.clear();
  else decodeWindow(cur.data, d.cache);
  d.readAtMs = nowMs;
}

export class RetryBudgetStage extends Stage {
  readonly policy: BudgetPolicy;
  readonly bucketMs: i64;
  private readonly windowMs: i64;
  private readonly staleMs: i64;
  private readonly budgets: Map<string, DestinationBudget> = new Map<string, DestinationBudget>();
  private readonly list: DestinationBudget[] = [];
  /** Which destinations have a budget slot of their own, shared by all workers. */
  private readonly directory: SharedDirectory;
  private readonly scratch: Totals;
  private readonly buffer: ArrayBuffer;
  private readonly records: SharedRecords = new SharedRecords(FILTER_NAME);
  private readonly merge: WindowMerge;
  private readonly reservation: Reservation;
  readonly perTryText: string;
  /** Result of the last grant: the retries granted and the millionths of a retry reserved. */
  grantedOut: u32 = 0;
  reservedOut: i64 = 0;

  constructor(readonly config: RetryBudgetConfig) {
    super();
    const bucketMs = <i64>config.windowSeconds * 1000 / <i64>BUCKETS;
    this.bucketMs = bucketMs;
    this.windowMs = <i64>config.windowSeconds * 1000;
    this.staleMs = <i64>config.syncIntervalMs * 2;
    this.perTryText = config.perTryTimeoutMs.toString();
    const policy = new BudgetPolicy(config.retryRatio, config.minRetriesPerSecond, bucketMs, config.adaptive);
    const scratch = new Totals();
    const buffer = new ArrayBuffer(ENCODED_BYTES);
    this.policy = policy;
    this.scratch = scratch;
    this.buffer = buffer;
    this.merge = new WindowMerge(buffer);
    this.reservation = new Reservation(policy, scratch, buffer);
    this.directory = new SharedDirectory(KEY_PREFIX + "destinations", <i32>config.maxDestinations, MAX_NAME_LENGTH, OVERFLOW,
      FILTER_NAME + ": " + config.maxDestinations.toString() + " destinations have budgets; later ones share the \"" + OVERFLOW + "\" budget");
  }

  get name(): string { return FILTER_NAME; }

  tickPeriodMs(): u32 { return this.config.syncIntervalMs; }

  newStream(view: StreamView): StageStream | null {
    return new RetryBudgetStream(this);
  }

  /** This VM's budget of `name` if it has met it already (no host call). */
  knownBudget(name: string): DestinationBudget | null {
    return this.budgets.has(name) ? this.budgets.get(name) : null;
  }

  /**
   * This VM's budget for a routed destination: its own slot while the directory has room, else the overflow budget.
   * Overflow names are not remembered, so clients cannot grow this VM's map.
   */
  budgetFor(name: string): DestinationBudget {
    if (this.budgets.has(name)) return this.budgets.get(name);
    const slot = this.directory.slotOf(name);
    if (slot >= 0) return this.remember(name, KEY_PREFIX + "budget." + slot.toString());
    if (this.budgets.has(OVERFLOW)) return this.budgets.get(OVERFLOW);
    return this.remember(OVERFLOW, KEY_PREFIX + "budget." + OVERFLOW);
  }

  /** Sums of the destination's window as this worker sees it (shared copy + own unshared counts). */
  totals(d: DestinationBudget, nowMs: i64): Totals {
    const t = this.scratch.reset();
    d.cache.addTo(t, nowMs);
    return d.delta.addTo(t, nowMs);
  }

  /** A new request's grant: at most `wanted`, what the budget holds; sets grantedOut and reservedOut. */
  grant(d: DestinationBudget, nowMs: i64, wanted: u32): void {
    if (nowMs - d.readAtMs >= this.staleMs) this.sync(d, nowMs);
    d.lastUsedMs = nowMs;
    d.delta.deposit(nowMs);
    let t = this.totals(d, nowMs);
    let k = this.policy.grant(t, wanted);
    if (k < wanted && nowMs - d.readAtMs >= REFRESH_BEFORE_DENY_MS) {
      // The other workers may have given reservations back since: look before refusing (a read, no write).
      this.read(d, nowMs);
      t = this.totals(d, nowMs);
      k = this.policy.grant(t, wanted);
    }
    const r = this.policy.reservation(t, k);
    if (r >= SHARED_RESERVATION_MIN) {
      this.reserveShared(d, nowMs, wanted);
      return;
    }
    d.delta.charge(d.delta.epochAt(nowMs), nowMs, r);
    this.grantedOut = k;
    this.reservedOut = r;
  }

  /** The grant decided on the shared window itself and reserved there in the same CAS write. */
  private reserveShared(d: DestinationBudget, nowMs: i64, wanted: u32): void {
    const u = this.reservation;
    u.d = d;
    u.nowMs = nowMs;
    u.epoch = d.cache.epochAt(nowMs);
    u.wanted = wanted;
    if (this.records.update(d.key, u) == Update.Written) {
      d.delta.clear();
      this.grantedOut = u.granted;
      this.reservedOut = u.reserved;
      return;
    }
    // Still contended: decide on a fresh copy and keep the reservation local until the next sync.
    this.read(d, nowMs);
    const t = this.totals(d, nowMs);
    const k = this.policy.grant(t, wanted);
    const r = this.policy.reservation(t, k);
    d.delta.charge(u.epoch, nowMs, r);
    this.grantedOut = k;
    this.reservedOut = r;
  }

  /** Merges this worker's counts into the shared window (CAS) and reads the other workers' counts back. */
  sync(d: DestinationBudget, nowMs: i64): void {
    const u = this.merge;
    u.d = d;
    u.nowMs = nowMs;
    const r = this.records.update(d.key, u);
    if (r == Update.Written) d.delta.clear();
    else if (r == Update.Exhausted) this.read(d, nowMs); // the cache must not hold the delta that is still unshared
  }

  /** Loads the shared window into the cache (empty when the key was never written). */
  private read(d: DestinationBudget, nowMs: i64): void {
    loadWindow(d, getSharedData(d.key), nowMs);
  }

  onTick(nowMs: i64): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const d = unchecked(list[i]);
      // Destinations idle for a whole window have nothing left to share or show.
      if (d.delta.empty && d.pendingRequests == 0 && nowMs - d.lastUsedMs > this.windowMs + this.staleMs) continue;
      d.publishCounts();
      this.sync(d, nowMs);
      const t = this.totals(d, nowMs);
      const a = this.policy.available(t);
      d.available.set(a > 0.0 ? <u64>Math.floor(a) : 0);
      d.ratio.set(<u64>Math.round(this.policy.effectiveRatio(t) * 1000.0));
    }
  }

  private remember(name: string, key: string): DestinationBudget {
    const d = new DestinationBudget(name, new Str(key), this.bucketMs);
    this.budgets.set(name, d);
    this.list.push(d);
    return d;
  }
}

class RetryBudgetStream extends StageStream {
  /** Nothing of this stage happens on response headers: no clock reading there for it. */
  clockOnResponse(): bool { return false; }

  private budget: DestinationBudget | null = null;
  private wanted: u32 = 0;
  private granted: u32 = 0;
  private reserved: i64 = 0;
  private epoch: i64 = 0;

  constructor(readonly stage: RetryBudgetStage) { super(); }

  /** Every field is a value, a string or the stage's own object: copied from a stream that never served a request. */
  renew(view: StreamView): bool { return renewFrom<RetryBudgetStream>(this, this.stage.unusedStream(view)); }

  onRequest(view: StreamView, nowMs: i64): bool {
    const stage = this.stage;
    const c = stage.config;
    const name = c.destination.of(view);
    let d = stage.knownBudget(name);
    if (d === null) {
      // No budget for a request no route sends anywhere (Envoy answers it 404): made-up names cannot squat slots.
      if (c.destination.byCluster ? name.length == 0 : view.clusterName().length == 0) return true;
      d = stage.budgetFor(name.length > 0 ? name : "unknown");
    }
    let wanted = c.maxRetries;
    let clientRetryOn: string | null = null;
    let clientPerTry: string | null = null;
    if (c.trustClientHeaders) {
      const asked = parseCount(view.requestHeader(H_MAX_RETRIES));
      if (asked >= 0) wanted = <u32>asked;
      clientRetryOn = view.requestHeader(H_RETRY_ON);
      clientPerTry = view.requestHeader(H_PER_TRY_TIMEOUT);
    }
    stage.grant(d, nowMs, wanted);
    const k = stage.grantedOut;
    this.budget = d;
    this.wanted = wanted;
    this.granted = k;
    this.reserved = stage.reservedOut;
    this.epoch = d.delta.epochAt(nowMs);
    // The router consumes x-envoy-max-retries, so a denial is published for the access log; a full grant costs nothing.
    if (k < wanted) view.setRetriesGranted(k, wanted);

    // x-envoy-max-retries always carries the grant: with a retry-on policy (the route's or a header) it is the count.
    if (k > 0 && clientRetryOn === null) {
      if (c.retryOn.length > 0) view.setRequestHeader(H_RETRY_ON, c.retryOn);
      else if (!c.trustClientHeaders) view.removeRequestHeader(H_RETRY_ON);
    }
    view.setRequestHeader(H_MAX_RETRIES, unchecked(COUNT_TEXT[k]));
    if (clientPerTry === null) {
      if (c.perTryTimeoutMs > 0) view.setRequestHeader(H_PER_TRY_TIMEOUT, stage.perTryText);
      else if (!c.trustClientHeaders && view.requestHeader(H_PER_TRY_TIMEOUT) !== null && view.callerBudget() == 0) {
        // A client's per-try timeout goes; the deadline's (an earlier stage or filter that bounded it by the caller's
        // budget, its word published with the header) stays.
        view.removeRequestHeader(H_PER_TRY_TIMEOUT);
      }
    }
    return true;
  }

  onComplete(view: StreamView, nowMs: i64): void {
    let d = this.budget;
    if (d === null) {
      // A re-routed request whose cluster was not known on request (no grant was set: the route's policy applied):
      // the view learns where such requests go, and its deposit and attempts count for that cluster's budget.
      if (!view.routeChanged || view.finalClusterName().length == 0) return;
      const name = this.stage.config.destination.of(view);
      d = this.stage.budgetFor(name.length > 0 ? name : "unknown");
      d.delta.deposit(nowMs);
      this.epoch = d.delta.epochAt(nowMs);
    }
    const attempts = view.attemptCount();
    // Caller-caused outcomes (its own short deadline, a disconnect) never lower the success ratio.
    const v = verdictOf(outcomeOf(view), view.responseCode());
    const made = attempts > 1 ? attempts - 1 : 0;
    d.delta.recordAttempts(nowMs, okAttempts(attempts, v), failedAttempts(attempts, v));
    // The reservation becomes what was actually spent, in the bucket where it was granted.
    const correction = made * RETRY_UNIT - this.reserved;
    d.delta.charge(this.epoch, nowMs, correction);
    d.pendingRequests++;
    d.pendingRetries += made;
    if (retryDenied(this.granted, this.wanted, attempts, v)) d.pendingDenied++;
    // A whole retry more than reserved (an outage beginning) or given back (the other workers may be refusing on it):
    // tell the other workers now rather than at the next tick.
    if (correction >= RETRY_UNIT || correction <= -RETRY_UNIT) this.stage.sync(d, nowMs);
  }
}

/** The stage from its configuration, or null (the reader's error names the field). */
export function buildRetryBudget(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new RetryBudgetStage(c) : null;
}

/** A client's x-envoy-max-retries as a count 0..MAX_RETRIES_CAP, or -1 when absent or not such a number. */
function parseCount(v: string | null): i32 {
  if (v === null || v.length == 0 || v.length > 2) return -1;
  let n: i32 = 0;
  for (let i = 0; i < v.length; i++) {
    const ch = v.charCodeAt(i);
    if (ch < 0x30 || ch > 0x39) return -1;
    n = n * 10 + (ch - 0x30);
  }
  return n <= <i32>MAX_RETRIES_CAP ? n : -1;
}
