// traffic-split's sliding window: per-subset request and failure counts in time buckets, and the bucket arithmetic.
import { RollbackConfig } from "./config";

/** The sliding window is this many buckets of windowMs / WINDOW_BUCKETS each. */
// @ts-ignore: decorator
@inline export const WINDOW_BUCKETS: i32 = 10;


/**
 * Per-subset request and failure counts in WINDOW_BUCKETS time buckets, a ring keyed by absolute bucket number
 * (floor(ms / bucketMs)). Slot k holds bucket b with b % WINDOW_BUCKETS == k; a newer bucket evicts an older one.
 *
 *   starts[k]            counts[(k * subsets + s) * 2 + 0|1]
 *   bucket number | -1   requests | failures of subset s in that bucket
 */
export class Window {
  readonly starts: StaticArray<i64> = new StaticArray<i64>(WINDOW_BUCKETS);
  readonly counts: StaticArray<u32>;
  /** Set by sum(). */
  requests: u32 = 0;
  failures: u32 = 0;

  constructor(readonly subsets: i32) {
    this.counts = new StaticArray<u32>(WINDOW_BUCKETS * subsets * 2);
    this.clear();
  }

  clear(): void {
    for (let k = 0; k < WINDOW_BUCKETS; k++) unchecked(this.starts[k] = -1);
    this.counts.fill(0);
  }

  isEmpty(): bool {
    for (let k = 0; k < WINDOW_BUCKETS; k++) if (unchecked(this.starts[k]) >= 0) return false;
    return true;
  }

  /** Adds outcomes to bucket `bucket`; a bucket older than the one in its slot is dropped (it left the window). */
  add(bucket: i64, subset: i32, requests: u32, failures: u32): void {
    const k = <i32>(bucket % WINDOW_BUCKETS);
    const cur = unchecked(this.starts[k]);
    if (cur > bucket) return;
    const base = k * this.subsets * 2;
    if (cur < bucket) {
      unchecked(this.starts[k] = bucket);
      for (let s = 0; s < this.subsets * 2; s++) unchecked(this.counts[base + s] = 0);
    }
    const i = base + subset * 2;
    unchecked(this.counts[i] = sat(unchecked(this.counts[i]), requests));
    unchecked(this.counts[i + 1] = sat(unchecked(this.counts[i + 1]), failures));
  }

  /** Adds every bucket of `other` (same subset count) into this one. */
  addAll(other: Window): void {
    for (let k = 0; k < WINDOW_BUCKETS; k++) {
      const b = unchecked(other.starts[k]);
      if (b < 0) continue;
      const base = k * other.subsets * 2;
      for (let s = 0; s < other.subsets; s++) {
        const rq = unchecked(other.counts[base + s * 2]);
        const fl = unchecked(other.counts[base + s * 2 + 1]);
        if (rq != 0 || fl != 0) this.add(b, s, rq, fl);
      }
    }
  }

  /** Totals of `subset` over buckets [max(now - WINDOW_BUCKETS + 1, from), now] into requests / failures. */
  sum(subset: i32, fromBucket: i64, nowBucket: i64): void {
    const lo = max<i64>(nowBucket - WINDOW_BUCKETS + 1, fromBucket);
    let rq: u32 = 0;
    let fl: u32 = 0;
    for (let k = 0; k < WINDOW_BUCKETS; k++) {
      const b = unchecked(this.starts[k]);
      if (b < lo || b > nowBucket) continue;
      const i = (k * this.subsets + subset) * 2;
      rq = sat(rq, unchecked(this.counts[i]));
      fl = sat(fl, unchecked(this.counts[i + 1]));
    }
    this.requests = rq;
    this.failures = fl;
  }
}

@inline function sat(a: u32, b: u32): u32 {
  const s = a + b;
  return s < a ? u32.MAX_VALUE : s;
}

/** Bucket width of a configuration's window. */
@inline export function bucketMsOf(rb: RollbackConfig): i64 {
  return <i64>(rb.windowMs / <u32>WINDOW_BUCKETS);
}


/** The bucket a completion at `nowMs` is counted in. */
@inline export function bucketOf(nowMs: i64, rb: RollbackConfig): i64 {
  return nowMs / bucketMsOf(rb);
}
