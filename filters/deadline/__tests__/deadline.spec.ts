import { DeadlineConfig, Incoming } from "../config";
import {
  BudgetSource, NONE, PutOutcome, ReleaseOutcome, TimeoutHeader, bucketOf, decide, entryCaller, entryDeadline,
  entryHolders, findSlot, putSlot, releaseSlot, usedSlots,
} from "../core";

const T0: i64 = 1_700_000_000_000;
const GRACE: i64 = 1_000;

function config(incoming: Incoming, marginMs: u32 = 0): DeadlineConfig {
  const c = new DeadlineConfig();
  c.incoming = incoming;
  c.marginMs = marginMs;
  return c;
}

describe("decide: a caller only shortens the operator's bound", () => {
  it("without a default, a caller's budget goes into the per-try header (the route's timeout stays the bound)", () => {
    const d = decide(config(Incoming.Shorten), 15_000, BudgetSource.Header, 0, NONE, false, T0, T0);
    expect(d.leftMs).toBe(15_000);
    expect(d.timeout).toBe(TimeoutHeader.PerTry);
    expect(d.callerBound).toBe(true);
    expect(d.clamped).toBe(false);
  });

  it("under a default, a shorter ask replaces the route's timeout and is the caller's", () => {
    const d = decide(config(Incoming.Shorten, 5), 200, BudgetSource.GrpcTimeout, 1_000, NONE, false, T0, T0);
    expect(d.leftMs).toBe(195);
    expect(d.timeout).toBe(TimeoutHeader.Global);
    expect(d.callerBound).toBe(true);
    expect(d.source).toBe(BudgetSource.GrpcTimeout);
  });

  it("under a default, a longer ask gets the default, clamped, and is not the caller's", () => {
    const d = decide(config(Incoming.Shorten), 15_000, BudgetSource.Header, 1_000, NONE, false, T0, T0);
    expect(d.leftMs).toBe(1_000);
    expect(d.timeout).toBe(TimeoutHeader.Global);
    expect(d.callerBound).toBe(false);
    expect(d.clamped).toBe(true);
  });

  it("an ask equal to the default is the operator's bound, not a clamp", () => {
    const d = decide(config(Incoming.Shorten), 1_000, BudgetSource.Header, 1_000, NONE, false, T0, T0);
    expect(d.callerBound).toBe(false);
    expect(d.clamped).toBe(false);
  });

  it("under trust, a longer ask is the operator's own bound", () => {
    const d = decide(config(Incoming.Trust), 3_000, BudgetSource.Header, 1_000, NONE, false, T0, T0);
    expect(d.leftMs).toBe(3_000);
    expect(d.timeout).toBe(TimeoutHeader.Global);
    expect(d.callerBound).toBe(false);
    const noDefault = decide(config(Incoming.Trust), 15_000, BudgetSource.Header, 0, NONE, false, T0, T0);
    expect(noDefault.timeout).toBe(TimeoutHeader.Global);
  });

  it("maxMs caps every ask", () => {
    const d = decide(config(Incoming.Shorten), 3_600_000, BudgetSource.Header, 0, NONE, false, T0, T0);
    expect(d.leftMs).toBe(15_000);
    expect(d.clamped).toBe(true);
  });

  it("the table's earlier deadline wins, and is the caller's only when its entry says so", () => {
    const fromCaller = decide(config(Incoming.Shorten), NONE, BudgetSource.None, 1_000, T0 + 300, true, T0, T0);
    expect(fromCaller.source).toBe(BudgetSource.RequestId);
    expect(fromCaller.callerBound).toBe(true);
    expect(fromCaller.leftMs).toBe(300);
    const fromDefault = decide(config(Incoming.Shorten), NONE, BudgetSource.None, 1_000, T0 + 300, false, T0, T0);
    expect(fromDefault.callerBound).toBe(false);
    const later = decide(config(Incoming.Shorten), 100, BudgetSource.Header, 1_000, T0 + 300, false, T0, T0);
    expect(later.source).toBe(BudgetSource.Header);
    expect(later.leftMs).toBe(100);
  });

  it("a dry run sets no router header and no caller budget", () => {
    const c = config(Incoming.Shorten);
    c.enforce = false;
    const d = decide(c, 200, BudgetSource.Header, 1_000, NONE, false, T0, T0);
    expect(d.timeout).toBe(TimeoutHeader.None);
    expect(d.callerBound).toBe(false);
  });
});

describe("the cross-hop slot table", () => {
  it("a duplicate id keeps the earlier deadline and counts holders; only the last holder frees the slot", () => {
    const b = bucketOf(null);
    expect(putSlot(b, 7, T0 + 300, true, T0, GRACE)).toBe(PutOutcome.Added);
    expect(putSlot(b, 7, T0 + 9_000, false, T0, GRACE)).toBe(PutOutcome.Joined);
    let e = findSlot(b, 7, T0, GRACE);
    expect(entryDeadline(e)).toBe(T0 + 300);
    expect(entryHolders(e)).toBe(2);
    expect(entryCaller(e)).toBe(true);
    expect(releaseSlot(b, 7, T0 + 9_000)).toBe(ReleaseOutcome.Left);
    expect(entryDeadline(findSlot(b, 7, T0, GRACE))).toBe(T0 + 300);
    expect(releaseSlot(b, 7, T0 + 300)).toBe(ReleaseOutcome.Freed);
    expect(findSlot(b, 7, T0, GRACE)).toBe(0);
    expect(usedSlots(b)).toBe(0);
  });

  it("a shorter duplicate shortens the entry and takes its caller flag", () => {
    const b = bucketOf(null);
    putSlot(b, 7, T0 + 9_000, false, T0, GRACE);
    putSlot(b, 7, T0 + 300, true, T0, GRACE);
    const e = findSlot(b, 7, T0, GRACE);
    expect(entryDeadline(e)).toBe(T0 + 300);
    expect(entryCaller(e)).toBe(true);
    expect(releaseSlot(b, 7, T0 + 9_000)).toBe(ReleaseOutcome.Left);
    expect(releaseSlot(b, 7, T0 + 300)).toBe(ReleaseOutcome.Freed);
  });

  it("a full key of live entries refuses a new id and keeps every entry", () => {
    const b = bucketOf(null);
    for (let h: u64 = 1; h <= 4; h++) expect(putSlot(b, h, T0 + 60_000, false, T0, GRACE)).toBe(PutOutcome.Added);
    expect(putSlot(b, 99, T0 + 100, false, T0, GRACE)).toBe(PutOutcome.Full);
    for (let h: u64 = 1; h <= 4; h++) expect(entryDeadline(findSlot(b, h, T0, GRACE))).toBe(T0 + 60_000);
    expect(findSlot(b, 99, T0, GRACE)).toBe(0);
  });

  it("a stale slot is reused; the request that recorded it cannot release the new entry", () => {
    const b = bucketOf(null);
    for (let h: u64 = 1; h <= 4; h++) putSlot(b, h, T0 + 100, false, T0, GRACE);
    const later = T0 + 100 + GRACE + 1;
    expect(putSlot(b, 1, later + 500, false, later, GRACE)).toBe(PutOutcome.ReusedStale);
    expect(entryHolders(findSlot(b, 1, later, GRACE))).toBe(1);
    expect(releaseSlot(b, 1, T0 + 100)).toBe(ReleaseOutcome.NotHeld);
    expect(putSlot(b, 5, later + 500, false, later, GRACE)).toBe(PutOutcome.ReusedStale);
    expect(usedSlots(b)).toBe(4);
  });

  it("holders saturate: the entry then stays until stale", () => {
    const b = bucketOf(null);
    for (let i: i32 = 0; i < 300; i++) putSlot(b, 7, T0 + 1_000, false, T0, GRACE);
    expect(entryHolders(findSlot(b, 7, T0, GRACE))).toBe(255);
    expect(releaseSlot(b, 7, T0 + 1_000)).toBe(ReleaseOutcome.Saturated);
    expect(findSlot(b, 7, T0 + 1_000 + GRACE + 1, GRACE)).toBe(0);
  });
});
