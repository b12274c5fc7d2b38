/**
 * Host-free parts of the deadline filter: budget parsing (the project header, grpc-timeout, Envoy's expected timeout),
 * the default rules, the time-left decision, and the cross-hop slot table's value layout. Time is an argument (ms).
 */
import { DeadlineConfig, DefaultRule, Incoming, SLOTS_PER_KEY } from "./config";

/** "No deadline" for absolute times and "absent" for parsed budgets. */
// @ts-ignore: decorator
@inline export const NONE: i64 = -1;
/** Budgets above this are saturated while parsing (they are clamped to maxMs anyway): no overflow. */
// @ts-ignore: decorator
@inline const SATURATED_MS: i64 = 1_000_000_000_000_000;
/** Longest digit string accepted in a millisecond header; more is malformed, not a huge budget. */
// @ts-ignore: decorator
@inline const MAX_MS_DIGITS: i32 = 32;
/** grpc-timeout's TimeoutValue: a positive integer of at most 8 digits (gRPC over HTTP/2 spec). */
// @ts-ignore: decorator
@inline const MAX_GRPC_DIGITS: i32 = 8;

/** Where the budget a request ends up with came from: the `budget_source` metric label. */
export enum BudgetSource {
  Header = 0,
  GrpcTimeout = 1,
  EnvoyExpected = 2,
  RequestId = 3,
  Default = 4,
  None = 5,
}
export const BUDGET_SOURCE_LABELS: string[] = ["header", "grpc-timeout", "envoy-expected", "request-id", "default", "none"];

// ---------------------------------------------------------------- parsing

/** A millisecond count (`x-resilience-deadline-ms`, `x-envoy-expected-rq-timeout-ms`): digits only; NONE if malformed. */
export function parseMillis(value: string): i64 {
  const n = value.length;
  if (n == 0 || n > MAX_MS_DIGITS) return NONE;
  let v: i64 = 0;
  for (let i: i32 = 0; i < n; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return NONE;
    if (v < SATURATED_MS) v = v * 10 + <i64>d;
  }
  return v < SATURATED_MS ? v : SATURATED_MS;
}

/**
 * A `grpc-timeout` value (1 to 8 digits and one unit of H M S m u n) in whole milliseconds, rounded down
 * (a budget below 1 ms is already spent); NONE if malformed.
 */
export function parseGrpcTimeout(value: string): i64 {
  const n = value.length;
  if (n < 2 || n > MAX_GRPC_DIGITS + 1) return NONE;
  let v: i64 = 0;
  for (let i: i32 = 0; i < n - 1; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return NONE;
    v = v * 10 + <i64>d;
  }
  switch (value.charCodeAt(n - 1)) {
    case 0x48: return v * 3_600_000; // H
    case 0x4d: return v * 60_000;    // M
    case 0x53: return v * 1_000;     // S
    case 0x6d: return v;             // m
    case 0x75: return v / 1_000;     // u
    case 0x6e: return v / 1_000_000; // n
  }
  return NONE;
}

/** `grpc-timeout` for a budget: milliseconds while they fit 8 digits, else whole seconds (rounded down). */
export function formatGrpcTimeout(ms: i64): string {
  if (ms < 0) ms = 0;
  if (ms <= 99_999_999) return ms.toString() + "m";
  return (ms / 1_000).toString() + "S";
}

/** True for `application/grpc`, `application/grpc+proto`, `application/grpc-web...`: the reply must be gRPC. */
export function isGrpc(contentType: string | null): bool {
  return contentType !== null && contentType.startsWith("application/grpc");
}

/** The first rule matching the request's destination and path, else `fallbackMs` (0 = no default). */
export function defaultFor(rules: DefaultRule[], destination: string, path: string, fallbackMs: u32): u32 {
  for (let i: i32 = 0, n: i32 = rules.length; i < n; i++) {
    const rule = unchecked(rules[i]);
    if (rule.destination.length > 0 && rule.destination != destination) continue;
    if (rule.prefix.length > 0 && !path.startsWith(rule.prefix)) continue;
    return rule.ms;
  }
  return fallbackMs;
}

// ---------------------------------------------------------------- the decision

/** What this hop does with one request. */
export class Decision {
  source: BudgetSource = BudgetSource.None;
  /** Absolute deadline in ms since the epoch (before this hop's margin); NONE when the request has none. */
  deadlineMs: i64 = NONE;
  /** Time left for the next hop: deadline - now - margin (may be negative). */
  leftMs: i64 = 0;
  /** The incoming ask was cut (to maxMs, or to the default under `incoming: shorten`). */
  clamped: bool = false;
  /** leftMs is below minMs: answer 504 (when enforcing). */
  expired: bool = false;
}

/**
 * Combines what is known into the deadline and the time left.
 *   incomingMs   the first valid incoming budget (NONE if none), as read from `incomingSource`
 *   defaultMs    the default for this request (0 = none)
 *   tableMs      the absolute deadline found in the cross-hop table (NONE if none)
 *   originMs     when the request's first byte arrived (request.time), the budget's time zero
 * The earlier of the incoming deadline and the table's wins (a deadline only shrinks along a path);
 * the default applies when neither exists, and under `incoming: shorten` it also caps the incoming ask.
 */
export function decide(c: DeadlineConfig, incomingMs: i64, incomingSource: BudgetSource, defaultMs: u32,
                       tableMs: i64, originMs: i64, nowMs: i64): Decision {
  const d = new Decision();
  let deadline: i64 = NONE;
  if (incomingMs != NONE && c.incoming != Incoming.Ignore) {
    let budget = incomingMs;
    if (c.incoming == Incoming.Shorten && defaultMs != 0 && budget > <i64>defaultMs) {
      budget = <i64>defaultMs;
      d.clamped = true;
    }
    if (budget > <i64>c.maxMs) {
      budget = <i64>c.maxMs;
      d.clamped = true;
    }
    deadline = originMs + budget;
    d.source = incomingSource;
  }
  if (tableMs != NONE && (deadline == NONE || tableMs < deadline)) {
    deadline = tableMs;
    d.source = BudgetSource.RequestId;
  }
  if (deadline == NONE && defaultMs != 0) {
    deadline = originMs + <i64>min<u32>(defaultMs, c.maxMs);
    d.source = BudgetSource.Default;
  }
  if (deadline == NONE) return d;
  d.deadlineMs = deadline;
  d.leftMs = deadline - nowMs - <i64>c.marginMs;
  d.expired = d.leftMs < <i64>c.minMs;
  return d;
}

// ---------------------------------------------------------------- the cross-hop slot table
//
// `slots` slots in `slots / 4` shared-data keys `resilience.deadline.<table>.<k>`, each a 64-byte value:
//
//   offset 0           16          32          48          64
//          | slot 0    | slot 1    | slot 2    | slot 3    |     slot = u64 id hash (0: free) | i64 deadline ms
//
// A request id hashes to one key; within it, a slot holding the same hash is updated, else a free or expired one
// (deadline + grace in the past) is taken, else the slot with the earliest deadline is overwritten (an eviction).
// Nothing is ever deleted (ABI 0.2.1 has no delete): the key count is fixed by configuration.

// @ts-ignore: decorator
@inline const SLOT_BYTES: i32 = 16;
// @ts-ignore: decorator
@inline export const KEY_BYTES: i32 = SLOT_BYTES * <i32>SLOTS_PER_KEY;

/** FNV-1a (64-bit) of the request id's UTF-16 code units, mixed by MurmurHash3's finalizer; never 0 (a free slot). */
export function hashRequestId(id: string): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i: i32 = 0, n: i32 = id.length; i < n; i++) {
    h ^= <u64>id.charCodeAt(i);
    h *= 0x100000001b3;
  }
  // FNV's low bits depend only on the inputs' low bits; the finalizer spreads every bit before `% keys`.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return h != 0 ? h : 1;
}

/** The key (0 .. keys-1) a hash lives in. */
@inline export function keyIndexOf(hash: u64, keys: u32): u32 {
  return <u32>(hash % <u64>keys);
}

/** A key's value as stored, or a fresh all-free one when absent or of the wrong size (never trusted blindly). */
export function bucketOf(stored: ArrayBuffer | null): ArrayBuffer {
  if (stored !== null && stored.byteLength == KEY_BYTES) return stored;
  return new ArrayBuffer(KEY_BYTES);
}

@inline function hashAt(b: ArrayBuffer, i: i32): u64 {
  return load<u64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES));
}
@inline function deadlineAt(b: ArrayBuffer, i: i32): i64 {
  return load<i64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES + 8));
}
@inline function setSlot(b: ArrayBuffer, i: i32, hash: u64, deadlineMs: i64): void {
  store<u64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES), hash);
  store<i64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES + 8), deadlineMs);
}
@inline function isStale(deadlineMs: i64, nowMs: i64, graceMs: i64): bool {
  return deadlineMs + graceMs < nowMs;
}

/** The deadline stored for `hash`, or NONE when absent or stale (deadline + grace already past). */
export function findSlot(b: ArrayBuffer, hash: u64, nowMs: i64, graceMs: i64): i64 {
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) {
    if (hashAt(b, i) != hash) continue;
    const d = deadlineAt(b, i);
    return isStale(d, nowMs, graceMs) ? NONE : d;
  }
  return NONE;
}

/** How a put changed the bucket (the occupancy gauge moves by +1 for Added only). */
export enum PutOutcome {
  Added = 0,
  Updated = 1,
  ReusedStale = 2,
  Evicted = 3,
}

/** Writes hash -> deadline into the bucket (in place). */
export function putSlot(b: ArrayBuffer, hash: u64, deadlineMs: i64, nowMs: i64, graceMs: i64): PutOutcome {
  let free: i32 = -1;
  let stale: i32 = -1;
  let earliest: i32 = 0;
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) {
    const h = hashAt(b, i);
    if (h == hash) {
      setSlot(b, i, hash, deadlineMs);
      return PutOutcome.Updated;
    }
    if (h == 0) {
      if (free < 0) free = i;
      continue;
    }
    const d = deadlineAt(b, i);
    if (stale < 0 && isStale(d, nowMs, graceMs)) stale = i;
    if (d < deadlineAt(b, earliest)) earliest = i; // only consulted when no slot is free
  }
  if (free >= 0) {
    setSlot(b, free, hash, deadlineMs);
    return PutOutcome.Added;
  }
  if (stale >= 0) {
    setSlot(b, stale, hash, deadlineMs);
    return PutOutcome.ReusedStale;
  }
  setSlot(b, earliest, hash, deadlineMs);
  return PutOutcome.Evicted;
}

/** Frees the slot holding exactly (hash, deadline); false when another request has taken it since. */
export function releaseSlot(b: ArrayBuffer, hash: u64, deadlineMs: i64): bool {
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) {
    if (hashAt(b, i) == hash && deadlineAt(b, i) == deadlineMs) {
      setSlot(b, i, 0, 0);
      return true;
    }
  }
  return false;
}

/** Occupied slots of a bucket (stale ones included: they still take room until reused). */
export function usedSlots(b: ArrayBuffer): i32 {
  let n: i32 = 0;
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) if (hashAt(b, i) != 0) n++;
  return n;
}
