// What tests/unit/config-corpus.test.ts mutates: each filter's configuration keys with their JSON kind and accepted
// range (as the filter's config.ts reads them), and hand-written contradictory configurations with the field each
// refusal must name (and, for cross-field checks, the other fields named in the same line).

export type Kind =
  | { t: "u32"; min: number; max: number }
  | { t: "f64"; min: number; max: number }
  | { t: "bool" }
  | { t: "string" }
  | { t: "enum"; values: string[] }
  | { t: "strings" }
  | { t: "u32s"; min: number; max: number }
  | { t: "object" }
  | { t: "objects" };

const u32 = (min: number, max: number): Kind => ({ t: "u32", min, max });
const f64 = (min: number, max: number): Kind => ({ t: "f64", min, max });
const BOOL: Kind = { t: "bool" };
const STRING: Kind = { t: "string" };
const oneOf = (...values: string[]): Kind => ({ t: "enum", values });
const DESTINATION = { destinationKey: oneOf("authority", "cluster", "header"), destinationHeader: STRING };

/** Keys per filter; "a.b" is key b of the object at a. */
export const SCHEMAS: Record<string, Record<string, Kind>> = {
  "retry-budget": {
    ...DESTINATION,
    retryRatio: f64(0, 10),
    minRetriesPerSecond: f64(0, 100000),
    windowSeconds: u32(1, 3600),
    maxRetries: u32(0, 10),
    retryOn: STRING,
    perTryTimeoutMs: u32(0, 86400000),
    adaptive: BOOL,
    trustClientHeaders: BOOL,
    maxDestinations: u32(1, 10000),
    syncIntervalMs: u32(10, 10000),
  },
  "outlier-breaker": {
    ...DESTINATION,
    perHost: BOOL,
    maxBreakers: u32(1, 10000),
    consecutiveFailures: u32(0, 100000),
    failureRateThreshold: u32(0, 100),
    windowSeconds: u32(1, 3600),
    minimumRequests: u32(1, 1000000),
    slowCallMs: u32(1, 3600000),
    slowCallRateThreshold: u32(0, 100),
    failOn: { t: "strings" },
    failureStatusCodes: { t: "u32s", min: 400, max: 599 },
    baseOpenMs: u32(100, 86400000),
    maxOpenMs: u32(100, 86400000),
    jitter: f64(0, 1),
    halfOpenProbes: u32(1, 10000),
    halfOpenSuccesses: u32(1, 10000),
    probeTimeoutMs: u32(1000, 86400000),
    stateHeader: STRING,
    fallbackHeader: STRING,
  },
  deadline: {
    ...DESTINATION,
    reporter: oneOf("inbound", "outbound", "gateway"),
    header: STRING,
    sources: { t: "strings" },
    incoming: oneOf("trust", "shorten", "ignore"),
    maxMs: u32(1, 86400000),
    minMs: u32(1, 86400000),
    marginMs: u32(0, 60000),
    defaultMs: u32(0, 86400000),
    defaults: { t: "objects" },
    enforce: BOOL,
    crossHop: { t: "object" },
    "crossHop.mode": oneOf("off", "record", "lookup"),
    "crossHop.table": STRING,
    "crossHop.slots": u32(4, 65536),
    "crossHop.graceMs": u32(0, 600000),
  },
  "traffic-split": {
    ...DESTINATION,
    revision: STRING,
    routingHeader: STRING,
    allowClientHeader: BOOL,
    syncIntervalMs: u32(50, 5000),
    subsets: { t: "objects" },
    stickyBy: { t: "objects" },
    rules: { t: "objects" },
    destinations: { t: "strings" },
    rollback: { t: "object" },
    "rollback.enabled": BOOL,
    "rollback.errorRate": f64(0, 1),
    "rollback.minRequests": u32(1, 1000000),
    "rollback.margin": f64(0, 1),
    "rollback.windowMs": u32(1000, 600000),
    "rollback.cooldownMs": u32(0, 86400000),
  },
  "service-metrics": {
    ...DESTINATION,
    reporter: oneOf("outbound", "inbound", "source", "destination"),
    naming: oneOf("resilience", "istio"),
    maxServices: u32(1, 10000),
    sourceWorkload: STRING,
    sourceNamespace: STRING,
    sourceApp: STRING,
    sourceVersion: STRING,
    sourceCanonicalService: STRING,
    sourceCanonicalRevision: STRING,
    sourceCluster: STRING,
    destinationWorkload: STRING,
    destinationNamespace: STRING,
    destinationApp: STRING,
    destinationVersion: STRING,
    destinationCanonicalService: STRING,
    destinationCanonicalRevision: STRING,
    destinationCluster: STRING,
    serviceNamespace: STRING,
    serviceDomain: STRING,
    maxPrincipals: u32(1, 10000),
    clientSecurityPolicy: oneOf("unknown", "observed"),
  },
};

/** A configuration (one filter's section) whose fields contradict each other or the filter's own limits. */
export interface Contradiction {
  title: string;
  config: Record<string, unknown>;
  /** The field the refusal names first. */
  field: string;
  /** Other fields the same line names (quoted), for the cross-field checks that quote them. */
  also: string[];
}

const c = (title: string, config: Record<string, unknown>, field: string, also: string[] = []): Contradiction => ({ title, config, field, also });

const CANARY = { subsets: [{ name: "stable" }, { name: "canary", weight: 10 }] };

export const CONTRADICTIONS: Record<string, Contradiction[]> = {
  "retry-budget": [
    c("a sync as long as the window", { windowSeconds: 10, syncIntervalMs: 10000 }, "syncIntervalMs", ["windowSeconds"]),
    c("a sync just over a quarter of the window", { windowSeconds: 1, syncIntervalMs: 251 }, "syncIntervalMs", ["windowSeconds"]),
    c("retries with nothing to grant them", { retryRatio: 0, minRetriesPerSecond: 0, maxRetries: 2 }, "maxRetries", ["retryRatio", "minRetriesPerSecond"]),
    c("an unknown retry condition", { retryOn: "5xx,connect_failure" }, "retryOn"),
    c("a header key without its header", { destinationKey: "header" }, "destinationHeader"),
  ],
  "traffic-split": [
    c("a sync at the rollback window", { syncIntervalMs: 5000, rollback: { windowMs: 5000 } }, "syncIntervalMs", ["rollback.windowMs"]),
    c("a sync just over a quarter of the window", { syncIntervalMs: 251, rollback: { windowMs: 1000 } }, "syncIntervalMs", ["rollback.windowMs"]),
    c("a ramp stepping faster than the sync", { ...CANARY, syncIntervalMs: 2000, rollback: { windowMs: 60000 },
      subsets: [{ name: "stable" }, { name: "canary", weight: 10, ramp: { intervalMs: 1000 } }] }, "subsets[1].ramp.intervalMs", ["syncIntervalMs"]),
    c("a margin no canary can exceed", { ...CANARY, rollback: { margin: 1 } }, "rollback.margin"),
    c("an error rate of 1", { ...CANARY, rollback: { errorRate: 1 } }, "rollback.errorRate"),
    c("a cool-down shorter than the window", { ...CANARY, rollback: { windowMs: 20000, cooldownMs: 5000 } }, "rollback.cooldownMs"),
    c("weights above 100%", { subsets: [{ name: "stable" }, { name: "a", weight: 60 }, { name: "b", weight: 50 }] }, "subsets"),
    c("ramps that would pass 100%", { subsets: [{ name: "stable" }, { name: "a", weight: 10, ramp: { maxPercent: 60 } }, { name: "b", weight: 10, ramp: { maxPercent: 60 } }] }, "subsets"),
    c("a baseline weight that is not the remainder", { subsets: [{ name: "stable", weight: 50 }, { name: "canary", weight: 10 }] }, "subsets[0].weight"),
    c("a ramp on the baseline", { subsets: [{ name: "stable", ramp: {} }, { name: "canary", weight: 10 }] }, "subsets[0].ramp"),
    c("a ramp's maximum below its weight", { subsets: [{ name: "stable" }, { name: "canary", weight: 30, ramp: { maxPercent: 20 } }] }, "subsets[1].ramp.maxPercent"),
    c("two subsets of one name", { subsets: [{ name: "stable" }, { name: "stable", weight: 10 }] }, "subsets[1].name"),
    c("a rule for an unknown subset", { ...CANARY, rules: [{ match: [{ header: "x-canary", exact: "1" }], subset: "canery" }] }, "rules[0].subset"),
    c("a selector with two sources", { ...CANARY, stickyBy: [{ header: "x-user", cookie: "uid" }] }, "stickyBy[0].cookie"),
    c("a condition with two operators", { ...CANARY, rules: [{ match: [{ header: "x-a", exact: "1", prefix: "2" }], subset: "canary" }] }, "rules[0].match[0].prefix"),
    c("no subsets at all", { subsets: [] }, "subsets"),
  ],
  "service-metrics": [
    c("Istio labels without Istio naming", { sourceWorkload: "gateway" }, "sourceWorkload", ["naming"]),
    c("Istio namespace labels under resilience naming", { naming: "resilience", destinationNamespace: "shop" }, "destinationNamespace", ["naming"]),
    c("a header key without its header", { destinationKey: "header" }, "destinationHeader"),
  ],
  deadline: [
    c("a floor above the ceiling", { minMs: 2000, maxMs: 1000 }, "minMs"),
    c("a default above the ceiling", { maxMs: 1000, defaultMs: 2000 }, "defaultMs"),
    c("a rule above the ceiling", { maxMs: 1000, defaults: [{ destination: "a", ms: 2000 }] }, "defaults[0].ms"),
    c("a margin that eats the whole default budget", { defaultMs: 100, marginMs: 100 }, "marginMs"),
    c("no sources while reading incoming budgets", { sources: [] }, "sources"),
    c("a source listed twice", { sources: ["header", "header"] }, "sources[1]"),
    c("a rule matching nothing", { defaults: [{ ms: 100 }] }, "defaults[0].destination"),
    c("a rule without ms", { defaults: [{ destination: "a" }] }, "defaults[0].ms"),
    c("a rule shadowed by an earlier one", { defaults: [{ destination: "a", ms: 100 }, { destination: "a", prefix: "/x", ms: 200 }] }, "defaults[1].prefix"),
    c("a rule prefix that is no path", { defaults: [{ prefix: "api", ms: 100 }] }, "defaults[0].prefix"),
    c("a margin that eats the whole ceiling", { maxMs: 50, marginMs: 50 }, "marginMs"),
    c("a margin that eats a rule's budget", { marginMs: 100, defaults: [{ destination: "a", ms: 100 }] }, "marginMs"),
    c("a header that is no header name", { header: "x deadline" }, "header"),
    c("a cross-hop table name with capitals", { crossHop: { table: "Main" } }, "crossHop.table"),
    c("a cross-hop slot count not a multiple of 4", { crossHop: { slots: 4097 } }, "crossHop.slots"),
  ],
  "outlier-breaker": [
    c("a maximum open time below the base", { baseOpenMs: 10000, maxOpenMs: 5000 }, "maxOpenMs"),
    c("nothing could open the breaker", { consecutiveFailures: 0, failureRateThreshold: 0, slowCallRateThreshold: 0 }, "consecutiveFailures"),
    c("no call could count as a failure", { failOn: [] }, "failOn"),
    c("an unknown failure class", { failOn: ["5xx", "timeouts"] }, "failOn[1]"),
    c("a fallback header with per-host breakers", { perHost: true, fallbackHeader: "x-fallback" }, "fallbackHeader"),
    c("failure rules with no call counted as a failure", { failOn: [], slowCallRateThreshold: 50 }, "failOn"),
    c("a probe timeout below the slow-call threshold", { slowCallRateThreshold: 50, slowCallMs: 5000, probeTimeoutMs: 5000 }, "probeTimeoutMs"),
    c("a jitter that makes open times too short", { baseOpenMs: 100, jitter: 0.5 }, "jitter"),
    c("an empty state header", { stateHeader: "" }, "stateHeader"),
    c("a state header the reply frames", { stateHeader: "content-length" }, "stateHeader"),
    c("a fallback header clients send", { fallbackHeader: "cookie" }, "fallbackHeader"),
    c("a fallback header that is no header name", { fallbackHeader: "X Fallback" }, "fallbackHeader"),
  ],
};
