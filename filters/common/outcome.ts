/**
 * What a finished request says about its upstream: the one classification every stage uses (breaker, canary rollback,
 * retry-budget success ratio, metrics). Host-free: `classify` takes the facts; `outcomeOf` reads them through the view,
 * the duration and the caller's budget only for a timeout, so the common path makes no extra host call.
 *
 *   checked in this order                                  cause                  counts against the upstream
 *   UR, UC, UPE                                            UpstreamReset          yes
 *   UF, UH                                                 UpstreamConnectFailure yes
 *   UT/UMSDR or 504, caller's budget ran out (duration)    CallerTimeout          no (the caller chose it)
 *   UT/UMSDR, any other                                    UpstreamTimeout        yes
 *   DC, DR                                                 DownstreamGone         no
 *   UO                                                     LocalOverflow          no (Envoy's own limit, load-driven)
 *   attempts 0, NR/NC or no code                           NotSent                no
 *   attempts 0, a code                                     LocalReply             no
 *   no code                                                NoResponse             no
 *   otherwise                                              Answered               by its code (the filter decides)
 */
import { ResponseFlag, StreamView } from "../../assembly/stream";

export enum Cause {
  /** The upstream answered; whether its code is a failure is the filter's decision. */
  Answered = 0,
  UpstreamReset = 1,
  UpstreamConnectFailure = 2,
  /** A timeout of a bound the operator set (route, per-try, max stream duration). */
  UpstreamTimeout = 3,
  /** A timeout of a budget the caller shortened, which the request ran out. */
  CallerTimeout = 4,
  /** The client disconnected (DC) or reset its stream (DR). */
  DownstreamGone = 5,
  /** Envoy's own circuit-breaker overflow (UO): capacity this Envoy refused, driven by load, not by the upstream. */
  LocalOverflow = 6,
  /** Answered locally before the router sent it (an earlier stage or filter). */
  LocalReply = 7,
  /** Never sent upstream (no route, no cluster) and not otherwise answered. */
  NotSent = 8,
  /** Sent, but no response code and no flag that blames the upstream (e.g. a local reset). */
  NoResponse = 9,
}

export const CAUSE_NAMES: string[] = [
  "answered", "upstream-reset", "upstream-connect-failure", "upstream-timeout", "caller-timeout", "downstream-gone",
  "local-overflow", "local-reply", "not-sent", "no-response",
];

const RESET_FLAGS: i64 = ResponseFlag.UPSTREAM_RESET | ResponseFlag.UPSTREAM_CONNECT_TERMINATION | ResponseFlag.UPSTREAM_PROTOCOL_ERROR;
const CONNECT_FLAGS: i64 = ResponseFlag.UPSTREAM_CONNECT_FAILURE | ResponseFlag.UPSTREAM_HEALTHY_NONE;
const TIMEOUT_FLAGS: i64 = ResponseFlag.UPSTREAM_TIMEOUT | ResponseFlag.UPSTREAM_MAX_STREAM_DURATION;
const GONE_FLAGS: i64 = ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION | ResponseFlag.DOWNSTREAM_REMOTE_RESET;
const UNROUTED_FLAGS: i64 = ResponseFlag.NO_ROUTE | ResponseFlag.NO_CLUSTER;

/** A timeout counts as the caller's when the request lasted at least its budget less this (ms rounding, timer start). */
// @ts-ignore: decorator
@inline export const CALLER_TIMEOUT_TOLERANCE_MS: i64 = 5;

/** True for an outcome that may be a timeout: only then are the duration and the caller's budget consulted. */
@inline export function isTimeout(code: i64, flags: i64): bool {
  return (flags & TIMEOUT_FLAGS) != 0 || code == 504;
}

/**
 * The cause of a finished request. `durationNs` (-1: unknown) and `callerBudgetMs` (0: the operator's bound applied)
 * matter only for a timeout: it is the caller's when a caller budget was in force and the request ran it out; a
 * request that ended earlier was stopped by the operator's shorter bound, and an unknown duration proves nothing.
 */
export function classify(code: i64, flags: i64, attempts: i64, durationNs: i64, callerBudgetMs: i64): Cause {
  if ((flags & RESET_FLAGS) != 0) return Cause.UpstreamReset;
  if ((flags & CONNECT_FLAGS) != 0) return Cause.UpstreamConnectFailure;
  if (isTimeout(code, flags) && attempts > 0) {
    if (callerBudgetMs > 0 && durationNs >= 0 && durationNs / 1_000_000 + CALLER_TIMEOUT_TOLERANCE_MS >= callerBudgetMs) {
      return Cause.CallerTimeout;
    }
    if ((flags & TIMEOUT_FLAGS) != 0) return Cause.UpstreamTimeout;
  }
  if ((flags & GONE_FLAGS) != 0) return Cause.DownstreamGone;
  if ((flags & ResponseFlag.UPSTREAM_OVERFLOW) != 0) return Cause.LocalOverflow;
  if (attempts <= 0) return code <= 0 || (flags & UNROUTED_FLAGS) != 0 ? Cause.NotSent : Cause.LocalReply;
  if (code <= 0) return Cause.NoResponse;
  return Cause.Answered;
}

/** True for a cause that blames the upstream whatever its code (reset, connect failure, operator's timeout). */
@inline export function isUpstreamFailure(cause: Cause): bool {
  return cause == Cause.UpstreamReset || cause == Cause.UpstreamConnectFailure || cause == Cause.UpstreamTimeout;
}

/** True for a cause that says nothing about the upstream: neutral for breakers, rollbacks and budgets. */
@inline export function isNeutral(cause: Cause): bool {
  return cause >= Cause.CallerTimeout;
}

/**
 * The cause of the view's finished request, classified once per stream (the combined module's stages share it).
 * Reads response.code, response.flags and the attempt count; request.duration and the caller's budget only for a
 * timeout.
 */
export function outcomeOf(view: StreamView): Cause {
  const known = view.outcomeCause;
  if (known >= 0) return <Cause>known;
  const code = view.responseCode();
  const flags = view.responseFlags();
  const attempts = view.attemptCount();
  const cause = isTimeout(code, flags) && attempts > 0
    ? classify(code, flags, attempts, view.requestDurationNs(), view.callerBudget())
    : classify(code, flags, attempts, -1, 0);
  view.outcomeCause = <i32>cause;
  return cause;
}
