/**
 * Host-free core of the outlier breaker: the closed/open/half-open state machine over a sliding window, and the fixed
 * binary layout of one breaker's shared record (outcomes arrive classified: filters/common/outcome.ts and the stage's
 * verdict). Time (`nowMs`) and randomness (`u`, uniform in [0, 1)) are arguments, so every transition is exact under a
 * fake clock.
 *
 *            trip rule met                open time over: first request
 *   CLOSED ─────────────────▶ OPEN ─────────────────────────────────▶ HALF-OPEN
 *     ▲                        ▲  (503 + retry-after, or fallback)       │  admits halfOpenProbes at once
 *     │                        └──── a probe fails (open time doubles) ──┤
 *     └────────────── halfOpenSuccesses probes succeed ──────────────────┘
 *
 * Every transition bumps the record's epoch: an outcome is applied only to the epoch it was admitted in, so a late
 * answer from before a transition never moves the machine.
 *
 * Half-open probe slots come in two pools, so a client cannot hog them: a request that ended with its headers (no
 * body) waits only on the upstream from admission on, and may take a slot whenever fewer than halfOpenProbes such
 * probes are out; a request with a body (whose sender may withhold it) takes a slot only while both pools together hold
 * fewer than halfOpenProbes. A probe gives its slot back at the upstream's answer (response headers). A pool whose
 * newest probe is older than probeTimeoutMs is presumed lost: its slots are reclaimed under a new slot generation (a
 * late give-back of the old generation frees nothing), but the epoch stays, so a late answer still counts.
 */
import { OutlierBreakerConfig } from "./config";

export enum State {
  Closed = 0,
  Open = 1,
  HalfOpen = 2,
}

/** Metric label / header value of each State. */
export const STATE_NAMES: string[] = ["closed", "open", "half-open"];

/** What one finished call says about the upstream. */
export enum Outcome {
  /** Says nothing (never reached the upstream, client went away): not counted. */
  Neutral = 0,
  Success = 1,
  Failure = 2,
}

/** What a request may do, decided on request headers. */
export enum Admit {
  Pass = 0,
  Probe = 1,
  Reject = 2,
}

/** The transition a call of admit() or complete() made (Transition.None: none). */
export enum Transition {
  None = 0,
  Opened = 1,
  HalfOpened = 2,
  Closed = 3,
  Reopened = 4,
}

/** Which rule opened the breaker (kept in the record for logs and tests). */
export enum Trip {
  None = 0,
  ConsecutiveFailures = 1,
  FailureRate = 2,
  SlowCallRate = 3,
  ProbeFailed = 4,
}

export const TRIP_NAMES: string[] = ["none", "consecutive-failures", "failure-rate", "slow-call-rate", "probe-failed"];

/** A call is slow when its response headers took longer than slowCallMs. */
@inline export function isSlow(elapsedMs: i64, c: OutlierBreakerConfig): bool {
  return elapsedMs > <i64>c.slowCallMs;
}

/** Buckets of the sliding window: it covers the last BUCKETS buckets of windowSeconds / BUCKETS each. */
// @ts-ignore: decorator
@inline export const BUCKETS: i32 = 10;

/** Width of one window bucket in ms. */
@inline export function bucketMs(c: OutlierBreakerConfig): i64 {
  return <i64>c.windowSeconds * 1000 / BUCKETS;
}

/**
 * Open time for the n-th consecutive opening (n = 0 when opened from closed): d = min(baseOpenMs x 2^n, maxOpenMs),
 * then jittered down by up to `jitter` of it: d - floor(d x jitter x u), never below 1 ms.
 */
export function openDurationMs(c: OutlierBreakerConfig, reopens: u32, u: f64): i64 {
  const max = <i64>c.maxOpenMs;
  let d = <i64>c.baseOpenMs;
  for (let i: u32 = 0; i < reopens && d < max; i++) d <<= 1;
  if (d > max) d = max;
  d -= <i64>Math.floor(<f64>d * c.jitter * u);
  return d < 1 ? 1 : d;
}

// ---------------------------------------------------------------- the shared record

/**
 * One breaker's state as stored in shared data (little-endian, fixed size):
 *
 *   0 magic u32 | 4 state u32 | 8 epoch u32 | 12 consecutive u32 | 16 reopens u32 | 20 probesInFlight u32
 *   24 probeSuccesses u32 | 28 lastTrip u32 | 32 openUntilMs i64 | 40 lastProbeMs i64
 *   48 bodyProbesInFlight u32 | 52 probeGen u32 | 56 bodyProbeGen u32 | 60 unused u32 | 64 lastBodyProbeMs i64
 *   72 + 24 x i: bucket i = { index i64 (nowMs / bucketMs), total u32, failed u32, slow u32, unused u32 }
 * (probesInFlight / probeGen / lastProbeMs: the pool of body-less probes; body*: the pool of probes with a body.)
 */
// @ts-ignore: decorator
@inline const MAGIC: u32 = 0x4f420002; // "OB", layout 2
// @ts-ignore: decorator
@inline const HEADER_SIZE: i32 = 72;
// @ts-ignore: decorator
@inline const BUCKET_SIZE: i32 = 24;
// @ts-ignore: decorator
@inline export const RECORD_SIZE: i32 = HEADER_SIZE + BUCKETS * BUCKET_SIZE;

/** True when `buf` holds a record of the current layout (anything else reads as a fresh closed breaker). */
export function isRecord(buf: ArrayBuffer): bool {
  return buf.byteLength == RECORD_SIZE && load<u32>(changetype<usize>(buf)) == MAGIC;
}

/** The state stored in a record, without decoding the rest (the per-request read). */
export function recordState(buf: ArrayBuffer): State {
  return isRecord(buf) ? <State>load<u32>(changetype<usize>(buf), 4) : State.Closed;
}

export function recordEpoch(buf: ArrayBuffer): u32 {
  return isRecord(buf) ? load<u32>(changetype<usize>(buf), 8) : 0;
}

export function recordOpenUntilMs(buf: ArrayBuffer): i64 {
  return isRecord(buf) ? load<i64>(changetype<usize>(buf), 32) : 0;
}

/** Seconds a client should wait: the open time left, rounded up; 1 while half-open. */
export function retryAfterSeconds(state: State, openUntilMs: i64, nowMs: i64): i64 {
  if (state != State.Open) return 1;
  const left = openUntilMs - nowMs;
  return left <= 1000 ? 1 : (left + 999) / 1000;
}

/** A decoded record plus the state machine over it; reused (decode/encode) so the hot path allocates nothing. */
@final
export class BreakerRecord {
  state: State = State.Closed;
  epoch: u32 = 0;
  consecutive: u32 = 0;
  reopens: u32 = 0;
  probesInFlight: u32 = 0;
  probeSuccesses: u32 = 0;
  lastTrip: Trip = Trip.None;
  openUntilMs: i64 = 0;
  lastProbeMs: i64 = 0;
  bodyProbesInFlight: u32 = 0;
  probeGen: u32 = 0;
  bodyProbeGen: u32 = 0;
  lastBodyProbeMs: i64 = 0;
  /** Set by admit() for a probe: its slot's generation (of the pool `hasBody` chose), handed back to complete(). */
  ticket: u32 = 0;
  readonly bucketIndex: StaticArray<i64> = new StaticArray<i64>(BUCKETS);
  readonly bucketTotal: StaticArray<u32> = new StaticArray<u32>(BUCKETS);
  readonly bucketFailed: StaticArray<u32> = new StaticArray<u32>(BUCKETS);
  readonly bucketSlow: StaticArray<u32> = new StaticArray<u32>(BUCKETS);
  /** Set by admit()/complete(): the record changed and must be written back. */
  dirty: bool = false;
  /** Set by admit()/complete(): the transition made, if any. */
  transition: Transition = Transition.None;
  /** Window sums of the last sum() call. */
  total: u32 = 0;
  failed: u32 = 0;
  slow: u32 = 0;

  /** A fresh closed breaker. */
  reset(): void {
    this.state = State.Closed;
    this.epoch = 0;
    this.consecutive = 0;
    this.reopens = 0;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    this.lastTrip = Trip.None;
    this.openUntilMs = 0;
    this.lastProbeMs = 0;
    this.bodyProbesInFlight = 0;
    this.probeGen = 0;
    this.bodyProbeGen = 0;
    this.lastBodyProbeMs = 0;
    this.clearWindow();
  }

  /** Reads `buf` (a record, or anything else: then a fresh closed breaker). */
  decode(buf: ArrayBuffer | null): void {
    if (buf === null || !isRecord(buf)) {
      this.reset();
      return;
    }
    const p = changetype<usize>(buf);
    this.state = <State>load<u32>(p, 4);
    this.epoch = load<u32>(p, 8);
    this.consecutive = load<u32>(p, 12);
    this.reopens = load<u32>(p, 16);
    this.probesInFlight = load<u32>(p, 20);
    this.probeSuccesses = load<u32>(p, 24);
    this.lastTrip = <Trip>load<u32>(p, 28);
    this.openUntilMs = load<i64>(p, 32);
    this.lastProbeMs = load<i64>(p, 40);
    this.bodyProbesInFlight = load<u32>(p, 48);
    this.probeGen = load<u32>(p, 52);
    this.bodyProbeGen = load<u32>(p, 56);
    this.lastBodyProbeMs = load<i64>(p, 64);
    for (let i = 0; i < BUCKETS; i++) {
      const b = p + <usize>(HEADER_SIZE + i * BUCKET_SIZE);
      unchecked(this.bucketIndex[i] = load<i64>(b));
      unchecked(this.bucketTotal[i] = load<u32>(b, 8));
      unchecked(this.bucketFailed[i] = load<u32>(b, 12));
      unchecked(this.bucketSlow[i] = load<u32>(b, 16));
    }
  }

  /** Writes the record into `buf` (RECORD_SIZE bytes). */
  encodeInto(buf: ArrayBuffer): void {
    const p = changetype<usize>(buf);
    store<u32>(p, MAGIC);
    store<u32>(p, <u32>this.state, 4);
    store<u32>(p, this.epoch, 8);
    store<u32>(p, this.consecutive, 12);
    store<u32>(p, this.reopens, 16);
    store<u32>(p, this.probesInFlight, 20);
    store<u32>(p, this.probeSuccesses, 24);
    store<u32>(p, <u32>this.lastTrip, 28);
    store<i64>(p, this.openUntilMs, 32);
    store<i64>(p, this.lastProbeMs, 40);
    store<u32>(p, this.bodyProbesInFlight, 48);
    store<u32>(p, this.probeGen, 52);
    store<u32>(p, this.bodyProbeGen, 56);
    store<u32>(p, 0, 60);
    store<i64>(p, this.lastBodyProbeMs, 64);
    for (let i = 0; i < BUCKETS; i++) {
      const b = p + <usize>(HEADER_SIZE + i * BUCKET_SIZE);
      store<i64>(b, unchecked(this.bucketIndex[i]));
      store<u32>(b, unchecked(this.bucketTotal[i]), 8);
      store<u32>(b, unchecked(this.bucketFailed[i]), 12);
      store<u32>(b, unchecked(this.bucketSlow[i]), 16);
      store<u32>(b, 0, 20);
    }
  }

  /**
   * On request headers: may this request go to the upstream? An open breaker whose time is over turns half-open
   * here (the first request after the open time makes the transition), and half-open hands out probe slots.
   * `hasBody`: the request did not end with its headers, so its sender decides when the upstream can answer it.
   */
  admit(c: OutlierBreakerConfig, nowMs: i64, hasBody: bool): Admit {
    this.dirty = false;
    this.transition = Transition.None;
    if (this.state == State.Closed) return Admit.Pass;
    if (this.state == State.Open) {
      if (nowMs < this.openUntilMs) return Admit.Reject;
      this.enter(State.HalfOpen);
      this.transition = Transition.HalfOpened;
    }
    const timeout = <i64>c.probeTimeoutMs;
    if (this.probesInFlight > 0 && nowMs - this.lastProbeMs >= timeout) {
      // Every body-less probe out there is older than the timeout: presumed lost, slots back, late answers still count.
      this.probesInFlight = 0;
      this.probeGen++;
      this.dirty = true;
    }
    if (this.bodyProbesInFlight > 0 && nowMs - this.lastBodyProbeMs >= timeout) {
      this.bodyProbesInFlight = 0;
      this.bodyProbeGen++;
      this.dirty = true;
    }
    // Probes with a body never crowd out body-less ones: they only use slots body-less probes leave free.
    const busy = hasBody ? this.probesInFlight + this.bodyProbesInFlight : this.probesInFlight;
    if (busy >= c.halfOpenProbes) return Admit.Reject;
    if (hasBody) {
      this.bodyProbesInFlight++;
      this.lastBodyProbeMs = nowMs;
      this.ticket = this.bodyProbeGen;
    } else {
      this.probesInFlight++;
      this.lastProbeMs = nowMs;
      this.ticket = this.probeGen;
    }
    this.dirty = true;
    return Admit.Probe;
  }

  /**
   * Applies the outcome of a call admitted as `admitted` in `epoch` (a probe: with its pool `hasBody` and `ticket`).
   * Outcomes from another epoch (the breaker moved on meanwhile) are ignored; a probe's slot is given back only to
   * the slot generation it was taken from. `u` draws the jitter if this opens the breaker.
   */
  complete(c: OutlierBreakerConfig, admitted: Admit, epoch: u32, hasBody: bool, ticket: u32, outcome: Outcome, slow: bool, nowMs: i64, u: f64): void {
    this.dirty = false;
    this.transition = Transition.None;
    if (admitted == Admit.Probe) {
      if (this.state != State.HalfOpen || this.epoch != epoch) return;
      if (hasBody) {
        if (this.bodyProbeGen == ticket && this.bodyProbesInFlight > 0) this.bodyProbesInFlight--;
      } else if (this.probeGen == ticket && this.probesInFlight > 0) {
        this.probesInFlight--;
      }
      this.dirty = true;
      if (outcome == Outcome.Neutral) return;
      if (outcome == Outcome.Failure || (slow && c.slowCallRateThreshold != 0)) {
        this.open(c, this.reopens + 1, Trip.ProbeFailed, nowMs, u);
        this.transition = Transition.Reopened;
        return;
      }
      this.probeSuccesses++;
      if (this.probeSuccesses >= c.halfOpenSuccesses) {
        this.enter(State.Closed);
        this.reopens = 0;
        this.transition = Transition.Closed;
      }
      return;
    }
    if (admitted != Admit.Pass || outcome == Outcome.Neutral) return;
    if (this.state != State.Closed || this.epoch != epoch) return;
    const failed = outcome == Outcome.Failure;
    this.count(nowMs, c, failed, slow);
    this.consecutive = failed ? this.consecutive + 1 : 0;
    this.dirty = true;
    const trip = this.tripped(c, nowMs);
    if (trip != Trip.None) {
      this.open(c, 0, trip, nowMs, u);
      this.transition = Transition.Opened;
    }
  }

  /**
   * True when a success changes nothing this record decides with, so a worker may count it locally and merge it later
   * (PendingSuccesses): closed, no failure in a row to reset, no failure in the window a rate could weigh it against,
   * and the slow-call rule off (then every call's latency counts at once).
   */
  quiet(c: OutlierBreakerConfig, nowMs: i64): bool {
    if (this.state != State.Closed || this.consecutive != 0 || c.slowCallRateThreshold != 0) return false;
    if (c.failureRateThreshold == 0) return true;
    this.sum(c, nowMs);
    return this.failed == 0;
  }

  /**
   * Adds a worker's pending successes to the window (each to its own bucket, those that left the window dropped); true
   * when any was added. Successes from another epoch belong to a breaker that has moved on: dropped, `p` cleared.
   * The consecutive count is left alone: when those successes came relative to the failures in it is not known.
   */
  mergeSuccesses(p: PendingSuccesses, c: OutlierBreakerConfig, nowMs: i64): bool {
    if (p.count == 0) return false;
    if (this.state != State.Closed || this.epoch != p.epoch) {
      p.clear();
      return false;
    }
    const current = nowMs / bucketMs(c);
    let added = false;
    for (let i = 0; i < BUCKETS; i++) {
      const n = unchecked(p.total[i]);
      const idx = unchecked(p.index[i]);
      if (n == 0 || idx <= current - <i64>BUCKETS) continue;
      const held = unchecked(this.bucketIndex[i]);
      if (held > idx) continue; // the slot holds a newer bucket: this one has left the window
      if (held < idx) {
        unchecked(this.bucketIndex[i] = idx);
        unchecked(this.bucketTotal[i] = 0);
        unchecked(this.bucketFailed[i] = 0);
        unchecked(this.bucketSlow[i] = 0);
      }
      unchecked(this.bucketTotal[i] += n);
      added = true;
    }
    return added;
  }

  /** The rule that opens a closed breaker now, or Trip.None. */
  tripped(c: OutlierBreakerConfig, nowMs: i64): Trip {
    if (c.consecutiveFailures != 0 && this.consecutive >= c.consecutiveFailures) return Trip.ConsecutiveFailures;
    this.sum(c, nowMs);
    const total = <u64>this.total;
    if (total < <u64>c.minimumRequests) return Trip.None;
    if (c.failureRateThreshold != 0 && <u64>this.failed * 100 >= <u64>c.failureRateThreshold * total) return Trip.FailureRate;
    if (c.slowCallRateThreshold != 0 && <u64>this.slow * 100 >= <u64>c.slowCallRateThreshold * total) return Trip.SlowCallRate;
    return Trip.None;
  }

  /** Sums the buckets inside the window at nowMs into total / failed / slow. */
  sum(c: OutlierBreakerConfig, nowMs: i64): void {
    const current = nowMs / bucketMs(c);
    let total: u32 = 0, failed: u32 = 0, slow: u32 = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const idx = unchecked(this.bucketIndex[i]);
      if (idx > current - <i64>BUCKETS && idx <= current) {
        total += unchecked(this.bucketTotal[i]);
        failed += unchecked(this.bucketFailed[i]);
        slow += unchecked(this.bucketSlow[i]);
      }
    }
    this.total = total;
    this.failed = failed;
    this.slow = slow;
  }

  private count(nowMs: i64, c: OutlierBreakerConfig, failed: bool, slow: bool): void {
    const idx = nowMs / bucketMs(c);
    const i = <i32>(idx % <i64>BUCKETS);
    if (unchecked(this.bucketIndex[i]) != idx) {
      unchecked(this.bucketIndex[i] = idx);
      unchecked(this.bucketTotal[i] = 0);
      unchecked(this.bucketFailed[i] = 0);
      unchecked(this.bucketSlow[i] = 0);
    }
    unchecked(this.bucketTotal[i]++);
    if (failed) unchecked(this.bucketFailed[i]++);
    if (slow) unchecked(this.bucketSlow[i]++);
  }

  private open(c: OutlierBreakerConfig, reopens: u32, trip: Trip, nowMs: i64, u: f64): void {
    this.enter(State.Open);
    this.reopens = reopens;
    this.lastTrip = trip;
    this.openUntilMs = nowMs + openDurationMs(c, reopens, u);
  }

  /** Moves to `state` with a new epoch and a clean slate of counters. */
  private enter(state: State): void {
    this.state = state;
    this.epoch++;
    this.consecutive = 0;
    this.probesInFlight = 0;
    this.bodyProbesInFlight = 0;
    this.probeSuccesses = 0;
    this.clearWindow();
    this.dirty = true;
  }

  private clearWindow(): void {
    for (let i = 0; i < BUCKETS; i++) {
      unchecked(this.bucketIndex[i] = 0);
      unchecked(this.bucketTotal[i] = 0);
      unchecked(this.bucketFailed[i] = 0);
      unchecked(this.bucketSlow[i] = 0);
    }
  }
}

/** One worker's successes on a quiet breaker not yet in the shared window, per window bucket, all of one epoch. */
@final
export class PendingSuccesses {
  epoch: u32 = 0;
  /** Successes held in all buckets. */
  count: u32 = 0;
  readonly index: StaticArray<i64> = new StaticArray<i64>(BUCKETS);
  readonly total: StaticArray<u32> = new StaticArray<u32>(BUCKETS);

  /** Counts a success at nowMs admitted in `epoch` (one of an older epoch clears what was held). */
  add(c: OutlierBreakerConfig, nowMs: i64, epoch: u32): void {
    if (this.count != 0 && epoch != this.epoch) this.clear();
    this.epoch = epoch;
    const idx = nowMs / bucketMs(c);
    const i = <i32>(idx % <i64>BUCKETS);
    if (unchecked(this.index[i]) != idx) {
      unchecked(this.index[i] = idx);
      unchecked(this.total[i] = 0);
    }
    unchecked(this.total[i]++);
    this.count++;
  }

  clear(): void {
    for (let i = 0; i < BUCKETS; i++) unchecked(this.total[i] = 0);
    this.count = 0;
  }
}

// ---------------------------------------------------------------- keys

/** Longest key given a breaker (a host name, `@`, an address); longer ones pass unguarded like those over the cap. */
// @ts-ignore: decorator
@inline export const MAX_KEY_LENGTH: i32 = 320;
