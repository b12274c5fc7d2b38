import { ConfigReader } from "../../../assembly/config";
import { parseConfig, OutlierBreakerConfig } from "../config";
import { Admit, BreakerRecord, Outcome, PendingSuccesses, State, Transition, Trip, RECORD_SIZE } from "../core";

function config(text: string): OutlierBreakerConfig {
  const r = ConfigReader.fromString(text, "outlier-breaker");
  const c = parseConfig(r);
  expect(r.error).toBeNull(text);
  return c!;
}

function refused(text: string, ...fragments: string[]): void {
  const r = ConfigReader.fromString(text, "outlier-breaker");
  expect(parseConfig(r)).toBeNull(text);
  const e = r.error;
  expect(e).not.toBeNull(text);
  for (let i = 0; i < fragments.length; i++) expect(e!.includes(fragments[i])).toBe(true, e!);
}

const T0: i64 = 1_767_225_600_000;
const BODY = true;
const NO_BODY = false;

/** A breaker opened by one failure at T0 (consecutiveFailures 1, no jitter), its open time (5000 ms) over at T0 + 5000. */
function opened(c: OutlierBreakerConfig): BreakerRecord {
  const rec = new BreakerRecord();
  expect(rec.admit(c, T0, NO_BODY)).toBe(Admit.Pass);
  rec.complete(c, Admit.Pass, rec.epoch, NO_BODY, 0, Outcome.Failure, false, T0, 0.0);
  expect(rec.state).toBe(State.Open);
  return rec;
}

/** A probe admitted at `nowMs`: its epoch and ticket, as a stream keeps them. */
class Probe {
  constructor(readonly admitted: Admit, readonly epoch: u32, readonly hasBody: bool, readonly ticket: u32) {}
  answer(c: OutlierBreakerConfig, rec: BreakerRecord, outcome: Outcome, nowMs: i64, slow: bool = false): void {
    rec.complete(c, this.admitted, this.epoch, this.hasBody, this.ticket, outcome, slow, nowMs, 0.0);
  }
}

function admit(c: OutlierBreakerConfig, rec: BreakerRecord, nowMs: i64, hasBody: bool): Probe {
  const a = rec.admit(c, nowMs, hasBody);
  return new Probe(a, rec.epoch, hasBody, rec.ticket);
}

describe("outlier-breaker half-open probe pools", () => {
  it("keeps halfOpenProbes slots for body-less requests whatever requests with a body hold", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 2, "halfOpenSuccesses": 2}');
    const rec = opened(c);
    const t = T0 + 5000;
    const b1 = admit(c, rec, t, BODY);
    expect(rec.transition).toBe(Transition.HalfOpened);
    const b2 = admit(c, rec, t, BODY);
    expect(b1.admitted).toBe(Admit.Probe);
    expect(b2.admitted).toBe(Admit.Probe);
    expect(admit(c, rec, t, BODY).admitted).toBe(Admit.Reject);
    expect(rec.bodyProbesInFlight).toBe(2);
    const p1 = admit(c, rec, t, NO_BODY);
    const p2 = admit(c, rec, t, NO_BODY);
    expect(p1.admitted).toBe(Admit.Probe);
    expect(p2.admitted).toBe(Admit.Probe);
    expect(admit(c, rec, t, NO_BODY).admitted).toBe(Admit.Reject);
    p1.answer(c, rec, Outcome.Success, t + 10);
    expect(rec.probesInFlight).toBe(1);
    expect(admit(c, rec, t + 10, BODY).admitted).toBe(Admit.Reject, "both pools together still hold 3 of 2");
    p2.answer(c, rec, Outcome.Success, t + 20);
    expect(rec.state).toBe(State.Closed);
    expect(rec.transition).toBe(Transition.Closed);
  });

  it("lets a request with a body probe only in slots body-less probes leave free", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 2}');
    const rec = opened(c);
    const t = T0 + 5000;
    expect(admit(c, rec, t, NO_BODY).admitted).toBe(Admit.Probe);
    expect(admit(c, rec, t, BODY).admitted).toBe(Admit.Probe);
    expect(admit(c, rec, t, BODY).admitted).toBe(Admit.Reject);
    expect(admit(c, rec, t, NO_BODY).admitted).toBe(Admit.Probe);
  });

  it("reclaims a pool after probeTimeoutMs under a new slot generation, keeping the epoch", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 1, "halfOpenSuccesses": 2, "probeTimeoutMs": 1000}');
    const rec = opened(c);
    const t = T0 + 5000;
    const first = admit(c, rec, t, NO_BODY);
    const epoch = rec.epoch;
    expect(admit(c, rec, t + 999, NO_BODY).admitted).toBe(Admit.Reject);
    const second = admit(c, rec, t + 1000, NO_BODY);
    expect(second.admitted).toBe(Admit.Probe);
    expect(rec.epoch).toBe(epoch);
    expect(rec.probeGen).toBe(1);
    expect(second.ticket).toBe(1);
    first.answer(c, rec, Outcome.Success, t + 1500);
    expect(rec.probeSuccesses).toBe(1, "a late success still counts");
    expect(rec.probesInFlight).toBe(1, "its old-generation slot frees nothing");
    second.answer(c, rec, Outcome.Success, t + 2500);
    expect(rec.state).toBe(State.Closed);
  });

  it("reclaims each pool on its own clock", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 1, "probeTimeoutMs": 1000}');
    const rec = opened(c);
    const t = T0 + 5000;
    expect(admit(c, rec, t, BODY).admitted).toBe(Admit.Probe);
    expect(admit(c, rec, t + 600, NO_BODY).admitted).toBe(Admit.Probe);
    expect(admit(c, rec, t + 1000, BODY).admitted).toBe(Admit.Reject, "the body pool is reclaimed, the body-less probe still holds the only slot");
    expect(rec.bodyProbeGen).toBe(1);
    expect(rec.probeGen).toBe(0);
    expect(admit(c, rec, t + 1600, NO_BODY).admitted).toBe(Admit.Probe);
    expect(rec.probeGen).toBe(1);
  });

  it("never counts an unanswered or neutral probe as a failure", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 1, "probeTimeoutMs": 1000}');
    const rec = opened(c);
    let t = T0 + 5000;
    for (let i = 0; i < 5; i++) {
      const p = admit(c, rec, t, BODY);
      expect(p.admitted).toBe(Admit.Probe);
      t += 1000;
      if (i % 2 == 0) p.answer(c, rec, Outcome.Neutral, t);
    }
    expect(rec.state).toBe(State.HalfOpen);
    expect(rec.reopens).toBe(0);
    expect(rec.lastTrip).toBe(Trip.ConsecutiveFailures);
  });

  it("re-opens on a late failure of a reclaimed probe, and ignores answers of the old epoch after that", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 1, "probeTimeoutMs": 1000}');
    const rec = opened(c);
    const t = T0 + 5000;
    const lost = admit(c, rec, t, NO_BODY);
    const next = admit(c, rec, t + 1000, NO_BODY);
    lost.answer(c, rec, Outcome.Failure, t + 1200);
    expect(rec.state).toBe(State.Open);
    expect(rec.transition).toBe(Transition.Reopened);
    expect(rec.openUntilMs).toBe(t + 1200 + 10000);
    next.answer(c, rec, Outcome.Success, t + 1300);
    expect(rec.dirty).toBe(false);
    expect(rec.state).toBe(State.Open);
  });

  it("keeps both pools and generations across an encode/decode round trip", () => {
    const c = config('{"consecutiveFailures": 1, "jitter": 0, "halfOpenProbes": 2, "probeTimeoutMs": 1000}');
    const rec = opened(c);
    const t = T0 + 5000;
    admit(c, rec, t, BODY);
    admit(c, rec, t + 1000, BODY);
    admit(c, rec, t + 1000, NO_BODY);
    const buf = new ArrayBuffer(RECORD_SIZE);
    rec.encodeInto(buf);
    const back = new BreakerRecord();
    back.decode(buf);
    expect(back.state).toBe(State.HalfOpen);
    expect(back.bodyProbesInFlight).toBe(1);
    expect(back.bodyProbeGen).toBe(1);
    expect(back.lastBodyProbeMs).toBe(t + 1000);
    expect(back.probesInFlight).toBe(1);
    expect(back.probeGen).toBe(0);
    expect(back.lastProbeMs).toBe(t + 1000);
    expect(RECORD_SIZE).toBe(312);
  });
});

describe("outlier-breaker cross-field configuration checks", () => {
  it("accepts the defaults and the shipped combinations", () => {
    const c = config("");
    expect(c.probeTimeoutMs).toBe(15000);
    config('{"slowCallRateThreshold": 50, "slowCallMs": 1200, "probeTimeoutMs": 1201}');
    config('{"failOn": [], "consecutiveFailures": 0, "failureRateThreshold": 0, "slowCallRateThreshold": 50}');
    config('{"halfOpenProbes": 1, "halfOpenSuccesses": 5}');
    config('{"baseOpenMs": 200, "jitter": 0.5}');
  });

  it("refuses each misbehaving combination naming every field involved", () => {
    refused('{"slowCallRateThreshold": 50, "slowCallMs": 1200, "probeTimeoutMs": 1200}', '"probeTimeoutMs"', "slowCallMs (1200)", "slowCallRateThreshold");
    refused('{"probeTimeoutMs": 999}', '"probeTimeoutMs"', "1000");
    refused('{"baseOpenMs": 199, "jitter": 0.5}', '"jitter"', "baseOpenMs 199", "99 ms");
    refused('{"perHost": true, "fallbackHeader": "x-fb"}', '"fallbackHeader"', "perHost");
    refused('{"failOn": [], "slowCallRateThreshold": 10}', '"failOn"', "consecutiveFailures (5)", "failureRateThreshold (50)");
    refused('{"baseOpenMs": 9000, "maxOpenMs": 8000}', '"maxOpenMs"', "baseOpenMs (9000)");
    refused('{"failureStatusCodes": [204]}', '"failureStatusCodes[0]"', "between 400 and 599");
    refused('{"stateHeader": "retry-after"}', '"stateHeader"', '"retry-after"');
    refused('{"fallbackHeader": "cookie"}', '"fallbackHeader"', '"cookie"');
  });
});

describe("outlier-breaker quiet records and pending successes", () => {
  it("is quiet only while closed with no failure in a row or in the window and the slow rule off", () => {
    const c = config("{\"consecutiveFailures\": 3}");
    const rec = new BreakerRecord();
    expect(rec.quiet(c, T0)).toBe(true);
    rec.complete(c, Admit.Pass, 0, NO_BODY, 0, Outcome.Success, false, T0, 0.0);
    expect(rec.quiet(c, T0)).toBe(true);
    rec.complete(c, Admit.Pass, 0, NO_BODY, 0, Outcome.Failure, false, T0, 0.0);
    expect(rec.quiet(c, T0)).toBe(false);
    rec.complete(c, Admit.Pass, 0, NO_BODY, 0, Outcome.Success, false, T0, 0.0);
    expect(rec.consecutive).toBe(0);
    expect(rec.quiet(c, T0 + 9_999)).toBe(false, "the failure is still in the 10 s window");
    expect(rec.quiet(c, T0 + 10_000)).toBe(true, "its bucket has left the window");
    const rateOff = config("{\"consecutiveFailures\": 3, \"failureRateThreshold\": 0}");
    expect(rec.quiet(rateOff, T0)).toBe(true, "no rate rule: a failure in the window weighs nothing");
    expect(rec.quiet(config("{\"slowCallRateThreshold\": 50}"), T0 + 10_000)).toBe(false);
    expect(opened(config("{\"consecutiveFailures\": 1, \"jitter\": 0}")).quiet(c, T0)).toBe(false);
  });

  it("merges pending successes into their own buckets, dropping those that left the window", () => {
    const c = config("{}");
    const p = new PendingSuccesses();
    p.add(c, T0, 0);
    p.add(c, T0 + 1_000, 0);
    p.add(c, T0 + 1_500, 0);
    expect(p.count).toBe(3);
    const rec = new BreakerRecord();
    rec.complete(c, Admit.Pass, 0, NO_BODY, 0, Outcome.Failure, false, T0 + 1_200, 0.0);
    expect(rec.mergeSuccesses(p, c, T0 + 1_600)).toBe(true);
    rec.sum(c, T0 + 1_600);
    expect(rec.total).toBe(4);
    expect(rec.failed).toBe(1);
    expect(rec.consecutive).toBe(1, "when the successes came relative to the failure is not known");
    const late = new BreakerRecord();
    expect(late.mergeSuccesses(p, c, T0 + 10_500)).toBe(true);
    late.sum(c, T0 + 10_500);
    expect(late.total).toBe(2, "the bucket of T0 left the window at T0 + 10000");
  });

  it("drops pending successes of another epoch or of a breaker that is not closed", () => {
    const c = config("{\"consecutiveFailures\": 1, \"jitter\": 0}");
    const p = new PendingSuccesses();
    p.add(c, T0, 0);
    const rec = opened(c);
    expect(rec.mergeSuccesses(p, c, T0)).toBe(false);
    expect(p.count).toBe(0);
    p.add(c, T0, 0);
    p.add(c, T0, 3);
    expect(p.count).toBe(1, "a success of a newer epoch clears the older ones");
    expect(p.epoch).toBe(3);
  });
});
