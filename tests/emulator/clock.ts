// The fake clock read by proxy_get_current_time_nanoseconds (realtime) and WASI clock_time_get (realtime / monotonic).
import { EmulatorError } from "./errors.js";

/** 2026-01-01T00:00:00Z in ns: a fixed default start so tests are reproducible. */
export const DEFAULT_START_NS = 1_767_225_600_000_000_000n;
const MONOTONIC_START_NS = 1_000_000_000n;

/** A controllable clock. Advancing moves realtime and monotonic together; setting realtime is a wall-clock jump. */
export class FakeClock {
  private realtimeNs: bigint;
  private monotonicNs = MONOTONIC_START_NS;

  constructor(startNs: bigint = DEFAULT_START_NS) {
    this.realtimeNs = startNs;
  }

  /** Wall-clock ns since the Unix epoch. */
  get nowNs(): bigint {
    return this.realtimeNs;
  }

  /** Wall-clock ms since the Unix epoch (floored). */
  get nowMs(): number {
    return Number(this.realtimeNs / 1_000_000n);
  }

  get monotonicNowNs(): bigint {
    return this.monotonicNs;
  }

  /** Jumps the wall clock (monotonic time is unaffected, as on a real host). */
  setNs(ns: bigint): void {
    if (ns < 0n) throw new EmulatorError(`clock.setNs(${ns}): time before the epoch`);
    this.realtimeNs = ns;
  }

  advanceNs(ns: bigint): void {
    if (ns < 0n) throw new EmulatorError(`clock.advanceNs(${ns}): time only moves forward; use setNs for a wall-clock jump`);
    this.realtimeNs += ns;
    this.monotonicNs += ns;
  }

  advanceMs(ms: number | bigint): void {
    if (typeof ms === "number" && !Number.isInteger(ms)) {
      this.advanceNs(BigInt(Math.round(ms * 1_000_000)));
    } else {
      this.advanceNs(BigInt(ms) * 1_000_000n);
    }
  }
}
