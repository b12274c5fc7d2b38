/** outlier-breaker plugin configuration: a pure parser, bytes in, typed config or an error naming the field. */
import { ConfigReader, quoteList } from "../../assembly/config";
import { quoteJson } from "../../assembly/json";
import { formatNumber, allIn, NAME_DOT_LO, NAME_HI } from "../../assembly/text";
import { Destination } from "../common/destination";

export const FILTER_NAME = "outlier-breaker";

/** Outcome classes `failOn` may list; each maps to response codes or Envoy response flags (core.ts). */
export const FAIL_ON_CLASSES: string[] = ["5xx", "gateway-error", "reset", "connect-failure", "timeout"];

/** Bits of OutlierBreakerConfig.failOn, in FAIL_ON_CLASSES order. */
export namespace FailOn {
  // @ts-ignore: decorator
  @inline export const SERVER_ERROR: u32 = 1;
  // @ts-ignore: decorator
  @inline export const GATEWAY_ERROR: u32 = 2;
  // @ts-ignore: decorator
  @inline export const RESET: u32 = 4;
  // @ts-ignore: decorator
  @inline export const CONNECT_FAILURE: u32 = 8;
  // @ts-ignore: decorator
  @inline export const TIMEOUT: u32 = 16;
}

const DEFAULT_FAIL_ON: string[] = ["5xx", "reset", "connect-failure", "timeout"];

/** Shortest probe timeout: below it a probe slot is reclaimed before most upstreams could answer. */
// @ts-ignore: decorator
@inline export const MIN_PROBE_TIMEOUT_MS: u32 = 1000;
/** Shortest open time jitter may draw: an open breaker must at least shed load for this long. */
// @ts-ignore: decorator
@inline export const MIN_OPEN_MS: u32 = 100;
/** Headers the breaker's reply must own (framing, hop-by-hop, its own retry-after): never the state header. */
const RESERVED_RESPONSE_HEADERS: string[] = [
  "retry-after", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
  "trailer", "proxy-connection", "date", "server",
];
/** Request headers a client legitimately sends or Envoy routes by: the fallback header would strip them. */
const RESERVED_REQUEST_HEADERS: string[] = [
  "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
  "trailer", "proxy-connection", "authorization", "cookie", "x-request-id", "x-forwarded-for", "x-forwarded-proto",
];

export class OutlierBreakerConfig {
  destination: Destination = new Destination(0, null);
  /** One breaker per destination and upstream host (`upstream.address`) instead of per destination. */
  perHost: bool = false;
  /** Distinct breakers shared by all workers; destinations beyond it share one overflow breaker "other". */
  maxBreakers: i32 = 100;
  /** Failures in a row that open the breaker; 0 turns the rule off. */
  consecutiveFailures: u32 = 5;
  /** Percent of failed calls in the window that opens the breaker; 0 turns the rule off. */
  failureRateThreshold: u32 = 50;
  windowSeconds: u32 = 10;
  /** Calls the window must hold before either rate rule may open the breaker. */
  minimumRequests: u32 = 20;
  /** A call whose response headers take longer than this is slow. */
  slowCallMs: u32 = 1000;
  /** Percent of slow calls in the window that opens the breaker; 0 (default) turns the rule off. */
  slowCallRateThreshold: u32 = 0;
  /** FailOn bits. */
  failOn: u32 = FailOn.SERVER_ERROR | FailOn.RESET | FailOn.CONNECT_FAILURE | FailOn.TIMEOUT;
  /** Further response codes that count as failures (e.g. 429). */
  failureStatusCodes: u32[] = [];
  baseOpenMs: u32 = 5000;
  maxOpenMs: u32 = 60000;
  /** An open time is drawn uniformly from [(1 - jitter) x d, d]. */
  jitter: f64 = 0.1;
  /** Concurrent probe requests admitted while half-open. */
  halfOpenProbes: u32 = 3;
  /** Successful probes that close the breaker. */
  halfOpenSuccesses: u32 = 3;
  /** Probes without an answer this long after the newest of their pool was admitted are presumed lost: slots reclaimed, late answers still count. */
  probeTimeoutMs: u32 = 15000;
  /** Response header naming the breaker state on the breaker's own answers. */
  stateHeader: string = "x-breaker-state";
  /** When set, open-state requests get this request header (value: the state) and are re-routed instead of 503. */
  fallbackHeader: string = "";
}

/** Parses the configuration; on error returns null and `r.error` names the field and quotes the value. */
export function parseConfig(r: ConfigReader): OutlierBreakerConfig | null {
  const c = new OutlierBreakerConfig();
  c.destination = Destination.read(r, "cluster");
  c.perHost = r.bool("perHost", false);
  c.maxBreakers = <i32>r.u32("maxBreakers", 100, 1, 10000);
  c.consecutiveFailures = r.u32("consecutiveFailures", 5, 0, 100000);
  c.failureRateThreshold = r.u32("failureRateThreshold", 50, 0, 100);
  c.windowSeconds = r.u32("windowSeconds", 10, 1, 3600);
  c.minimumRequests = r.u32("minimumRequests", 20, 1, 1000000);
  c.slowCallMs = r.u32("slowCallMs", 1000, 1, 3600000);
  c.slowCallRateThreshold = r.u32("slowCallRateThreshold", 0, 0, 100);
  c.failOn = failOnBits(r.stringList("failOn", DEFAULT_FAIL_ON), r);
  c.failureStatusCodes = r.u32List("failureStatusCodes", [], 400, 599);
  c.baseOpenMs = r.u32("baseOpenMs", 5000, MIN_OPEN_MS, 86400000);
  c.maxOpenMs = r.u32("maxOpenMs", 60000, MIN_OPEN_MS, 86400000);
  c.jitter = r.number("jitter", 0.1, 0.0, 1.0);
  c.halfOpenProbes = r.u32("halfOpenProbes", 3, 1, 10000);
  c.halfOpenSuccesses = r.u32("halfOpenSuccesses", 3, 1, 10000);
  // Default: Envoy's default route timeout, by when Envoy itself answers a probe the upstream left hanging.
  c.probeTimeoutMs = r.u32("probeTimeoutMs", 15000, MIN_PROBE_TIMEOUT_MS, 86400000);
  c.stateHeader = headerName(r, "stateHeader", "x-breaker-state", false, RESERVED_RESPONSE_HEADERS, "the breaker's reply sets or frames");
  c.fallbackHeader = headerName(r, "fallbackHeader", "", true, RESERVED_REQUEST_HEADERS, "clients send or routing needs (the filter removes a client's copy)");
  r.done();
  if (r.error === null) crossCheck(c, r);
  return r.error === null ? c : null;
}

/** Combinations of valid fields that would misbehave: the first one found fails `r`, naming every field involved. */
function crossCheck(c: OutlierBreakerConfig, r: ConfigReader): void {
  const failureRules = c.consecutiveFailures != 0 || c.failureRateThreshold != 0;
  const nothingFails = c.failOn == 0 && c.failureStatusCodes.length == 0;
  if (c.maxOpenMs < c.baseOpenMs) {
    r.fail("maxOpenMs", "must be at least baseOpenMs (" + c.baseOpenMs.toString() + "), got " + c.maxOpenMs.toString());
  } else if (!failureRules && c.slowCallRateThreshold == 0) {
    r.fail("consecutiveFailures", "consecutiveFailures, failureRateThreshold and slowCallRateThreshold are all 0: nothing could open the breaker");
  } else if (nothingFails && c.slowCallRateThreshold == 0) {
    r.fail("failOn", "empty, and no failureStatusCodes: no call could ever count as a failure");
  } else if (nothingFails && failureRules) {
    r.fail("failOn", "empty, and no failureStatusCodes, yet consecutiveFailures (" + c.consecutiveFailures.toString() +
      ") or failureRateThreshold (" + c.failureRateThreshold.toString() + ") is set: those rules could never fire; set them to 0 for a slow-call-only breaker");
  } else if (c.slowCallRateThreshold != 0 && c.probeTimeoutMs <= c.slowCallMs) {
    r.fail("probeTimeoutMs", "must be above slowCallMs (" + c.slowCallMs.toString() + ") while slowCallRateThreshold is set: a probe's slot " +
      "would be reclaimed before it could be judged slow, got " + c.probeTimeoutMs.toString());
  } else if (<f64>c.baseOpenMs * (1.0 - c.jitter) < <f64>MIN_OPEN_MS) {
    const shortest = <i64>Math.floor(<f64>c.baseOpenMs * (1.0 - c.jitter));
    r.fail("jitter", "with baseOpenMs " + c.baseOpenMs.toString() + " an open time could be as short as " + shortest.toString() +
      " ms (under " + MIN_OPEN_MS.toString() + "): lower jitter or raise baseOpenMs, got " + quoteJson(formatNumber(c.jitter)));
  } else if (c.perHost && c.fallbackHeader.length > 0) {
    r.fail("fallbackHeader", "cannot be used with perHost: per-host breakers run in the cluster's upstream filter chain, after routing, " +
      "where a request can no longer be re-routed");
  }
}

function failOnBits(names: string[], r: ConfigReader): u32 {
  let bits: u32 = 0;
  for (let i = 0; i < names.length; i++) {
    const k = FAIL_ON_CLASSES.indexOf(names[i]);
    if (k < 0) {
      r.fail("failOn[" + i.toString() + "]", "expected one of " + quoteList(FAIL_ON_CLASSES) + ", got " + quoteJson(names[i]));
      return 0;
    }
    bits |= (<u32>1) << <u32>k;
  }
  return bits;
}

/** A lower-case HTTP header name (RFC 9110 token characters, no pseudo-header), not `reserved`; "" only when `allowEmpty`. */
function headerName(r: ConfigReader, key: string, def: string, allowEmpty: bool, reserved: string[], why: string): string {
  const name = r.string(key, def);
  if (name.length == 0) {
    if (!allowEmpty) r.fail(key, "must not be empty");
    return name;
  }
  if (!allIn(name, NAME_DOT_LO, NAME_HI)) {
    r.fail(key, "expected a lower-case header name ([a-z0-9._-]), got " + quoteJson(name));
    return def;
  }
  if (reserved.includes(name) || name.startsWith("x-envoy-")) {
    r.fail(key, "must not be a header " + why + ", got " + quoteJson(name));
    return def;
  }
  return name;
}
