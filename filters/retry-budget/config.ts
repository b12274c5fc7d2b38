/** retry-budget plugin configuration: a pure parser, bytes in, typed config or an error naming the field. */
import { ConfigReader } from "../../assembly/config";
import { Destination } from "../common/destination";
import { quoteJson } from "../../assembly/json";
import { splitOn } from "../../assembly/text";

export const FILTER_NAME = "retry-budget";

/** Conditions the router accepts in `x-envoy-retry-on` (HTTP; gRPC conditions use x-envoy-retry-grpc-on). */
export const RETRY_ON_CONDITIONS: string[] = [
  "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited", "retriable-4xx",
  "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
];

/** Longest retry count a request may be given (the router itself has no cap; this keeps headers small). */
// @ts-ignore: decorator
@inline export const MAX_RETRIES_CAP: u32 = 10;

export class RetryBudgetConfig {
  destination: Destination = new Destination(0, null);
  /** Retries each request deposits into its destination's budget. */
  retryRatio: f64 = 0.2;
  /** Retries per second always allowed, whatever the ratio says. */
  minRetriesPerSecond: f64 = 10.0;
  /** Length of the sliding window, held as BUCKETS time buckets. */
  windowSeconds: u32 = 10;
  /** Retries given to one request when the budget has them. */
  maxRetries: u32 = 2;
  /** Value set in x-envoy-retry-on when retries are given; "" leaves the route's own policy alone. */
  retryOn: string = "5xx";
  /** x-envoy-upstream-rq-per-try-timeout-ms set on every request; 0 sets none. */
  perTryTimeoutMs: u32 = 0;
  /** Shrink the ratio with the destination's attempt success ratio. */
  adaptive: bool = true;
  /** Keep the client's retry-on / max-retries / per-try timeout (the count is still capped by the budget). */
  trustClientHeaders: bool = false;
  /** Destinations with a budget of their own; later ones share one overflow budget ("other"). */
  maxDestinations: u32 = 100;
  /** How often a worker merges its counts into the shared budget and reads the other workers'. */
  syncIntervalMs: u32 = 100;
}

/** Parses the configuration; on error returns null and `r.error` names the field and quotes the value. */
export function parseConfig(r: ConfigReader): RetryBudgetConfig | null {
  const c = new RetryBudgetConfig();
  c.destination = Destination.read(r, "cluster");
  c.retryRatio = r.number("retryRatio", 0.2, 0.0, 10.0);
  c.minRetriesPerSecond = r.number("minRetriesPerSecond", 10.0, 0.0, 100000.0);
  c.windowSeconds = r.u32("windowSeconds", 10, 1, 3600);
  c.maxRetries = r.u32("maxRetries", 2, 0, MAX_RETRIES_CAP);
  c.retryOn = r.string("retryOn", "5xx");
  c.perTryTimeoutMs = r.u32("perTryTimeoutMs", 0, 0, 86400000);
  c.adaptive = r.bool("adaptive", true);
  c.trustClientHeaders = r.bool("trustClientHeaders", false);
  c.maxDestinations = r.u32("maxDestinations", 100, 1, 10000);
  c.syncIntervalMs = r.u32("syncIntervalMs", 100, 10, 10000);
  checkContradictions(r, c);
  const bad = unknownCondition(c.retryOn);
  if (bad !== null) r.fail("retryOn", "unknown retry condition " + quoteJson(bad) + " in " + quoteJson(c.retryOn) + "; known: " + RETRY_ON_CONDITIONS.join(", "));
  r.done();
  return r.error === null ? c : null;
}

/** Cross-field checks: each names both fields. */
function checkContradictions(r: ConfigReader, c: RetryBudgetConfig): void {
  // A worker's counts reach the others one sync later; a sync slower than a quarter window hides most of the window.
  const quarter = c.windowSeconds * 1000 / 4;
  if (c.syncIntervalMs > quarter) {
    r.fail("syncIntervalMs", "expected at most a quarter of " + quoteJson(r.prefix + "windowSeconds") + " (" + quarter.toString() +
      " ms), got " + c.syncIntervalMs.toString() + "; counts merged later than that leave the window before other workers see them");
  }
  if (c.maxRetries > 0 && c.retryRatio == 0.0 && c.minRetriesPerSecond == 0.0) {
    r.fail("maxRetries", "is " + c.maxRetries.toString() + " but " + quoteJson(r.prefix + "retryRatio") + " and " + quoteJson(r.prefix + "minRetriesPerSecond") +
      " are both 0, so no retry can ever be granted; set maxRetries to 0 to disable retries");
  }
}

/** The first comma-separated condition of `retryOn` the router does not know, or null when all are known. */
export function unknownCondition(retryOn: string): string | null {
  if (retryOn.length == 0) return null;
  const parts = splitOn(retryOn, ",");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i].trim();
    if (!RETRY_ON_CONDITIONS.includes(p)) return p;
  }
  return null;
}
