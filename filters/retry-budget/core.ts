/**
 * Host-free core of the retry budget: a sliding window of time buckets per destination, the budget formula, and the
 * binary form of a window in shared data. Time is an argument (`nowMs`), so every number here is exact under test.
 *
 *   ring of BUCKETS slots, slot = epoch % BUCKETS, epoch = floor(nowMs / bucketMs), bucketMs = window / BUCKETS
 *   ┌────────┬────────┬─────┬────────┐
 *   │ e - 9  │ e - 8  │ ... │ e (now)│   a slot holding an epoch <= e - BUCKETS is expired and reads as empty
 *   └────────┴────────┴─────┴────────┘
 *   per bucket: requests (deposits), okAttempts, failedAttempts, retries (withdrawals, reservations included)
 *
 * Retries are counted in millionths (RETRY_UNIT), so a reservation given back cancels exactly.
 */
import { Cause, isNeutral, isUpstreamFailure } from "../common/outcome";

/** Time buckets per window. */
// @ts-ignore: decorator
@inline export const BUCKETS: i32 = 10;

/** Retries are stored in millionths of a retry. */
// @ts-ignore: decorator
@inline export const RETRY_UNIT: i64 = 1_000_000;

/** Sums over the live buckets of one or more windows. */
export class Totals {
  requests: f64 = 0.0;
  okAttempts: f64 = 0.0;
  failedAttempts: f64 = 0.0;
  retries: f64 = 0.0;
  /** Retries charged to the current bucket only (what the minimum allowance is measured against). */
  bucketRetries: f64 = 0.0;

  reset(): Totals {
    this.requests = 0.0;
    this.okAttempts = 0.0;
    this.failedAttempts = 0.0;
    this.retries = 0.0;
    this.bucketRetries = 0.0;
    return this;
  }
}

/** One destination's sliding window (or a worker's not-yet-shared part of it). */
@final
export class BudgetWindow {
  /** Epoch each slot holds; -1 for never used. */
  readonly epochs: StaticArray<i64> = new StaticArray<i64>(BUCKETS);
  readonly requests: StaticArray<u32> = new StaticArray<u32>(BUCKETS);
  readonly okAttempts: StaticArray<u32> = new StaticArray<u32>(BUCKETS);
  readonly failedAttempts: StaticArray<u32> = new StaticArray<u32>(BUCKETS);
  /** Millionths of a retry. */
  readonly retries: StaticArray<i64> = new StaticArray<i64>(BUCKETS);

  constructor(readonly bucketMs: i64) {
    this.clear();
  }

  @inline epochAt(nowMs: i64): i64 {
    return nowMs / this.bucketMs;
  }

  /** Forgets every count. */
  clear(): void {
    for (let i = 0; i < BUCKETS; i++) this.emptySlot(i, -1);
  }

  /** True when no slot holds anything. */
  get empty(): bool {
    for (let i = 0; i < BUCKETS; i++) {
      if (unchecked(this.epochs[i]) >= 0) return false;
    }
    return true;
  }

  /**
   * A request arrived: it deposits into the current bucket. Returns false (nothing counted) when the clock stepped
   * back behind a bucket this window already holds.
   */
  deposit(nowMs: i64): bool {
    const s = this.claim(this.epochAt(nowMs));
    if (s < 0) return false;
    unchecked(this.requests[s] += 1);
    return true;
  }

  /** A completed request's attempts, counted in the current bucket; false (nothing counted) after a backward clock step. */
  recordAttempts(nowMs: i64, ok: u32, failed: u32): bool {
    if (ok == 0 && failed == 0) return false;
    const s = this.claim(this.epochAt(nowMs));
    if (s < 0) return false;
    unchecked(this.okAttempts[s] += ok);
    unchecked(this.failedAttempts[s] += failed);
    return true;
  }

  /**
   * Charges `units` millionths of a retry (negative to give back) to the bucket of `epoch`. Nothing happens when that
   * bucket has left the window at `nowMs`: its charge no longer counts anyway. Returns whether it was charged.
   */
  charge(epoch: i64, nowMs: i64, units: i64): bool {
    if (units == 0 || epoch <= this.epochAt(nowMs) - BUCKETS) return false;
    const s = this.claim(epoch);
    if (s < 0) return false;
    unchecked(this.retries[s] += units);
    return true;
  }

  /** Adds the live buckets at `nowMs` to `t`. */
  addTo(t: Totals, nowMs: i64): Totals {
    const now = this.epochAt(nowMs);
    for (let i = 0; i < BUCKETS; i++) {
      const e = unchecked(this.epochs[i]);
      if (e <= now - BUCKETS || e > now) continue;
      t.requests += <f64>unchecked(this.requests[i]);
      t.okAttempts += <f64>unchecked(this.okAttempts[i]);
      t.failedAttempts += <f64>unchecked(this.failedAttempts[i]);
      const r = <f64>unchecked(this.retries[i]) / <f64>RETRY_UNIT;
      t.retries += r;
      if (e == now) t.bucketRetries += r;
    }
    return t;
  }

  /** Adds `other`'s buckets into this one (a bucket older than what this slot holds is dropped). */
  mergeFrom(other: BudgetWindow): void {
    for (let i = 0; i < BUCKETS; i++) {
      const e = unchecked(other.epochs[i]);
      if (e < 0) continue;
      const s = this.claim(e);
      if (s < 0) continue;
      unchecked(this.requests[s] += unchecked(other.requests[i]));
      unchecked(this.okAttempts[s] += unchecked(other.okAttempts[i]));
      unchecked(this.failedAttempts[s] += unchecked(other.failedAttempts[i]));
      unchecked(this.retries[s] += unchecked(other.retries[i]));
    }
  }

  /**
   * The slot of `epoch`, emptied first if it held an older bucket; -1 when it holds a newer one (the wall clock stepped
   * back) or the epoch is before 1970 (no slot). Every caller checks for -1: an unchecked -1 writes into the array header.
   */
  private claim(epoch: i64): i32 {
    if (epoch < 0) return -1;
    const s = <i32>(epoch % <i64>BUCKETS);
    const held = unchecked(this.epochs[s]);
    if (held == epoch) return s;
    if (held > epoch) return -1;
    this.emptySlot(s, epoch);
    return s;
  }

  private emptySlot(s: i32, epoch: i64): void {
    unchecked(this.epochs[s] = epoch);
    unchecked(this.requests[s] = 0);
    unchecked(this.okAttempts[s] = 0);
    unchecked(this.failedAttempts[s] = 0);
    unchecked(this.retries[s] = 0);
  }
}

// ---------------------------------------------------------------- the budget formula

/** The budget rules of one configuration. */
@final
export class BudgetPolicy {
  /** The minimum allowance per bucket: minRetriesPerSecond x bucket length. */
  readonly minPerBucket: f64;

  constructor(readonly retryRatio: f64, minRetriesPerSecond: f64, readonly bucketMs: i64, readonly adaptive: bool) {
    this.minPerBucket = minRetriesPerSecond * <f64>bucketMs / 1000.0;
  }

  /** Share of attempts in the window that succeeded; 1 before any attempt completed. */
  successRatio(t: Totals): f64 {
    const n = t.okAttempts + t.failedAttempts;
    return n > 0.0 ? t.okAttempts / n : 1.0;
  }

  /** retryRatio x successRatio when adaptive, else retryRatio. */
  effectiveRatio(t: Totals): f64 {
    return this.adaptive ? this.retryRatio * this.successRatio(t) : this.retryRatio;
  }

  /**
   * Retries the budget holds:
   *   max(effectiveRatio x requests - retries   (over the window),
   *       minPerBucket - retries in the current bucket)
   * Either may be negative (overdrawn); the caller floors the result at 0.
   */
  available(t: Totals): f64 {
    const byRatio = this.effectiveRatio(t) * t.requests - t.retries;
    const byMinimum = this.minPerBucket - t.bucketRetries;
    return max(byRatio, byMinimum);
  }

  /**
   * What a grant of `k` retries reserves until the request completes: its expected retries with each attempt failing
   * as often as in the window. Before any attempt completed nothing is known, so the whole grant is reserved.
   */
  reservation(t: Totals, k: u32): i64 {
    const n = t.okAttempts + t.failedAttempts;
    return <i64>Math.ceil(expectedRetries(k, n > 0.0 ? t.failedAttempts / n : 1.0) * <f64>RETRY_UNIT);
  }

  /** Retries one request may make: what it wants, at most the whole retries the budget holds. */
  grant(t: Totals, wanted: u32): u32 {
    const a = Math.floor(this.available(t));
    if (a <= 0.0) return 0;
    return a >= <f64>wanted ? wanted : <u32>a;
  }
}

/** Expected retries of a request given `k` retries when each attempt fails with probability q: q + q^2 + ... + q^k. */
export function expectedRetries(k: u32, q: f64): f64 {
  let sum = 0.0;
  let p = 1.0;
  for (let i: u32 = 0; i < k; i++) {
    p *= q;
    sum += p;
  }
  return sum;
}

// ---------------------------------------------------------------- outcomes

/** What a completed request's final answer says about the upstream (from its cause, filters/common/outcome.ts). */
export enum Verdict {
  Ok = 0,
  Failed = 1,
  /** Caller-caused or never sent: the last attempt counts neither way. */
  Neutral = 2,
}

/** The retry budget's verdict: an upstream failure, or an upstream answer of 5xx, fails; caller-caused is neutral. */
export function verdictOf(cause: Cause, code: i64): Verdict {
  if (isNeutral(cause)) return Verdict.Neutral;
  if (isUpstreamFailure(cause) || code >= 500) return Verdict.Failed;
  return code > 0 ? Verdict.Ok : Verdict.Neutral;
}

/** Attempts of a completed request that succeeded (0 or 1): the router retries only after a failed attempt. */
@inline export function okAttempts(attempts: i64, v: Verdict): u32 {
  return attempts >= 1 && v == Verdict.Ok ? 1 : 0;
}

/**
 * Attempts of a completed request that failed: all of them when the final answer failed, else all but the last (each
 * retried attempt failed; a neutral last attempt is not counted).
 */
@inline export function failedAttempts(attempts: i64, v: Verdict): u32 {
  if (attempts < 1) return 0;
  return <u32>(v == Verdict.Failed ? attempts : attempts - 1);
}

/** True when the budget stopped a retry the router would have made: it failed after using every retry it was given. */
@inline export function retryDenied(granted: u32, wanted: u32, attempts: i64, v: Verdict): bool {
  return v == Verdict.Failed && granted < wanted && attempts == <i64>granted + 1;
}

// ---------------------------------------------------------------- shared-data encoding

/** "RBW1" little-endian: marks a value written by this encoding. */
// @ts-ignore: decorator
@inline const MAGIC: u32 = 0x31574252;
// @ts-ignore: decorator
@inline const HEADER_BYTES: i32 = 8;
// @ts-ignore: decorator
@inline const SLOT_BYTES: i32 = 28;
/** Size of an encoded window: u32 magic, u32 bucketMs, then per slot i64 epoch, u32 x3 counts, i64 retry units. */
// @ts-ignore: decorator
@inline export const ENCODED_BYTES: i32 = HEADER_BYTES + BUCKETS * SLOT_BYTES;

/** Writes `w` into `out` (ENCODED_BYTES long), little-endian. */
export function encodeWindow(w: BudgetWindow, out: ArrayBuffer): ArrayBuffer {
  const base = changetype<usize>(out);
  store<u32>(base, MAGIC);
  store<u32>(base + 4, <u32>w.bucketMs);
  for (let i = 0; i < BUCKETS; i++) {
    const p = base + <usize>(HEADER_BYTES + i * SLOT_BYTES);
    store<i64>(p, unchecked(w.epochs[i]));
    store<u32>(p + 8, unchecked(w.requests[i]));
    store<u32>(p + 12, unchecked(w.okAttempts[i]));
    store<u32>(p + 16, unchecked(w.failedAttempts[i]));
    store<i64>(p + 20, unchecked(w.retries[i]));
  }
  return out;
}

/**
 * Reads an encoded window into `w`. A value of the wrong size, without the marker or written with another bucket
 * length (another windowSeconds) reads as empty, and the result is false.
 */
export function decodeWindow(data: ArrayBuffer, w: BudgetWindow): bool {
  const base = changetype<usize>(data);
  if (data.byteLength != ENCODED_BYTES || load<u32>(base) != MAGIC || <i64>load<u32>(base + 4) != w.bucketMs) {
    w.clear();
    return false;
  }
  for (let i = 0; i < BUCKETS; i++) {
    const p = base + <usize>(HEADER_BYTES + i * SLOT_BYTES);
    unchecked(w.epochs[i] = load<i64>(p));
    unchecked(w.requests[i] = load<u32>(p + 8));
    unchecked(w.okAttempts[i] = load<u32>(p + 12));
    unchecked(w.failedAttempts[i] = load<u32>(p + 16));
    unchecked(w.retries[i] = load<i64>(p + 20));
  }
  return true;
}

// ---------------------------------------------------------------- the destination directory

/** The value that stands for every destination beyond the cap. */
export const OVERFLOW = "other";

/** Longest destination name given a budget of its own; longer ones use the overflow budget. */
// @ts-ignore: decorator
@inline export const MAX_NAME_LENGTH: i32 = 253;
