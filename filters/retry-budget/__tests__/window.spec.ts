import { BudgetWindow, BUCKETS, Totals, Verdict, verdictOf, okAttempts, failedAttempts, retryDenied } from "../core";
import { Cause } from "../../common/outcome";

/** The runtime header's size field, just before a StaticArray's data: what an unchecked index -1 would overwrite. */
function rtSize<T>(a: StaticArray<T>): u32 {
  return load<u32>(changetype<usize>(a) - 4);
}

describe("a budget window after the wall clock steps back", () => {
  it("refuses a deposit into a bucket it no longer holds, and writes nothing outside its arrays", () => {
    const w = new BudgetWindow(1000);
    expect(w.deposit(20_000)).toBe(true); // epoch 20, slot 0
    expect(w.deposit(10_000)).toBe(false); // epoch 10, slot 0 holds the newer epoch 20
    expect(w.requests[0]).toBe(1);
    expect(rtSize(w.requests)).toBe(<u32>(BUCKETS * 4));
    expect(rtSize(w.epochs)).toBe(<u32>(BUCKETS * 8));
  });

  it("refuses the attempts of a completion after the step, and keeps the counts it had", () => {
    const w = new BudgetWindow(1000);
    expect(w.recordAttempts(20_000, 1, 2)).toBe(true);
    expect(w.recordAttempts(10_000, 1, 1)).toBe(false);
    expect(w.okAttempts[0]).toBe(1);
    expect(w.failedAttempts[0]).toBe(2);
    expect(rtSize(w.okAttempts)).toBe(<u32>(BUCKETS * 4));
    expect(rtSize(w.failedAttempts)).toBe(<u32>(BUCKETS * 4));
    const t = w.addTo(new Totals(), 20_000);
    expect(t.okAttempts).toBe(1.0);
    expect(t.failedAttempts).toBe(2.0);
  });

  it("refuses a time before 1970 (a negative epoch has no slot)", () => {
    const w = new BudgetWindow(1000);
    expect(w.deposit(-5_000)).toBe(false);
    expect(w.recordAttempts(-5_000, 1, 0)).toBe(false);
    expect(w.charge(-5, -5_000, 1_000_000)).toBe(false);
    expect(w.empty).toBe(true);
    expect(rtSize(w.requests)).toBe(<u32>(BUCKETS * 4));
  });

  it("still counts a step back within the bucket it holds", () => {
    const w = new BudgetWindow(1000);
    expect(w.deposit(20_900)).toBe(true);
    expect(w.deposit(20_100)).toBe(true);
    expect(w.requests[0]).toBe(2);
  });
});

describe("the retry budget's verdict on an outcome", () => {
  it("fails upstream failures and 5xx answers, keeps caller-caused outcomes neutral", () => {
    expect(verdictOf(Cause.Answered, 200)).toBe(Verdict.Ok);
    expect(verdictOf(Cause.Answered, 503)).toBe(Verdict.Failed);
    expect(verdictOf(Cause.UpstreamReset, 503)).toBe(Verdict.Failed);
    expect(verdictOf(Cause.UpstreamTimeout, 504)).toBe(Verdict.Failed);
    expect(verdictOf(Cause.CallerTimeout, 504)).toBe(Verdict.Neutral);
    expect(verdictOf(Cause.DownstreamGone, 0)).toBe(Verdict.Neutral);
    expect(verdictOf(Cause.LocalReply, 503)).toBe(Verdict.Neutral);
  });

  it("counts a neutral last attempt neither way, but each retried attempt as failed", () => {
    expect(okAttempts(1, Verdict.Neutral)).toBe(0);
    expect(failedAttempts(1, Verdict.Neutral)).toBe(0);
    expect(failedAttempts(3, Verdict.Neutral)).toBe(2);
    expect(okAttempts(3, Verdict.Ok)).toBe(1);
    expect(failedAttempts(3, Verdict.Ok)).toBe(2);
    expect(failedAttempts(3, Verdict.Failed)).toBe(3);
    expect(retryDenied(0, 2, 1, Verdict.Neutral)).toBe(false);
    expect(retryDenied(0, 2, 1, Verdict.Failed)).toBe(true);
  });
});
