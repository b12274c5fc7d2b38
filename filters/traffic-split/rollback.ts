// traffic-split's rollback window decisions: rollback, cool-down restore and ramp steps, and the events they emit.
import { TrafficSplitConfig, RollbackConfig } from "./config";
import { bucketMsOf } from "./window";
import { SplitState } from "./state";

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
