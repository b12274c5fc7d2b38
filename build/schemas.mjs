// Writes schemas/<module>.schema.json (JSON Schema 2020-12, for editors and CI linters) and schemas/types.d.ts (the
// TypeScript types of every module's configuration) from one description of each filter's configuration, as its
// config.ts reads it. The modules' own parsers stay the authority: tests/unit/schemas.test.ts runs every shipped
// configuration and the whole bad-config corpus through both and requires the same verdict wherever JSON Schema can
// decide; CLI_ONLY lists the rules it cannot express (the validator CLI, which runs the module, knows them all).
//   node build/schemas.mjs           write the files
//   node build/schemas.mjs --check   exit 1 when the files on disk differ from what would be written
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const OUT = join(root, "schemas");
const VERSION = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const MAX_MS = 86400000;

// ------------------------------------------------------------------ a small description language

/** A whole number in [min, max] (3, 3.0 and 3e0 are all 3). */
const int = (min, max, def, doc) => ({ k: "int", min, max, def, doc });
/** A number in [min, max], or [min, max) with `below`. */
const num = (min, max, def, doc, below = false) => ({ k: "num", min, max, def, doc, below });
const bool = (def, doc) => ({ k: "bool", def, doc });
/** A string; `extra` adds JSON Schema keywords (pattern, minLength, not...). */
const str = (def, doc, extra = {}) => ({ k: "str", def, doc, extra });
const oneOf = (values, def, doc) => ({ k: "enum", values, def, doc });
/** An array of `item` (strings, enums or ints); `extra`: minItems, maxItems, uniqueItems. */
const list = (item, def, doc, extra = {}) => ({ k: "list", item, def, doc, extra });
/** An object read with done(): unknown keys refused; `rules` are JSON Schema subschemas that must all hold. */
const obj = (props, doc, rules = [], extra = {}) => ({ k: "obj", props, doc, rules, extra });
/** An array of objects. */
const objs = (item, doc, extra = {}) => ({ k: "objs", item, doc, extra });

const TYPE = { int: "integer", num: "number", bool: "boolean", str: "string", enum: "string", list: "array", obj: "object", objs: "array" };

/** JSON Schema of a value; `nullable`: a member's value, where null reads as absent (ConfigReader.take). */
function schemaOf(s, nullable) {
  const out = {};
  if (s.doc) out.description = s.def === undefined ? s.doc : `${s.doc} Default: ${JSON.stringify(s.def)}.`;
  const type = TYPE[s.k];
  if (s.k === "enum") out.enum = nullable ? [...s.values, null] : [...s.values];
  else out.type = nullable ? [type, "null"] : type;
  if (s.def !== undefined) out.default = s.def;
  switch (s.k) {
    case "int": out.minimum = s.min; out.maximum = s.max; break;
    case "num": out.minimum = s.min; if (s.below) out.exclusiveMaximum = s.max; else out.maximum = s.max; break;
    case "str": Object.assign(out, s.extra); break;
    case "list": out.items = schemaOf(s.item, false); Object.assign(out, s.extra); break;
    case "obj": {
      // A required key's null is not "absent": the parser refuses it, so only the value's own type is allowed.
      const required = s.extra.required ?? [];
      out.properties = Object.fromEntries(Object.entries(s.props).map(([k, v]) => [k, schemaOf(v, !required.includes(k))]));
      out.additionalProperties = false;
      Object.assign(out, s.extra);
      if (s.rules.length > 0) out.allOf = s.rules;
      break;
    }
    case "objs": {
      const { first, ...extra } = s.extra;
      const item = schemaOf(s.item, false);
      // prefixItems: the first element's own extra rule (then `items` covers the rest).
      if (first) out.prefixItems = [{ allOf: [item, first] }];
      out.items = item;
      Object.assign(out, extra);
      break;
    }
  }
  return out;
}

/** TypeScript type of a value. */
function typeOf(s, indent) {
  switch (s.k) {
    case "int": case "num": return "number";
    case "bool": return "boolean";
    case "str": return "string";
    case "enum": return s.values.map((v) => JSON.stringify(v)).join(" | ");
    case "list": { const t = typeOf(s.item, indent); return t.includes("|") ? `Array<${t}>` : `${t}[]`; }
    case "objs": return `Array<${typeOf(s.item, indent)}>`;
    case "obj": {
      const lines = Object.entries(s.props).map(([k, v]) => {
        const doc = v.doc ? `${indent}  /** ${v.doc}${v.def === undefined ? "" : ` Default: ${JSON.stringify(v.def)}.`} */\n` : "";
        const key = /^[A-Za-z_]\w*$/u.test(k) ? k : JSON.stringify(k);
        const required = (s.extra.required ?? []).includes(k);
        return `${doc}${indent}  ${key}${required ? "" : "?"}: ${typeOf(v, indent + "  ")}${required ? "" : " | null"};`;
      });
      return `{\n${lines.join("\n")}\n${indent}}`;
    }
  }
}

// ------------------------------------------------------------------ rule helpers (JSON Schema fragments)

/** `key` is present with a value matching `schema` (which excludes null). */
const has = (key, schema) => ({ required: [key], properties: { [key]: schema } });
/** `key` is absent or null (the parser then uses its default). */
const unset = (key) => ({ properties: { [key]: { type: "null" } } });
/** `key` is absent, null, or matches `schema`. */
const unsetOr = (key, schema) => ({ properties: { [key]: { anyOf: [{ type: "null" }, schema] } } });
const never = (what, schema) => ({ description: what, not: schema });
const when = (what, cond, then) => ({ description: what, if: cond, then });
const NUMBER = { type: "number" };

/**
 * `a` ≤ `b` (or < with `strict`) where one of them is left at its default: JSON Schema cannot compare two values, so
 * with both set only the CLI decides (listed in CLI_ONLY). `cond` narrows when the rule applies.
 */
function atMost(a, defA, b, defB, what, { strict = false, cond = [] } = {}) {
  return [
    when(`${what} (${b} at its default ${defB})`, { allOf: [has(a, NUMBER), unset(b), ...cond] },
      { properties: { [a]: strict ? { exclusiveMaximum: defB } : { maximum: defB } } }),
    when(`${what} (${a} at its default ${defA})`, { allOf: [has(b, NUMBER), unset(a), ...cond] },
      { properties: { [b]: strict ? { exclusiveMinimum: defA } : { minimum: defA } } }),
  ];
}

// ------------------------------------------------------------------ the filters, as their config.ts reads them

const DESTINATION_KINDS = ["authority", "cluster", "header"];
const destination = (def) => ({
  destinationKey: oneOf(DESTINATION_KINDS, def, "What a request's destination is: its :authority (normalised), the routed cluster, or a header."),
  destinationHeader: str("", "The header naming the destination when destinationKey is \"header\"."),
});
const destinationRule = when("destinationHeader is required when destinationKey is \"header\"",
  has("destinationKey", { const: "header" }), has("destinationHeader", { type: "string", minLength: 1 }));

const RETRY_ON = ["5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited", "retriable-4xx",
  "refused-stream", "retriable-status-codes", "retriable-headers", "http3-post-connect-failure"];
const retryOnItem = `\\s*(?:${RETRY_ON.join("|")})\\s*`;

/** retry-budget: windowSeconds and syncIntervalMs enumerated (sync ≤ window / 4 for every window below 40 s). */
function syncQuarterOfWindow() {
  const rules = [];
  for (let k = 2; k <= 40; k++) {
    const lo = 250 * (k - 1);
    rules.push(when(`syncIntervalMs above ${lo} needs windowSeconds of at least ${k} (a quarter of the window)`,
      has("syncIntervalMs", { type: "number", exclusiveMinimum: lo }),
      k <= 10 ? { properties: { windowSeconds: { minimum: k } } } : has("windowSeconds", { type: "number", minimum: k })));
  }
  return rules;
}

const RETRY_BUDGET = obj({
  ...destination("cluster"),
  retryRatio: num(0, 10, 0.2, "Retries each request deposits into its destination's budget."),
  minRetriesPerSecond: num(0, 100000, 10, "Retries per second always allowed, whatever the ratio says."),
  windowSeconds: int(1, 3600, 10, "Length of the sliding window."),
  maxRetries: int(0, 10, 2, "Retries given to one request when the budget has them."),
  retryOn: str("5xx", "x-envoy-retry-on set when retries are given: comma-separated router conditions; \"\" leaves the route's policy alone.",
    { pattern: `^(?:${retryOnItem}(?:,${retryOnItem})*)?$` }),
  perTryTimeoutMs: int(0, MAX_MS, 0, "x-envoy-upstream-rq-per-try-timeout-ms set on every request; 0 sets none."),
  adaptive: bool(true, "Shrink the ratio with the destination's attempt success ratio."),
  trustClientHeaders: bool(false, "Keep the client's retry headers (the count is still capped by the budget)."),
  maxDestinations: int(1, 10000, 100, "Destinations with a budget of their own; later ones share one overflow budget."),
  syncIntervalMs: int(10, 10000, 100, "How often a worker merges its counts into the shared budget; at most a quarter of the window."),
}, "retry-budget plugin configuration (filters/retry-budget/README.md).", [
  destinationRule,
  ...syncQuarterOfWindow(),
  never("maxRetries above 0 while retryRatio and minRetriesPerSecond are both 0 (no retry could be granted)", {
    allOf: [has("retryRatio", { const: 0 }), has("minRetriesPerSecond", { const: 0 }), unsetOr("maxRetries", { exclusiveMinimum: 0 })],
  }),
]);

const FAIL_ON = ["5xx", "gateway-error", "reset", "connect-failure", "timeout"];
const RESERVED_RESPONSE = ["retry-after", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
  "trailer", "proxy-connection", "date", "server"];
const RESERVED_REQUEST = ["host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
  "trailer", "proxy-connection", "authorization", "cookie", "x-request-id", "x-forwarded-for", "x-forwarded-proto"];
const breakerHeader = (reserved, allowEmpty) => ({
  pattern: allowEmpty ? "^[a-z0-9._-]*$" : "^[a-z0-9._-]+$",
  not: { anyOf: [{ enum: reserved }, { pattern: "^x-envoy-" }] },
});
const NOTHING_FAILS = [has("failOn", { type: "array", maxItems: 0 }), unsetOr("failureStatusCodes", { maxItems: 0 })];
const SLOW_RULE_ON = has("slowCallRateThreshold", { type: "number", exclusiveMinimum: 0 });

const OUTLIER_BREAKER = obj({
  ...destination("cluster"),
  perHost: bool(false, "One breaker per destination and upstream host instead of per destination."),
  maxBreakers: int(1, 10000, 100, "Distinct breakers shared by all workers; more destinations share one overflow breaker."),
  consecutiveFailures: int(0, 100000, 5, "Failures in a row that open the breaker; 0 turns the rule off."),
  failureRateThreshold: int(0, 100, 50, "Percent of failed calls in the window that opens the breaker; 0 turns the rule off."),
  windowSeconds: int(1, 3600, 10, "Length of the rate window."),
  minimumRequests: int(1, 1000000, 20, "Calls the window must hold before a rate rule may open the breaker."),
  slowCallMs: int(1, 3600000, 1000, "A call whose response headers take longer than this is slow."),
  slowCallRateThreshold: int(0, 100, 0, "Percent of slow calls in the window that opens the breaker; 0 turns the rule off."),
  failOn: list(oneOf(FAIL_ON), ["5xx", "reset", "connect-failure", "timeout"], "Outcomes that count as failures."),
  failureStatusCodes: list(int(400, 599), [], "Further response codes that count as failures (e.g. 429)."),
  baseOpenMs: int(100, MAX_MS, 5000, "First open time; doubles on each re-open up to maxOpenMs."),
  maxOpenMs: int(100, MAX_MS, 60000, "Longest open time; at least baseOpenMs."),
  jitter: num(0, 1, 0.1, "An open time is drawn from [(1 - jitter) x d, d]; never under 100 ms."),
  halfOpenProbes: int(1, 10000, 3, "Concurrent probe requests admitted while half-open."),
  halfOpenSuccesses: int(1, 10000, 3, "Successful probes that close the breaker."),
  probeTimeoutMs: int(1000, MAX_MS, 15000, "Probes unanswered this long are presumed lost; above slowCallMs while slowCallRateThreshold is set."),
  stateHeader: str("x-breaker-state", "Response header naming the breaker state on its own answers (lower case, not a framing header).",
    breakerHeader(RESERVED_RESPONSE, false)),
  fallbackHeader: str("", "When set, open-state requests get this request header and are re-routed instead of answered 503.",
    breakerHeader(RESERVED_REQUEST, true)),
}, "outlier-breaker plugin configuration (filters/outlier-breaker/README.md).", [
  destinationRule,
  ...atMost("baseOpenMs", 5000, "maxOpenMs", 60000, "maxOpenMs must be at least baseOpenMs"),
  never("consecutiveFailures, failureRateThreshold and slowCallRateThreshold all 0 (nothing could open the breaker)", {
    allOf: [has("consecutiveFailures", { const: 0 }), has("failureRateThreshold", { const: 0 }), unsetOr("slowCallRateThreshold", { const: 0 })],
  }),
  never("failOn empty and no failureStatusCodes, unless the breaker is slow-call only", {
    allOf: [...NOTHING_FAILS, {
      not: { allOf: [SLOW_RULE_ON, has("consecutiveFailures", { const: 0 }), has("failureRateThreshold", { const: 0 })] },
    }],
  }),
  ...atMost("slowCallMs", 1000, "probeTimeoutMs", 15000, "probeTimeoutMs must be above slowCallMs while slowCallRateThreshold is set",
    { strict: true, cond: [SLOW_RULE_ON] }),
  when("with baseOpenMs at its default 5000, jitter may be at most 0.98 (open times of at least 100 ms)",
    { allOf: [has("jitter", NUMBER), unset("baseOpenMs")] }, { properties: { jitter: { maximum: 0.98 } } }),
  when("with jitter at its default 0.1, baseOpenMs must be at least 112 (open times of at least 100 ms)",
    { allOf: [has("baseOpenMs", NUMBER), unset("jitter")] }, { properties: { baseOpenMs: { minimum: 112 } } }),
  never("fallbackHeader with perHost (per-host breakers run after routing)", {
    allOf: [has("perHost", { const: true }), has("fallbackHeader", { type: "string", minLength: 1 })],
  }),
]);

const DEADLINE_SOURCES = ["header", "grpc-timeout", "envoy-expected"];
const DEADLINE = obj({
  reporter: oneOf(["inbound", "outbound", "gateway"], "inbound", "Which side of the service this listener is."),
  header: str("x-resilience-deadline-ms", "The project's budget header (remaining ms); 1 to 64 of letters, digits, - _ . (lower-cased).",
    { pattern: "^[A-Za-z0-9._-]{1,64}$" }),
  sources: list(oneOf(DEADLINE_SOURCES), DEADLINE_SOURCES, "Where an incoming budget is read, in order.", { minItems: 1, uniqueItems: true }),
  incoming: oneOf(["trust", "shorten", "ignore"], "shorten", "What an incoming budget may do: replace the bound, only shorten it, or nothing."),
  maxMs: int(1, MAX_MS, 15000, "Longest budget any request gets."),
  minMs: int(1, MAX_MS, 1, "A budget below this is spent: the request is answered 504."),
  marginMs: int(0, 60000, 0, "Taken off the budget passed to the next hop (time to answer back)."),
  defaultMs: int(0, MAX_MS, 0, "Budget when nothing else gives one and no rule matches; 0 = none."),
  defaults: objs(obj({
    destination: str("", "The destination the rule applies to (\"\" = any)."),
    prefix: str("", "The path prefix the rule applies to (\"\" = any); starts with \"/\".", { pattern: "^(?:/.*)?$" }),
    ms: int(1, MAX_MS, undefined, "The rule's budget (required)."),
  }, "A default budget for one destination and/or path prefix; first match wins.", [
    { description: "a rule needs a destination, a prefix or both",
      anyOf: [has("destination", { type: "string", minLength: 1 }), has("prefix", { type: "string", minLength: 1 })] },
  ], { required: ["ms"] }), "Default budgets by destination and path prefix, first match wins.", { maxItems: 64 }),
  ...destination("authority"),
  enforce: bool(true, "false: propagate and count only (no 504, no router timeout)."),
  crossHop: obj({
    mode: oneOf(["off", "record", "lookup"], "off", "record on the inbound side, lookup on the outbound side."),
    table: str("default", "Table name shared by both sides: 1 to 32 of a-z 0-9 - _.", { pattern: "^[a-z0-9_-]{1,32}$" }),
    slots: int(4, 65536, 4096, "Table slots, a multiple of 4."),
    graceMs: int(0, 600000, 5000, "How long an entry outlives its deadline."),
  }, "The cross-hop table: find an inbound request's deadline again on the app's outbound call by x-request-id.", [
    { description: "slots is a multiple of 4", properties: { slots: { multipleOf: 4 } } },
  ]),
}, "deadline plugin configuration (filters/deadline/README.md).", [
  destinationRule,
  ...atMost("minMs", 1, "maxMs", 15000, "minMs must not be above maxMs"),
  ...atMost("defaultMs", 0, "maxMs", 15000, "defaultMs must not be above maxMs"),
  when("with maxMs at its default 15000, a rule's ms is at most 15000", unset("maxMs"),
    { properties: { defaults: { items: { properties: { ms: { maximum: 15000 } } } } } }),
  when("with minMs and maxMs at their defaults, marginMs leaves at least 1 ms of maxMs", { allOf: [unset("minMs"), unset("maxMs")] },
    { properties: { marginMs: { maximum: 14999 } } }),
]);

const TOKEN = "A-Za-z0-9._!#$%&'*+^`|~-";
const selectorKeys = {
  header: str(undefined, "A request header (pseudo-headers such as :path too).", { pattern: `^:?[${TOKEN}]{1,128}$` }),
  cookie: str(undefined, "A cookie's name.", { minLength: 1 }),
  query: str(undefined, "A query parameter's name.", { minLength: 1 }),
};
const exactlyOne = (keys, what) => ({ description: `exactly one of ${keys.join(", ")} (${what})`,
  oneOf: keys.map((k) => ({ required: [k], properties: { [k]: { not: { type: "null" } } } })) });
const SELECTOR = obj(selectorKeys, "Where a value comes from: exactly one of header, cookie or query.",
  [exactlyOne(Object.keys(selectorKeys), "the source")]);
const OPS = {
  exact: str(undefined, "The value equals this."),
  prefix: str(undefined, "The value starts with this."),
  suffix: str(undefined, "The value ends with this."),
  contains: str(undefined, "The value contains this."),
  oneOf: list(str(), undefined, "The value is one of these.", { minItems: 1 }),
  present: bool(undefined, "The value is present (only true)."),
  absent: bool(undefined, "The value is absent (only true)."),
};
const CONDITION = obj({ ...selectorKeys, ...OPS }, "A test of one request value.", [
  exactlyOne(Object.keys(selectorKeys), "the source"),
  exactlyOne(Object.keys(OPS), "the test"),
  { description: "present and absent take only true", properties: { present: { not: { const: false } }, absent: { not: { const: false } } } },
]);
const RAMP = obj({
  stepPercent: int(1, 100, 10, "Percent added at each step."),
  intervalMs: int(1000, MAX_MS, 60000, "Time between steps; at least syncIntervalMs."),
  maxPercent: int(1, 100, 100, "Where the ramp stops; at least the subset's weight."),
}, "Raise the subset's weight step by step while it stays healthy.");
const SUBSET = obj({
  name: str(undefined, "The subset's name (1 to 64 of [A-Za-z0-9._-]), written to the routing header.", { pattern: "^[A-Za-z0-9._-]{1,64}$" }),
  weight: int(0, 100, undefined, "Percent of traffic; the first subset (the baseline) takes the remainder."),
  ramp: RAMP,
}, "A subset of the destination (a VirtualService route matches its name).", [], { required: ["name"] });

const TRAFFIC_SPLIT = obj({
  revision: str("", "A label of this configuration's rollout; a new revision starts the rollback state afresh."),
  routingHeader: str("x-traffic-subset", "The request header the chosen subset is written to (lower-cased token characters).",
    { pattern: `^[${TOKEN}]{1,128}$` }),
  allowClientHeader: bool(false, "Keep a routing header the client sent (trusted callers only)."),
  syncIntervalMs: int(50, 5000, 250, "How often workers merge outcomes and ramp steps; at most a quarter of rollback.windowMs."),
  subsets: objs(SUBSET, "1 to 8 subsets; the first is the baseline. Default: one subset \"stable\" taking everything.",
    {
      minItems: 1, maxItems: 8,
      first: { description: "the first subset is the baseline: no ramp", properties: { ramp: { type: "null" } } },
    }),
  stickyBy: objs(SELECTOR, "Values that keep one caller on one subset (hashed in order).", { maxItems: 4 }),
  rules: objs(obj({
    match: objs(CONDITION, "Conditions that must all hold (at most 8).", { maxItems: 8 }),
    subset: str(undefined, "The subset the rule sends to."),
    percent: int(0, 100, 100, "Percent of matching requests sent there."),
  }, "A header/cookie/query rule, checked in order before the weights.", [], { required: ["subset"] }),
  "Routing rules (at most 32).", { maxItems: 32 }),
  rollback: obj({
    enabled: bool(true, "Roll back (weight to 0) when the canary's error rate spikes."),
    errorRate: num(0, 1, 0.1, "A canary error rate above this (and above the baseline's by margin) rolls back; below 1.", true),
    minRequests: int(1, 1000000, 20, "Canary requests the window must hold before judging."),
    margin: num(0, 1, 0.05, "How much worse than the baseline the canary may be; below 1.", true),
    windowMs: int(1000, 600000, 10000, "The judging window."),
    cooldownMs: int(0, MAX_MS, 0, "0 stays rolled back; otherwise at least windowMs before the canary is tried again."),
  }, "Automatic rollback of a failing canary.", [
    { description: "cooldownMs is 0 or at least windowMs (10000 at its default)",
      if: unset("windowMs"), then: unsetOr("cooldownMs", { anyOf: [{ const: 0 }, { minimum: 10000 }] }) },
  ]),
  ...destination("authority"),
  destinations: list(str(), [], "Destinations the split applies to ([] = all)."),
}, "traffic-split plugin configuration (filters/traffic-split/README.md).", [
  destinationRule,
  when("with no subsets given, rules can only send to \"stable\"", unset("subsets"),
    { properties: { rules: { items: { properties: { subset: { const: "stable" } } } } } }),
  when("one subset takes everything: its weight, if given, is 100", has("subsets", { type: "array", maxItems: 1 }),
    { properties: { subsets: { items: unsetOr("weight", { const: 100 }) } } }),
  when("with rollback.windowMs at its default 10000 and rollback enabled, syncIntervalMs is at most 2500",
    { allOf: [has("syncIntervalMs", NUMBER), { not: has("rollback", has("enabled", { const: false })) },
      { not: has("rollback", has("windowMs", NUMBER)) }] },
    { properties: { syncIntervalMs: { maximum: 2500 } } }),
]);

const WORKLOAD_KEYS = { Workload: "unknown", Namespace: "unknown", App: "unknown", Version: "unknown", CanonicalService: "unknown",
  CanonicalRevision: "latest", Cluster: "unknown" };
const ISTIO_ONLY = {
  ...Object.fromEntries(["source", "destination"].flatMap((side) => Object.entries(WORKLOAD_KEYS).map(([k, def]) =>
    [`${side}${k}`, str(def, `Istio label of the ${side} workload (naming "istio" only).`)]))),
  serviceNamespace: str("default", "Istio naming: the namespace that completes a short service name (naming \"istio\" only)."),
  serviceDomain: str("cluster.local", "Istio naming: the domain that completes a short service name (naming \"istio\" only)."),
  maxPrincipals: int(1, 10000, 100, "Istio naming: distinct peer identities labelled; more share one overflow value (naming \"istio\" only)."),
  clientSecurityPolicy: oneOf(["unknown", "observed"], "unknown",
    "Istio naming: connection_security_policy on the client side: \"unknown\" as Istio's proxies say, or \"observed\" from the upstream connection (naming \"istio\" only)."),
};
const SERVICE_METRICS = obj({
  ...destination("authority"),
  reporter: oneOf(["outbound", "inbound", "source", "destination"], "outbound",
    "Which side of the call this listener reports (Istio's \"source\" and \"destination\" are the same two)."),
  naming: oneOf(["resilience", "istio"], "resilience", "Metric names: the filter's own, or Istio's (only where Istio's stats plugin is not running)."),
  maxServices: int(1, 10000, 100, "Distinct destination labels; more share one overflow label."),
  ...ISTIO_ONLY,
}, "service-metrics plugin configuration (filters/service-metrics/README.md).", [
  destinationRule,
  when("the Istio-only keys are set only with naming \"istio\"", { not: has("naming", { const: "istio" }) },
    { properties: Object.fromEntries(Object.keys(ISTIO_ONLY).map((k) => [k, { type: "null" }])) }),
]);

export const FILTERS = {
  "retry-budget": RETRY_BUDGET,
  "outlier-breaker": OUTLIER_BREAKER,
  deadline: DEADLINE,
  "traffic-split": TRAFFIC_SPLIT,
  "service-metrics": SERVICE_METRICS,
};
/** The combined module's order (filters/resilience/index.ts). */
const COMBINED_ORDER = ["service-metrics", "deadline", "traffic-split", "outlier-breaker", "retry-budget"];
const RESILIENCE = obj({
  filters: list(oneOf(COMBINED_ORDER), COMBINED_ORDER, "The stages to run (always in the module's order); a section is checked even when its filter is not listed."),
  ...FILTERS,
}, "resilience (the combined module) plugin configuration: one section per filter (README.md, envoy-configs/resilience.yaml).");
const MODULE_SPECS = { ...FILTERS, resilience: RESILIENCE };

/**
 * Rules only the module (and so the validator CLI) knows: JSON Schema cannot compare two values, sum array members,
 * cross-reference names, or see the raw text. Each is named by the message the module refuses with; the schema test
 * requires every refusal the schema lets through to match one of them.
 */
export const CLI_ONLY = [
  { rule: "the configuration text: syntax errors, duplicate keys, a byte-order mark, invalid UTF-8, more than 256 KiB (JSON Schema sees parsed data)",
    message: /syntax error at|configuration is \d+ bytes, more than the cap/u },
  { rule: "outlier-breaker: maxOpenMs ≥ baseOpenMs when both are set", message: /"(?:[\w-]+\.)?maxOpenMs": must be at least baseOpenMs/u },
  { rule: "outlier-breaker: probeTimeoutMs > slowCallMs (slow-call rule on) when both are set", message: /"(?:[\w-]+\.)?probeTimeoutMs": must be above slowCallMs/u },
  { rule: "outlier-breaker: baseOpenMs × (1 − jitter) ≥ 100 ms when both are set", message: /"(?:[\w-]+\.)?jitter": with baseOpenMs \d+ an open time could be as short/u },
  { rule: "deadline: minMs ≤ maxMs when both are set", message: /"(?:[\w-]+\.)?minMs": \d+ is above maxMs/u },
  { rule: "deadline: defaultMs ≤ maxMs when both are set", message: /"(?:[\w-]+\.)?defaultMs": \d+ is above maxMs/u },
  { rule: "deadline: each defaults[].ms ≤ a maxMs that is set", message: /"(?:[\w-]+\.)?defaults\[\d+\]\.ms": \d+ is above maxMs/u },
  { rule: "deadline: marginMs + minMs ≤ maxMs, defaultMs and every defaults[].ms (beyond marginMs alone against the default maxMs)",
    message: /"(?:[\w-]+\.)?marginMs": (?:maxMs|defaultMs|defaults\[\d+\]\.ms) \d+ leaves less than minMs/u },
  { rule: "deadline: a defaults rule shadowed by an earlier one (first match wins)", message: /"(?:[\w-]+\.)?defaults\[\d+\]\.prefix": never matched/u },
  { rule: "traffic-split: subset names are unique", message: /"(?:[\w-]+\.)?subsets\[\d+\]\.name": duplicate subset name/u },
  { rule: "traffic-split: the later subsets' weights (and ramps at maxPercent) add up to at most 100",
    message: /"(?:[\w-]+\.)?subsets": (?:the weights after the first subset|with every ramp at its maxPercent)/u },
  { rule: "traffic-split: the first subset's weight, when given, is the remainder (beyond the one-subset case)",
    message: /"(?:[\w-]+\.)?subsets\[0\]\.weight": the first subset is the baseline and takes the remainder/u },
  { rule: "traffic-split: a ramp's maxPercent ≥ its subset's weight", message: /"(?:[\w-]+\.)?subsets\[\d+\]\.ramp\.maxPercent": must be at least the subset's weight/u },
  { rule: "traffic-split: rules[].subset names one of the subsets given", message: /"(?:[\w-]+\.)?rules\[\d+\]\.subset": expected the name of a subset/u },
  { rule: "traffic-split: syncIntervalMs ≤ rollback.windowMs / 4 when the window is set", message: /"(?:[\w-]+\.)?syncIntervalMs": expected at most a quarter of "(?:[\w-]+\.)?rollback\.windowMs"/u },
  { rule: "traffic-split: each ramp's intervalMs ≥ syncIntervalMs", message: /"(?:[\w-]+\.)?subsets\[\d+\]\.ramp\.intervalMs": expected at least "(?:[\w-]+\.)?syncIntervalMs"/u },
  { rule: "traffic-split: rollback.cooldownMs is 0 or ≥ rollback.windowMs when the window is set", message: /"(?:[\w-]+\.)?rollback\.cooldownMs": expected 0 \(stay rolled back\) or at least windowMs/u },
];

// ------------------------------------------------------------------ output

export function schemaFor(module) {
  const s = schemaOf(MODULE_SPECS[module], false);
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: `https://envoy-resilience-filters.invalid/${VERSION}/${module}.schema.json`,
    title: `${module} ${VERSION} plugin configuration`,
    ...s,
    $comment: "Generated by build/schemas.mjs from the filters' config.ts; rules JSON Schema cannot express are checked only by " +
      "`envoy-resilience-filters validate` (which runs the module itself). Null means absent (the default).",
  };
}

function typesFile() {
  const name = (m) => m.replace(/(^|-)(\w)/gu, (_, __, c) => c.toUpperCase()) + "Config";
  let out = `// Generated by build/schemas.mjs: the plugin configuration of each module (${VERSION}). Null means absent (the default).\n`;
  for (const [m, spec] of Object.entries(MODULE_SPECS)) {
    if (m === "resilience") continue;
    out += `\n/** ${spec.doc} */\nexport interface ${name(m)} ${typeOf(spec, "")}\n`;
  }
  const combined = RESILIENCE.props;
  out += `\n/** ${RESILIENCE.doc} */\nexport interface ResilienceConfig {\n` +
    `  /** ${combined.filters.doc} */\n  filters?: Array<${typeOf(combined.filters.item, "")}> | null;\n` +
    Object.keys(FILTERS).map((f) => `  ${JSON.stringify(f)}?: ${name(f)} | null;\n`).join("") + "}\n";
  out += `\n/** Each module's configuration by module name. */\nexport interface ModuleConfigs {\n` +
    Object.keys(MODULE_SPECS).map((m) => `  ${JSON.stringify(m)}: ${name(m)};\n`).join("") + "}\n";
  return out;
}

export function outputs() {
  const files = { "types.d.ts": typesFile() };
  for (const m of Object.keys(MODULE_SPECS)) files[`${m}.schema.json`] = JSON.stringify(schemaFor(m), null, 2) + "\n";
  return files;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  mkdirSync(OUT, { recursive: true });
  let stale = 0;
  for (const [file, text] of Object.entries(outputs())) {
    const path = join(OUT, file);
    let old = "";
    try { old = readFileSync(path, "utf8"); } catch { /* new */ }
    if (old === text) continue;
    if (check) { stale++; console.error(`schemas: ${path} is out of date; run node build/schemas.mjs`); }
    else { writeFileSync(path, text); console.log(`schemas: wrote ${path}`); }
  }
  process.exit(stale === 0 ? 0 : 1);
}
