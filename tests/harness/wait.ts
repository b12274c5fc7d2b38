// The one way a test waits: poll a probe until it yields a value or a deadline passes. Never a fixed sleep.
//
//   const v = await waitFor("3 hits on service-a", async () => (up.hits.total >= 3 ? up.hits.total : notYet(up.hits.total)));
//   await waitUntil("breaker open counter", () => envoy.stat("x"), atLeast(1));
//   await envoy.waitForStat("cluster.a.upstream_rq_total", 25);      // a counter reaching 25
//   await envoy.waitForSeries("resilience_requests_total", { code: "503" }, 12);
//   await envoy.waitForLog(/rolled back/, { since: envoy.logOffset() });
//   await up.waitForHits(25);
// On timeout the error names what was awaited, how long, and the last value the probe saw (or the error it threw).

export interface WaitOptions {
  /** Give up after this long. Default 10 s: generous for a loaded 2-core machine, short enough to fail a run. */
  timeoutMs?: number;
  /** Pause between probes. Default 25 ms. */
  intervalMs?: number;
}

export const WAIT_TIMEOUT_MS = 10_000;
const WAIT_INTERVAL_MS = 25;

const NOT_YET = Symbol("notYet");
/** What a probe returns when the condition does not hold yet; `seen` is reported if the wait times out. */
export interface NotYet {
  readonly [NOT_YET]: true;
  readonly seen: unknown;
}

/** The probe's "not yet" answer carrying the value it saw, for the timeout message. */
export function notYet(seen?: unknown): NotYet {
  return { [NOT_YET]: true, seen };
}

function isNotYet(v: unknown): v is NotYet {
  return typeof v === "object" && v !== null && NOT_YET in v;
}

function show(v: unknown): string {
  if (v instanceof Error) return `error: ${v.message}`;
  if (typeof v === "string") return JSON.stringify(v.length > 2_000 ? `${v.slice(0, 2_000)}...` : v);
  try {
    const s = JSON.stringify(v);
    if (s === undefined) return String(v);
    return s.length > 2_000 ? `${s.slice(0, 2_000)}...` : s;
  } catch {
    return String(v);
  }
}

/** Error thrown when a wait times out; `lastSeen` is the probe's last answer. */
export class WaitTimeout extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly lastSeen: unknown,
  ) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${show(lastSeen)}`);
    this.name = "WaitTimeout";
  }
}

/**
 * Calls `probe` until it returns a value other than undefined / notYet(...); resolves with that value.
 * A probe that throws is retried (admin not answering yet, say); its last error is reported on timeout.
 * The probe runs at least once, even with timeoutMs 0.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | NotYet> | T | undefined | NotYet,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? WAIT_TIMEOUT_MS;
  const intervalMs = opts.intervalMs ?? WAIT_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  let seen: unknown = undefined;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && !isNotYet(v)) return v as T;
      seen = isNotYet(v) ? v.seen : v;
    } catch (e) {
      seen = e;
    }
    if (Date.now() >= deadline) throw new WaitTimeout(what, timeoutMs, seen);
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/** A condition on a value read by `read`, or a number meaning "at least that" (a counter reaching it). */
export type Accept<V> = ((v: V) => boolean) | number;

/** `v >= n`, for counters that only grow. */
export function atLeast(n: number): (v: number | undefined) => boolean {
  return (v) => v !== undefined && v >= n;
}

function acceptor<V>(accept: Accept<V>): (v: V) => boolean {
  return typeof accept === "number" ? (atLeast(accept) as unknown as (v: V) => boolean) : accept;
}

/** Describes an Accept for messages: "at least 3" or the predicate's source. */
export function describeAccept<V>(accept: Accept<V>): string {
  return typeof accept === "number" ? `>= ${accept}` : `${accept.toString().replace(/\s+/g, " ").slice(0, 120)}`;
}

/** Reads with `read` until `accept` holds; resolves with the accepted value (which may be undefined). */
export async function waitUntil<V>(what: string, read: () => Promise<V> | V, accept: Accept<V>, opts: WaitOptions = {}): Promise<V> {
  const ok = acceptor(accept);
  const box = await waitFor(`${what} (${describeAccept(accept)})`, async () => {
    const v = await read();
    return ok(v) ? { v } : notYet(v);
  }, opts);
  return box.v;
}
