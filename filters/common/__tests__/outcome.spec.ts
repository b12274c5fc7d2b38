import { Cause, CAUSE_NAMES, classify, isNeutral, isUpstreamFailure, isTimeout, CALLER_TIMEOUT_TOLERANCE_MS } from "../outcome";
import { normalizeName } from "../destination";

// Envoy 1.40 legacy response.flags bits (CoreResponseFlag index n -> 1 << n).
const UH: i64 = 0x2;
const UT: i64 = 0x4;
const LR: i64 = 0x8;
const UR: i64 = 0x10;
const UF: i64 = 0x20;
const UC: i64 = 0x40;
const UO: i64 = 0x80;
const NR: i64 = 0x100;
const DC: i64 = 0x4000;
const URX: i64 = 0x8000;
const UMSDR: i64 = 0x80000;
const UPE: i64 = 0x800000;
const NC: i64 = 0x1000000;
const DR: i64 = 0x10000000;
const MS: i64 = 1_000_000;

class Row {
  constructor(
    readonly what: string, readonly code: i64, readonly flags: i64, readonly attempts: i64,
    readonly durationNs: i64, readonly callerBudgetMs: i64, readonly cause: Cause,
  ) {}
}

const ROWS: Row[] = [
  new Row("2xx from the upstream", 200, 0, 1, 30 * MS, 0, Cause.Answered),
  new Row("5xx from the upstream (the filter decides)", 503, 0, 1, 30 * MS, 0, Cause.Answered),
  new Row("5xx after exhausted retries", 503, URX, 3, 30 * MS, 0, Cause.Answered),
  new Row("upstream reset", 503, UR, 1, 30 * MS, 0, Cause.UpstreamReset),
  new Row("upstream connection termination", 503, UC, 1, 30 * MS, 0, Cause.UpstreamReset),
  new Row("upstream protocol error", 502, UPE, 1, 30 * MS, 0, Cause.UpstreamReset),
  new Row("connect failure", 503, UF, 1, 30 * MS, 0, Cause.UpstreamConnectFailure),
  new Row("no healthy upstream, never sent", 503, UH, 0, 1 * MS, 0, Cause.UpstreamConnectFailure),
  new Row("operator's timeout, no caller budget", 504, UT, 1, 1000 * MS, 0, Cause.UpstreamTimeout),
  new Row("max stream duration", 408, UMSDR, 1, 1000 * MS, 0, Cause.UpstreamTimeout),
  new Row("caller's budget ran out", 504, UT, 1, 12 * MS, 10, Cause.CallerTimeout),
  new Row("caller's budget ran out, within the tolerance", 504, UT, 1, (10 - CALLER_TIMEOUT_TOLERANCE_MS) * MS, 10, Cause.CallerTimeout),
  new Row("operator's shorter bound fired first", 504, UT, 1, (10 - CALLER_TIMEOUT_TOLERANCE_MS - 1) * MS, 10, Cause.UpstreamTimeout),
  new Row("a huge caller budget hides nothing", 504, UT, 1, 1000 * MS, 15000, Cause.UpstreamTimeout),
  new Row("unknown duration proves nothing", 504, UT, 1, -1, 10, Cause.UpstreamTimeout),
  new Row("504 from the next hop that ran the caller's budget out", 504, 0, 1, 11 * MS, 10, Cause.CallerTimeout),
  new Row("504 from the upstream before the caller's budget", 504, 0, 1, 3 * MS, 10, Cause.Answered),
  new Row("504 local reply (deadline refused)", 504, 0, 0, 0, 10, Cause.LocalReply),
  new Row("downstream disconnect", 0, DC, 1, 5 * MS, 0, Cause.DownstreamGone),
  new Row("downstream HTTP/2 reset", 0, DR, 1, 5 * MS, 0, Cause.DownstreamGone),
  new Row("upstream reset beats a later disconnect", 0, UR | DC, 1, 5 * MS, 0, Cause.UpstreamReset),
  new Row("Envoy's own overflow", 503, UO, 0, 0, 0, Cause.LocalOverflow),
  new Row("Envoy's own overflow on a retry", 503, UO, 1, 0, 0, Cause.LocalOverflow),
  new Row("no route", 404, NR, 0, 0, 0, Cause.NotSent),
  new Row("no cluster", 503, NC, 0, 0, 0, Cause.NotSent),
  new Row("never sent, no answer", 0, 0, 0, 0, 0, Cause.NotSent),
  new Row("an earlier stage's local reply", 503, 0, 0, 0, 0, Cause.LocalReply),
  new Row("sent, local reset, no code", 0, LR, 1, 0, 0, Cause.NoResponse),
];

describe("outcome classification (the table in ARCHITECTURE.md)", () => {
  it("gives each row its cause", () => {
    for (let i = 0; i < ROWS.length; i++) {
      const r = ROWS[i];
      const got = classify(r.code, r.flags, r.attempts, r.durationNs, r.callerBudgetMs);
      expect(CAUSE_NAMES[<i32>got]).toBe(CAUSE_NAMES[<i32>r.cause], r.what);
    }
  });

  it("blames the upstream only for resets, connect failures and the operator's timeouts", () => {
    expect(isUpstreamFailure(Cause.UpstreamReset)).toBe(true);
    expect(isUpstreamFailure(Cause.UpstreamConnectFailure)).toBe(true);
    expect(isUpstreamFailure(Cause.UpstreamTimeout)).toBe(true);
    expect(isUpstreamFailure(Cause.Answered)).toBe(false);
    expect(isUpstreamFailure(Cause.CallerTimeout)).toBe(false);
    expect(isUpstreamFailure(Cause.DownstreamGone)).toBe(false);
    expect(isUpstreamFailure(Cause.LocalOverflow)).toBe(false);
  });

  it("keeps every caller-caused or never-sent cause neutral", () => {
    for (let c = <i32>Cause.Answered; c <= <i32>Cause.NoResponse; c++) {
      const neutral = c >= <i32>Cause.CallerTimeout;
      expect(isNeutral(<Cause>c)).toBe(neutral, CAUSE_NAMES[c]);
      expect(isNeutral(<Cause>c) && isUpstreamFailure(<Cause>c)).toBe(false, CAUSE_NAMES[c]);
    }
  });

  it("consults the duration and the caller's budget only for a timeout", () => {
    expect(isTimeout(504, 0)).toBe(true);
    expect(isTimeout(200, UT)).toBe(true);
    expect(isTimeout(408, UMSDR)).toBe(true);
    expect(isTimeout(503, 0)).toBe(false);
    expect(isTimeout(0, DC)).toBe(false);
  });
});

describe("destination names", () => {
  it("has one spelling per host: lower case, no port, no trailing dot", () => {
    expect(normalizeName("Checkout.EXAMPLE.com.:8080")).toBe("checkout.example.com");
    expect(normalizeName("checkout.example.com")).toBe("checkout.example.com");
    expect(normalizeName("CHECKOUT.example.com")).toBe("checkout.example.com");
    expect(normalizeName("checkout.example.com:443")).toBe("checkout.example.com");
    expect(normalizeName("checkout.example.com.")).toBe("checkout.example.com");
    expect(normalizeName("checkout.example.com..")).toBe("checkout.example.com");
    expect(normalizeName("[::1]:8080")).toBe("[::1]");
    expect(normalizeName("10.0.0.1:80")).toBe("10.0.0.1");
    expect(normalizeName("")).toBe("");
    expect(normalizeName(".")).toBe("");
    expect(normalizeName("svc_A-1")).toBe("svc_a-1");
  });

  it("returns an already normal name itself (no allocation on the common path)", () => {
    const n = "inventory.svc";
    expect(changetype<usize>(normalizeName(n))).toBe(changetype<usize>(n));
  });
});
