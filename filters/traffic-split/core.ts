/**
 * Host-free parts of the traffic-split filter: rule matching, the sticky hash, the subset choice, the sliding window of
 * per-subset outcomes, the rollback / cool-down / ramp decisions, and the shared-state encoding. Time is an argument.
 */
import { TrafficSplitConfig, Condition, Op, Selector, Source, RollbackConfig } from "./config";

/** Sticky points are in [0, POINTS): a subset with weight w% owns w * POINTS / 100 of them. */
// @ts-ignore: decorator
@inline export const POINTS: u32 = 10000;
/** The sliding window is this many buckets of windowMs / WINDOW_BUCKETS each. */
// @ts-ignore: decorator
@inline export const WINDOW_BUCKETS: i32 = 10;

// ---------------------------------------------------------------- hashing

// @ts-ignore: decorator
@inline const FNV_OFFSET: u64 = 0xcbf29ce484222325;
// @ts-ignore: decorator
@inline const FNV_PRIME: u64 = 0x100000001b3;

@inline function fnvByte(h: u64, b: u32): u64 {
  return (h ^ <u64>(b & 0xff)) * FNV_PRIME;
}

/** FNV-1a 64 over the UTF-8 encoding of `s` (lone surrogates are hashed as their 3-byte form). */
function fnvString(h: u64, s: string): u64 {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    if (c < 0x80) {
      h = fnvByte(h, c);
    } else if (c < 0x800) {
      h = fnvByte(h, 0xc0 | (c >> 6));
      h = fnvByte(h, 0x80 | (c & 0x3f));
    } else {
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
        const d = <u32>s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          h = fnvByte(h, 0xf0 | (c >> 18));
          h = fnvByte(h, 0x80 | ((c >> 12) & 0x3f));
          h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
          h = fnvByte(h, 0x80 | (c & 0x3f));
          continue;
        }
      }
      h = fnvByte(h, 0xe0 | (c >> 12));
      h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
      h = fnvByte(h, 0x80 | (c & 0x3f));
    }
  }
  return h;
}

/** MurmurHash3's 64-bit finalizer: spreads FNV's weak low bits over the whole word. */
@inline function fmix64(k: u64): u64 {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccd;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53;
  k ^= k >> 33;
  return k;
}

/** FNV-1a 64 of the UTF-8 encoding of `s` (the configuration's JSON, for the shared-state key). */
export function hashText(s: string): u64 {
  return fnvString(FNV_OFFSET, s);
}

/** The sticky point of a key in [0, POINTS): fmix64(FNV-1a 64(salt ‖ 0xff ‖ key)), scaled. Same key, same point. */
export function stickyPoint(salt: string, key: string): u32 {
  let h = fnvString(FNV_OFFSET, salt);
  h = fnvByte(h, 0xff); // 0xff never occurs in UTF-8: ("a", "bc") and ("ab", "c") differ
  h = fmix64(fnvString(h, key));
  return <u32>(((h >> 32) * <u64>POINTS) >> 32);
}

/** A uniformly random point in [0, POINTS) from 64 random bits (the per-request case). */
@inline export function randomPoint(bits: u64): u32 {
  return <u32>(((bits >> 32) * <u64>POINTS) >> 32);
}

/** 16 lowercase hex digits. */
export function hex64(v: u64): string {
  let s = "";
  for (let shift: i32 = 60; shift >= 0; shift -= 4) {
    const d = <i32>((v >> <u64>shift) & 0xf);
    s += String.fromCharCode(d < 10 ? 0x30 + d : 0x57 + d);
  }
  return s;
}

// ---------------------------------------------------------------- request values

/** The value of cookie `name` in a `cookie` header (`a=1; b="2"` -> b is `2`), or null. */
export function cookieValue(header: string, name: string): string | null {
  const n = header.length;
  let start = 0;
  while (start < n) {
    let end = header.indexOf(";", start);
    if (end < 0) end = n;
    let a = start;
    while (a < end && isSpace(header.charCodeAt(a))) a++;
    const eq = header.indexOf("=", a);
    if (eq > a && eq < end) {
      let ke = eq;
      while (ke > a && isSpace(header.charCodeAt(ke - 1))) ke--;
      if (ke - a == name.length && header.substring(a, ke) == name) {
        let vs = eq + 1;
        let ve = end;
        while (vs < ve && isSpace(header.charCodeAt(vs))) vs++;
        while (ve > vs && isSpace(header.charCodeAt(ve - 1))) ve--;
        if (ve - vs >= 2 && header.charCodeAt(vs) == 0x22 && header.charCodeAt(ve - 1) == 0x22) { vs++; ve--; }
        return header.substring(vs, ve);
      }
    }
    start = end + 1;
  }
  return null;
}

/** The raw (not percent-decoded) value of query parameter `name` in a `:path`; `?a&b=1` gives a = "". */
export function queryValue(path: string, name: string): string | null {
  const q = path.indexOf("?");
  if (q < 0) return null;
  let n = path.indexOf("#", q);
  if (n < 0) n = path.length;
  let start = q + 1;
  while (start < n) {
    let end = path.indexOf("&", start);
    if (end < 0 || end > n) end = n;
    let eq = path.indexOf("=", start);
    if (eq < 0 || eq > end) eq = end;
    if (eq - start == name.length && path.substring(start, eq) == name) {
      return eq < end ? path.substring(eq + 1, end) : "";
    }
    start = end + 1;
  }
  return null;
}

@inline function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

/** The distinct request headers the configuration reads, fetched lazily (the stage reads them through the view). */
export abstract class Inputs {
  /** The first value of TrafficSplitConfig.inputs[i], or null when absent. */
  abstract get(i: i32): string | null;
}

/** The value a selector names in this request, or null. */
export function selectValue(sel: Selector, inputs: Inputs): string | null {
  const raw = inputs.get(sel.input);
  if (raw === null) return null;
  if (sel.source == Source.Header) return raw;
  if (sel.source == Source.Cookie) return cookieValue(raw, sel.name);
  return queryValue(raw, sel.name);
}

export function conditionHolds(cond: Condition, inputs: Inputs): bool {
  const v = selectValue(cond.selector, inputs);
  const op = cond.op;
  if (op == Op.Absent) return v === null;
  if (v === null) return false;
  const s = changetype<string>(v);
  switch (op) {
    case Op.Present: return true;
    case Op.Exact: return s == cond.value;
    case Op.Prefix: return s.startsWith(cond.value);
    case Op.Suffix: return s.endsWith(cond.value);
    case Op.Contains: return s.includes(cond.value);
    case Op.OneOf: return cond.values.includes(s);
  }
  return false;
}

// ---------------------------------------------------------------- the choice

/**
 * Which subset serves this request (an index into config.subsets), given the current shared state:
 * 1. with allowClientHeader, a client's routing header naming a subset that is not rolled back;
 * 2. the first rule whose conditions all hold: its subset for `percent`% of sticky points, else the baseline;
 * 3. the weighted split: the later subsets own consecutive point ranges from 0, the baseline the rest.
 * A rolled-back subset is never chosen (its requests go to the baseline). `random` is used only when no sticky key is present.
 */
export function chooseSubset(c: TrafficSplitConfig, st: SplitState, inputs: Inputs, random: u32): i32 {
  const subsets = st.subsets;
  if (c.allowClientHeader) {
    const asked = inputs.get(0);
    if (asked !== null) {
      const i = c.subsetIndex(asked);
      if (i >= 0 && !unchecked(subsets[i]).rolledBack) return i;
    }
  }
  let point: u32 = POINTS; // not computed yet
  const rules = c.rules;
  for (let r = 0; r < rules.length; r++) {
    const rule = unchecked(rules[r]);
    if (!allHold(rule.conditions, inputs)) continue;
    if (rule.percent < 100) {
      if (point == POINTS) point = pointOf(c, inputs, random);
      if (point >= rule.percent * (POINTS / 100)) return 0;
    }
    return unchecked(subsets[rule.subset]).rolledBack ? 0 : rule.subset;
  }
  let edge: u32 = 0;
  for (let i = 1; i < subsets.length; i++) {
    const w = unchecked(subsets[i]).weight;
    if (w == 0) continue;
    if (point == POINTS) point = pointOf(c, inputs, random);
    edge += w * (POINTS / 100);
    if (point < edge) return i;
  }
  return 0;
}

function allHold(conds: Condition[], inputs: Inputs): bool {
  for (let i = 0; i < conds.length; i++) if (!conditionHolds(unchecked(conds[i]), inputs)) return false;
  return true;
}

/** The sticky point of the first stickyBy source present, else the per-request random point. */
function pointOf(c: TrafficSplitConfig, inputs: Inputs, random: u32): u32 {
  const sources = c.stickyBy;
  for (let i = 0; i < sources.length; i++) {
    const v = selectValue(unchecked(sources[i]), inputs);
    if (v !== null && v.length > 0) return stickyPoint(c.revision, v);
  }
  return random;
}

// ---------------------------------------------------------------- sliding window

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

// ---------------------------------------------------------------- shared state

/** One subset's control state, shared by every worker. */
export class SubsetState {
  /** Current weight in percent (0 while rolled back); the baseline's is the remainder. */
  weight: u32 = 0;
  rolledBack: bool = false;
  /** Outcomes before this time do not count (configuration start, or the end of a cool-down). */
  sinceMs: i64 = 0;
  /** Last ramp step (or the start). */
  lastStepMs: i64 = 0;
  rolledBackAtMs: i64 = 0;
  rollbacks: u32 = 0;
}

/** The whole shared value of one configuration: control state and the outcome window. */
export class SplitState {
  createdMs: i64 = 0;
  subsets: SubsetState[] = [];
  window: Window;

  constructor(n: i32) {
    this.window = new Window(n);
    for (let i = 0; i < n; i++) this.subsets.push(new SubsetState());
  }

  /** The state of a configuration that no worker has seen yet: configured weights, nothing counted. */
  static initial(c: TrafficSplitConfig, nowMs: i64): SplitState {
    const n = c.subsets.length;
    const st = new SplitState(n);
    st.createdMs = nowMs;
    for (let i = 0; i < n; i++) {
      const s = st.subsets[i];
      s.weight = c.subsets[i].weight;
      s.sinceMs = nowMs;
      s.lastStepMs = nowMs;
    }
    return st;
  }

  /** The baseline's current weight: what the other subsets leave. */
  baselineWeight(): u32 {
    let sum: u32 = 0;
    for (let i = 1; i < this.subsets.length; i++) sum += this.subsets[i].weight;
    return sum >= 100 ? 0 : 100 - sum;
  }
}

// Layout (little-endian):
//   0  u32 STATE_MAGIC   4 u32 subsets (n)   8 i64 createdMs
//   16 n x SUBSET_BYTES: u32 weight, u32 flags (bit 0 rolled back), i64 sinceMs, i64 lastStepMs, i64 rolledBackAtMs,
//                        u32 rollbacks, u32 0
//   then WINDOW_BUCKETS x (i64 bucket, n x (u32 requests, u32 failures))
// @ts-ignore: decorator
@inline const STATE_MAGIC: u32 = 0x31505354; // "TSP1"
// @ts-ignore: decorator
@inline const HEADER_BYTES: i32 = 16;
// @ts-ignore: decorator
@inline const SUBSET_BYTES: i32 = 40;

export function stateSize(n: i32): i32 {
  return HEADER_BYTES + n * SUBSET_BYTES + WINDOW_BUCKETS * (8 + n * 8);
}

export function encodeState(st: SplitState): ArrayBuffer {
  const n = st.subsets.length;
  const buf = new ArrayBuffer(stateSize(n));
  const p = changetype<usize>(buf);
  store<u32>(p, STATE_MAGIC);
  store<u32>(p, <u32>n, 4);
  store<i64>(p, st.createdMs, 8);
  let q = p + <usize>HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const s = st.subsets[i];
    store<u32>(q, s.weight);
    store<u32>(q, s.rolledBack ? 1 : 0, 4);
    store<i64>(q, s.sinceMs, 8);
    store<i64>(q, s.lastStepMs, 16);
    store<i64>(q, s.rolledBackAtMs, 24);
    store<u32>(q, s.rollbacks, 32);
    store<u32>(q, 0, 36);
    q += <usize>SUBSET_BYTES;
  }
  const w = st.window;
  for (let k = 0; k < WINDOW_BUCKETS; k++) {
    store<i64>(q, w.starts[k]);
    q += 8;
    for (let j = 0; j < n * 2; j++) {
      store<u32>(q, w.counts[k * n * 2 + j]);
      q += 4;
    }
  }
  return buf;
}

/** The state in `buf`, or null when it is not a state for `n` subsets (another layout or a torn value). */
export function decodeState(buf: ArrayBuffer, n: i32): SplitState | null {
  if (buf.byteLength != stateSize(n)) return null;
  const p = changetype<usize>(buf);
  if (load<u32>(p) != STATE_MAGIC || load<u32>(p, 4) != <u32>n) return null;
  const st = new SplitState(n);
  st.createdMs = load<i64>(p, 8);
  let q = p + <usize>HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const s = st.subsets[i];
    s.weight = load<u32>(q);
    s.rolledBack = (load<u32>(q, 4) & 1) != 0;
    s.sinceMs = load<i64>(q, 8);
    s.lastStepMs = load<i64>(q, 16);
    s.rolledBackAtMs = load<i64>(q, 24);
    s.rollbacks = load<u32>(q, 32);
    q += <usize>SUBSET_BYTES;
  }
  const w = st.window;
  for (let k = 0; k < WINDOW_BUCKETS; k++) {
    w.starts[k] = load<i64>(q);
    q += 8;
    for (let j = 0; j < n * 2; j++) {
      w.counts[k * n * 2 + j] = load<u32>(q);
      q += 4;
    }
  }
  return st;
}

// ---------------------------------------------------------------- decisions

export enum EventKind {
  RolledBack = 0,
  Restored = 1,
  Stepped = 2,
}

/** A state change and the figures that caused it (for the log line and the metrics). */
export class SplitEvent {
  constructor(
    public kind: EventKind, public subset: i32, public fromWeight: u32, public toWeight: u32,
    public requests: u32, public failures: u32, public baseRequests: u32, public baseFailures: u32,
  ) {}
}

/** Failures / requests, 0 for no requests. */
@inline export function rate(failures: u32, requests: u32): f64 {
  return requests == 0 ? 0.0 : <f64>failures / <f64>requests;
}

/**
 * Whether a subset should be rolled back: at least minRequests in the window, an error rate above errorRate, and
 * worse than the baseline's by more than margin (the baseline's rate counts as 0 below minRequests).
 */
export function shouldRollBack(rb: RollbackConfig, requests: u32, failures: u32, baseRequests: u32, baseFailures: u32): bool {
  if (requests < rb.minRequests) return false;
  const r = rate(failures, requests);
  if (r <= rb.errorRate) return false;
  const base = baseRequests >= rb.minRequests ? rate(baseFailures, baseRequests) : 0.0;
  return r > base + rb.margin;
}

/**
 * Advances the shared state to `nowMs` (mutating it) and returns what changed, for each subset after the baseline:
 *   active --(shouldRollBack)--> rolled back (weight 0) --(cooldownMs > 0 elapsed)--> active (configured weight)
 *   active with a ramp: +stepPercent (up to maxPercent) every intervalMs while its error rate is at most errorRate.
 */
export function evaluate(c: TrafficSplitConfig, st: SplitState, nowMs: i64): SplitEvent[] {
  const events = new Array<SplitEvent>();
  const rb = c.rollback;
  const bucketMs = bucketMsOf(rb);
  const nowBucket = nowMs / bucketMs;
  const w = st.window;
  w.sum(0, st.subsets[0].sinceMs / bucketMs, nowBucket);
  const baseRequests = w.requests;
  const baseFailures = w.failures;
  for (let i = 1; i < st.subsets.length; i++) {
    const s = st.subsets[i];
    const cfg = c.subsets[i];
    if (s.rolledBack) {
      if (rb.cooldownMs != 0 && nowMs - s.rolledBackAtMs >= <i64>rb.cooldownMs) {
        s.rolledBack = false;
        s.weight = cfg.weight;
        // The new trial counts from the next bucket: the current one may hold late outcomes of the old trial.
        s.sinceMs = (nowBucket + 1) * bucketMs;
        s.lastStepMs = nowMs;
        events.push(new SplitEvent(EventKind.Restored, i, 0, s.weight, 0, 0, baseRequests, baseFailures));
      }
      continue;
    }
    w.sum(i, s.sinceMs / bucketMs, nowBucket);
    const requests = w.requests;
    const failures = w.failures;
    if (rb.enabled && shouldRollBack(rb, requests, failures, baseRequests, baseFailures)) {
      events.push(new SplitEvent(EventKind.RolledBack, i, s.weight, 0, requests, failures, baseRequests, baseFailures));
      s.rolledBack = true;
      s.weight = 0;
      s.rolledBackAtMs = nowMs;
      s.rollbacks++;
      continue;
    }
    const ramp = cfg.ramp;
    if (ramp !== null && s.weight < ramp.maxPercent && nowMs - s.lastStepMs >= <i64>ramp.intervalMs &&
        rate(failures, requests) <= rb.errorRate) {
      const to = min<u32>(ramp.maxPercent, s.weight + ramp.stepPercent);
      events.push(new SplitEvent(EventKind.Stepped, i, s.weight, to, requests, failures, baseRequests, baseFailures));
      s.weight = to;
      s.lastStepMs = nowMs;
    }
  }
  return events;
}

/** The bucket a completion at `nowMs` is counted in. */
@inline export function bucketOf(nowMs: i64, rb: RollbackConfig): i64 {
  return nowMs / bucketMsOf(rb);
}
