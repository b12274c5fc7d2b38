/**
 * Host-free parts of the deadline filter: budget parsing (the project header, grpc-timeout, Envoy's expected timeout),
 * the default rules, the time-left decision, and the cross-hop slot table's value layout. Time is an argument (ms).
 */
import { DeadlineConfig, DefaultRule, Incoming, SLOTS_PER_KEY } from "./config";
import { fmix64, hashText } from "../../assembly/hash";

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

/** Which router header carries the time left. */
export enum TimeoutHeader {
  /** None (no deadline, or a dry run). */
  None = 0,
  /** `x-envoy-upstream-rq-timeout-ms`: replaces the route's timeout, so only a bound the operator gave goes there. */
  Global = 1,
  /** `x-envoy-upstream-rq-per-try-timeout-ms`: can only lower the route's timeout (each attempt gets it). */
  PerTry = 2,
}

/** What this hop does with one request. */
export class Decision {
  source: BudgetSource = BudgetSource.None;
  /** Absolute deadline in ms since the epoch (before this hop's margin); NONE when the request has none. */
  deadlineMs: i64 = NONE;
  /** Time left for the next hop: deadline - now - margin (may be negative). */
  leftMs: i64 = 0;
  /** The incoming ask was cut (to maxMs, or to the operator's bound under `incoming: shorten`). */
  clamped: bool = false;
  /** leftMs is below minMs: answer 504 (when enforcing). */
  expired: bool = false;
  /** The deadline came from a caller (a header, or a table entry a caller's budget set), below the operator's bound. */
  callerBound: bool = false;
  /** The router header to set (enforcing only). */
  timeout: TimeoutHeader = TimeoutHeader.None;
}

/**
 * Combines what is known into the deadline, the time left and the router header to set.
 *   incomingMs   the smallest valid incoming budget (NONE if none), from `incomingSource`
 *   defaultMs    the operator's default for this request (0 = none: the route's own timeout is the bound)
 *   tableMs      the absolute deadline found in the cross-hop table (NONE if none)
 *   tableCaller  that entry's deadline was a caller's budget (not the recording hop's default)
 *   originMs     when the request's first byte arrived (request.time), the budget's time zero
 * The earlier of the incoming deadline and the table's is the ask (a deadline only shrinks along a path). Under
 * `shorten` the ask only ever lowers the operator's bound: the default when one applies (the router header then
 * replaces the route's timeout with something at or below what the operator set), else the route's own timeout (the
 * per-try header, which Envoy never lets exceed it). Under `trust` the ask is itself taken as the operator's bound.
 */
export function decide(c: DeadlineConfig, incomingMs: i64, incomingSource: BudgetSource, defaultMs: u32,
                       tableMs: i64, tableCaller: bool, originMs: i64, nowMs: i64): Decision {
  const d = new Decision();
  let ask: i64 = NONE;
  let askCaller = false;
  if (incomingMs != NONE && c.incoming != Incoming.Ignore) {
    let budget = incomingMs;
    if (budget > <i64>c.maxMs) {
      budget = <i64>c.maxMs;
      d.clamped = true;
    }
    ask = originMs + budget;
    askCaller = true;
    d.source = incomingSource;
  }
  if (tableMs != NONE && (ask == NONE || tableMs < ask)) {
    ask = tableMs;
    askCaller = tableCaller;
    d.source = BudgetSource.RequestId;
  }
  const bound: i64 = defaultMs != 0 ? originMs + <i64>min<u32>(defaultMs, c.maxMs) : NONE;
  let deadline: i64 = NONE;
  if (ask == NONE) {
    if (bound == NONE) return d;
    deadline = bound;
    d.source = BudgetSource.Default;
    d.timeout = TimeoutHeader.Global;
  } else if (bound == NONE) {
    deadline = ask;
    d.callerBound = askCaller;
    d.timeout = c.incoming == Incoming.Trust ? TimeoutHeader.Global : TimeoutHeader.PerTry;
  } else if (ask < bound) {
    deadline = ask;
    d.callerBound = askCaller;
    d.timeout = TimeoutHeader.Global;
  } else if (c.incoming == Incoming.Trust) {
    deadline = ask;
    d.timeout = TimeoutHeader.Global;
  } else {
    deadline = bound;
    if (ask > bound) d.clamped = true;
    d.timeout = TimeoutHeader.Global;
  }
  if (!c.enforce) {
    d.timeout = TimeoutHeader.None;
    d.callerBound = false;
  }
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
//          | slot 0    | slot 1    | slot 2    | slot 3    |     slot = u64 id hash (0: free) | u64 entry
//
//   entry   bits 0-47 deadline ms since the epoch | bits 48-55 holders (requests in flight with this id) | bit 56 caller
//
// A request id hashes to one key. Within it, a live slot of the same id keeps the earlier deadline and gains a holder;
// else a free or stale slot (deadline + grace in the past) is taken; else the record is refused (counted): a live
// entry is never pushed out, so a caller holding many long budgets cannot evict anyone else's. A holder releases only
// a slot whose deadline is at or before its own (so never an entry recorded after its own went stale), and the slot
// is freed only when its last holder leaves. Nothing is ever deleted (ABI 0.2.1 has no delete): the key count is fixed.

// @ts-ignore: decorator
@inline const SLOT_BYTES: i32 = 16;
// @ts-ignore: decorator
@inline export const KEY_BYTES: i32 = SLOT_BYTES * <i32>SLOTS_PER_KEY;
// @ts-ignore: decorator
@inline const DEADLINE_MASK: u64 = 0xffff_ffff_ffff;
// @ts-ignore: decorator
@inline const HOLDER_SHIFT: u64 = 48;
// @ts-ignore: decorator
@inline const MAX_HOLDERS: u64 = 0xff;
// @ts-ignore: decorator
@inline const CALLER_BIT: u64 = <u64>1 << 56;

/** An entry word: deadline, holders (saturating at 255: then kept until stale), caller flag. */
@inline export function packEntry(deadlineMs: i64, holders: u64, caller: bool): u64 {
  return (<u64>deadlineMs & DEADLINE_MASK) | (min<u64>(holders, MAX_HOLDERS) << HOLDER_SHIFT) | (caller ? CALLER_BIT : 0);
}
/** The deadline of an entry word (ms since the epoch). */
@inline export function entryDeadline(e: u64): i64 { return <i64>(e & DEADLINE_MASK); }
/** Requests in flight holding the entry. */
@inline export function entryHolders(e: u64): u64 { return (e >> HOLDER_SHIFT) & MAX_HOLDERS; }
/** True when the entry's deadline was a caller's budget (not the recording hop's default). */
@inline export function entryCaller(e: u64): bool { return (e & CALLER_BIT) != 0; }

/** The request id's hash (assembly/hash.ts: FNV-1a 64 of its UTF-8, finalized so `% keys` sees every bit); never 0 (a free slot). */
export function hashRequestId(id: string): u64 {
  const h = fmix64(hashText(id));
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
@inline function entryAt(b: ArrayBuffer, i: i32): u64 {
  return load<u64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES + 8));
}
@inline function setSlot(b: ArrayBuffer, i: i32, hash: u64, entry: u64): void {
  store<u64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES), hash);
  store<u64>(changetype<usize>(b) + <usize>(i * SLOT_BYTES + 8), entry);
}
@inline function isStale(deadlineMs: i64, nowMs: i64, graceMs: i64): bool {
  return deadlineMs + graceMs < nowMs;
}

/** The entry stored for `hash`, or 0 when absent or stale (deadline + grace already past). */
export function findSlot(b: ArrayBuffer, hash: u64, nowMs: i64, graceMs: i64): u64 {
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) {
    if (hashAt(b, i) != hash) continue;
    const e = entryAt(b, i);
    return isStale(entryDeadline(e), nowMs, graceMs) ? 0 : e;
  }
  return 0;
}

/** How a put changed the bucket (the occupancy gauge moves by +1 for Added only). */
export enum PutOutcome {
  /** A free slot was taken. */
  Added = 0,
  /** A live entry of the same id gained a holder (and the earlier deadline). */
  Joined = 1,
  /** A stale slot was reused. */
  ReusedStale = 2,
  /** Every slot of the key holds a live entry of another id: nothing written. */
  Full = 3,
}

/** Records hash -> deadline in the bucket (in place, unless Full). */
export function putSlot(b: ArrayBuffer, hash: u64, deadlineMs: i64, caller: bool, nowMs: i64, graceMs: i64): PutOutcome {
  let free: i32 = -1;
  let stale: i32 = -1;
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) {
    const h = hashAt(b, i);
    if (h == 0) {
      if (free < 0) free = i;
      continue;
    }
    const e = entryAt(b, i);
    const d = entryDeadline(e);
    if (h == hash) {
      if (isStale(d, nowMs, graceMs)) {
        setSlot(b, i, hash, packEntry(deadlineMs, 1, caller));
        return PutOutcome.ReusedStale;
      }
      const holders = entryHolders(e);
      const more = holders < MAX_HOLDERS ? holders + 1 : holders;
      // The earlier deadline stands: a duplicate id can shorten the entry, never lengthen it.
      setSlot(b, i, hash, deadlineMs < d ? packEntry(deadlineMs, more, caller) : packEntry(d, more, entryCaller(e)));
      return PutOutcome.Joined;
    }
    if (stale < 0 && isStale(d, nowMs, graceMs)) stale = i;
  }
  if (free >= 0) {
    setSlot(b, free, hash, packEntry(deadlineMs, 1, caller));
    return PutOutcome.Added;
  }
  if (stale >= 0) {
    setSlot(b, stale, hash, packEntry(deadlineMs, 1, caller));
    return PutOutcome.ReusedStale;
  }
  return PutOutcome.Full;
}

/** What a release did. */
export enum ReleaseOutcome {
  /** No slot of this id at or before the releaser's deadline: someone else's entry now, or already gone. */
  NotHeld = 0,
  /** Another request with the same id still holds it. */
  Left = 1,
  /** The last holder left: the slot is free. */
  Freed = 2,
  /** The holder count saturated: the entry stays until stale. */
  Saturated = 3,
}

/** Drops one hold of the slot of `hash` recorded by a request whose own deadline was `deadlineMs` (in place). */
export function releaseSlot(b: ArrayBuffer, hash: u64, deadlineMs: i64): ReleaseOutcome {
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) {
    if (hashAt(b, i) != hash) continue;
    const e = entryAt(b, i);
    const holders = entryHolders(e);
    // A later deadline is an entry recorded after this request's own went stale: not this request's to release.
    if (entryDeadline(e) > deadlineMs || holders == 0) return ReleaseOutcome.NotHeld;
    if (holders >= MAX_HOLDERS) return ReleaseOutcome.Saturated;
    if (holders == 1) {
      setSlot(b, i, 0, 0);
      return ReleaseOutcome.Freed;
    }
    setSlot(b, i, hash, packEntry(entryDeadline(e), holders - 1, entryCaller(e)));
    return ReleaseOutcome.Left;
  }
  return ReleaseOutcome.NotHeld;
}

/** Occupied slots of a bucket (stale ones included: they still take room until reused). */
export function usedSlots(b: ArrayBuffer): i32 {
  let n: i32 = 0;
  for (let i: i32 = 0; i < <i32>SLOTS_PER_KEY; i++) if (hashAt(b, i) != 0) n++;
  return n;
}
