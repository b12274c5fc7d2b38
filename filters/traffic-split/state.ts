// traffic-split's shared state: per-subset control state, the whole value of one configuration, and its byte codec.
import { TrafficSplitConfig } from "./config";
import { WINDOW_BUCKETS, Window } from "./window";

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
