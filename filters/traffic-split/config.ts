/** traffic-split plugin configuration: a pure parser, JSON in, typed config or an error naming the field. */
import { ConfigReader, quoteList } from "../../assembly/config";
import { quoteJson } from "../../assembly/json";
import { asciiLower, allIn, TOKEN_LO, TOKEN_HI, NAME_DOT_LO, LABEL_HI } from "../../assembly/text";
import { Destination } from "../common/destination";

export const FILTER_NAME = "traffic-split";

/** Most subsets one configuration may name (each is a bounded metric label and a slot in the shared state). */
// @ts-ignore: decorator
@inline export const MAX_SUBSETS: i32 = 8;
// @ts-ignore: decorator
@inline export const MAX_RULES: i32 = 32;
// @ts-ignore: decorator
@inline export const MAX_CONDITIONS: i32 = 8;
// @ts-ignore: decorator
@inline export const MAX_STICKY_SOURCES: i32 = 4;
// @ts-ignore: decorator
@inline const MAX_NAME_LEN: i32 = 64;

/** Where a condition or sticky key takes its value from. */
export enum Source {
  Header = 0,
  Cookie = 1,
  Query = 2,
}

const SOURCE_KEYS: string[] = ["header", "cookie", "query"];

/** How a condition tests the value. */
export enum Op {
  Exact = 0,
  Prefix = 1,
  Suffix = 2,
  Contains = 3,
  OneOf = 4,
  Present = 5,
  Absent = 6,
}

const OP_KEYS: string[] = ["exact", "prefix", "suffix", "contains", "oneOf", "present", "absent"];

/**
 * A value read from the request: a header, a cookie (from the `cookie` header) or a query parameter (from `:path`).
 * `input` indexes TrafficSplitConfig.inputs, the distinct request headers the filter reads.
 */
export class Selector {
  constructor(public source: Source, public name: string, public input: i32) {}
}

export class Condition {
  values: string[] = [];
  constructor(public selector: Selector, public op: Op, public value: string) {}
}

export class Rule {
  conditions: Condition[] = [];
  /** Index into subsets. */
  subset: i32 = 0;
  /** Share of matching requests (by the sticky hash) sent to `subset`; the rest go to the baseline. */
  percent: u32 = 100;
}

export class Ramp {
  stepPercent: u32 = 10;
  intervalMs: u32 = 60000;
  maxPercent: u32 = 100;
}

export class Subset {
  /** Configured (initial) weight in percent; the baseline's is the remainder. */
  weight: u32 = 0;
  ramp: Ramp | null = null;
  constructor(public name: string) {}
}

export class RollbackConfig {
  enabled: bool = true;
  errorRate: f64 = 0.1;
  minRequests: u32 = 20;
  margin: f64 = 0.05;
  windowMs: u32 = 10000;
  cooldownMs: u32 = 0;
}

export class TrafficSplitConfig {
  revision: string = "";
  routingHeader: string = "x-traffic-subset";
  allowClientHeader: bool = false;
  /** subsets[0] is the baseline: it takes whatever the others leave, and every rollback falls back to it. */
  subsets: Subset[] = [baselineOnly()];
  stickyBy: Selector[] = [];
  rules: Rule[] = [];
  rollback: RollbackConfig = new RollbackConfig();
  syncIntervalMs: u32 = 250;
  /** How a request's destination is named, for `destinations`. */
  destination: Destination = new Destination(0, null);
  /** The destinations this split applies to; empty: every request. */
  destinations: string[] = [];
  /** Distinct request headers read (lowercase); inputs[0] is the routing header. */
  inputs: string[] = [];

  /** Index of a subset by name, -1 when unknown. */
  subsetIndex(name: string): i32 {
    const s = this.subsets;
    for (let i = 0; i < s.length; i++) if (unchecked(s[i]).name == name) return i;
    return -1;
  }

  /** The input index of a request header, added when new. */
  inputOf(header: string): i32 {
    const i = this.inputs.indexOf(header);
    if (i >= 0) return i;
    this.inputs.push(header);
    return this.inputs.length - 1;
  }
}

function baselineOnly(): Subset {
  const s = new Subset("stable");
  s.weight = 100;
  return s;
}

/** Parses the configuration; on error returns null and `r.error` names the field and quotes the value. */
export function parseConfig(r: ConfigReader): TrafficSplitConfig | null {
  const c = new TrafficSplitConfig();
  c.revision = r.string("revision", "");
  c.routingHeader = asciiLower(r.string("routingHeader", c.routingHeader));
  if (!isHeaderName(c.routingHeader)) r.fail("routingHeader", "expected a lowercase header name of token characters, got " + quoteJson(c.routingHeader));
  c.inputOf(c.routingHeader);
  c.allowClientHeader = r.bool("allowClientHeader", false);
  c.syncIntervalMs = r.u32("syncIntervalMs", 250, 50, 5000);
  if (r.has("subsets")) c.subsets = readSubsets(r);
  c.stickyBy = readStickyBy(r, c);
  c.rules = readRules(r, c);
  c.rollback = readRollback(r.object("rollback"));
  checkTiming(r, c);
  c.destination = Destination.read(r);
  c.destinations = r.stringList("destinations", []);
  r.done();
  return r.error === null ? c : null;
}

function readSubsets(r: ConfigReader): Subset[] {
  const items = r.objects("subsets");
  const out = new Array<Subset>();
  if (items.length == 0 || items.length > MAX_SUBSETS) {
    r.fail("subsets", "expected 1 to " + MAX_SUBSETS.toString() + " subsets, got " + items.length.toString());
    return out;
  }
  let candidates: u32 = 0; // sum of the non-baseline weights
  let ceiling: u32 = 0;    // the same, with each ramp at its maximum
  for (let i = 0; i < items.length; i++) {
    const s = items[i];
    const name = s.string("name", "");
    if (!isLabelName(name)) s.fail("name", "expected 1 to 64 characters of [A-Za-z0-9._-], got " + quoteJson(name));
    for (let j = 0; j < out.length; j++) {
      if (out[j].name == name) s.fail("name", "duplicate subset name " + quoteJson(name));
    }
    const subset = new Subset(name);
    if (i == 0) {
      // The baseline's weight is the remainder; checked once the others are known.
      if (s.has("ramp")) s.fail("ramp", "the first subset is the baseline and takes the remainder; ramp a later subset");
      s.object("ramp");
    } else {
      subset.weight = s.u32("weight", 0, 0, 100);
      if (s.has("ramp")) subset.ramp = readRamp(s.object("ramp"), subset.weight);
      candidates += subset.weight;
      ceiling += subset.ramp !== null ? changetype<Ramp>(subset.ramp).maxPercent : subset.weight;
    }
    out.push(subset);
  }
  if (candidates > 100) r.fail("subsets", "the weights after the first subset add up to " + candidates.toString() + "%, more than 100");
  else if (ceiling > 100) r.fail("subsets", "with every ramp at its maxPercent the weights add up to " + ceiling.toString() + "%, more than 100");
  const first = items[0];
  const remainder = 100 - min<u32>(candidates, 100);
  const given = first.u32("weight", remainder, 0, 100);
  if (given != remainder) {
    first.fail("weight", "the first subset is the baseline and takes the remainder (" + remainder.toString() + "), got " + given.toString() + "; omit it or make the weights add up to 100");
  }
  out[0].weight = remainder;
  return out;
}

function readRamp(r: ConfigReader, initial: u32): Ramp {
  const ramp = new Ramp();
  ramp.stepPercent = r.u32("stepPercent", 10, 1, 100);
  ramp.intervalMs = r.u32("intervalMs", 60000, 1000, 86400000);
  ramp.maxPercent = r.u32("maxPercent", 100, 1, 100);
  if (ramp.maxPercent < initial) r.fail("maxPercent", "must be at least the subset's weight (" + initial.toString() + "), got " + ramp.maxPercent.toString());
  return ramp;
}

/** `{"header": "x-user-id"}`, `{"cookie": "uid"}` or `{"query": "user"}`: exactly one of them. */
function readSelector(r: ConfigReader, c: TrafficSplitConfig): Selector {
  let found: i32 = -1;
  let count: i32 = 0;
  for (let i = 0; i < SOURCE_KEYS.length; i++) {
    if (r.has(SOURCE_KEYS[i])) { found = i; count++; }
  }
  if (count != 1) {
    r.fail(count == 0 ? "header" : SOURCE_KEYS[found], "expected exactly one of \"header\", \"cookie\" or \"query\"");
    for (let i = 0; i < SOURCE_KEYS.length; i++) r.string(SOURCE_KEYS[i], "");
    return new Selector(Source.Header, "", 0);
  }
  const key = SOURCE_KEYS[found];
  const source = <Source>found;
  let name = r.string(key, "");
  if (source == Source.Header) {
    name = asciiLower(name);
    // Pseudo-headers (":path", ":authority", ":method") may be tested too.
    const plain = name.startsWith(":") ? name.substring(1) : name;
    if (!isHeaderName(plain)) r.fail(key, "expected a header name of token characters, got " + quoteJson(name));
  } else if (name.length == 0) {
    r.fail(key, "expected a non-empty " + key + " name");
  }
  const header = source == Source.Header ? name : source == Source.Cookie ? "cookie" : ":path";
  return new Selector(source, name, c.inputOf(header));
}

function readStickyBy(r: ConfigReader, c: TrafficSplitConfig): Selector[] {
  const items = r.objects("stickyBy");
  const out = new Array<Selector>();
  if (items.length > MAX_STICKY_SOURCES) r.fail("stickyBy", "expected at most " + MAX_STICKY_SOURCES.toString() + " sources, got " + items.length.toString());
  for (let i = 0; i < items.length; i++) out.push(readSelector(items[i], c));
  return out;
}

function readCondition(r: ConfigReader, c: TrafficSplitConfig): Condition {
  const selector = readSelector(r, c);
  let found: i32 = -1;
  let count: i32 = 0;
  for (let i = 0; i < OP_KEYS.length; i++) {
    if (r.has(OP_KEYS[i])) { found = i; count++; }
  }
  if (count != 1) {
    r.fail(count == 0 ? "exact" : OP_KEYS[found], "expected exactly one of " + quoteList(OP_KEYS));
    return new Condition(selector, Op.Present, "");
  }
  const op = <Op>found;
  const key = OP_KEYS[found];
  const cond = new Condition(selector, op, "");
  if (op == Op.Present || op == Op.Absent) {
    if (!r.bool(key, true)) r.fail(key, "only true is meaningful; use \"" + (op == Op.Present ? "absent" : "present") + "\": true instead");
  } else if (op == Op.OneOf) {
    cond.values = r.stringList(key, []);
    if (cond.values.length == 0) r.fail(key, "expected a non-empty array of strings");
  } else {
    cond.value = r.string(key, "");
  }
  return cond;
}

function readRules(r: ConfigReader, c: TrafficSplitConfig): Rule[] {
  const items = r.objects("rules");
  const out = new Array<Rule>();
  if (items.length > MAX_RULES) r.fail("rules", "expected at most " + MAX_RULES.toString() + " rules, got " + items.length.toString());
  for (let i = 0; i < items.length; i++) {
    const ri = items[i];
    const rule = new Rule();
    const conds = ri.objects("match");
    if (conds.length > MAX_CONDITIONS) ri.fail("match", "expected at most " + MAX_CONDITIONS.toString() + " conditions, got " + conds.length.toString());
    for (let j = 0; j < conds.length; j++) rule.conditions.push(readCondition(conds[j], c));
    const name = ri.string("subset", "");
    rule.subset = c.subsetIndex(name);
    if (rule.subset < 0) {
      ri.fail("subset", "expected the name of a subset (" + subsetNames(c) + "), got " + quoteJson(name));
      rule.subset = 0;
    }
    rule.percent = ri.u32("percent", 100, 0, 100);
    out.push(rule);
  }
  return out;
}

function subsetNames(c: TrafficSplitConfig): string {
  let s = "";
  for (let i = 0; i < c.subsets.length; i++) s += (i > 0 ? ", " : "") + quoteJson(c.subsets[i].name);
  return s;
}

function readRollback(r: ConfigReader): RollbackConfig {
  const b = new RollbackConfig();
  b.enabled = r.bool("enabled", true);
  b.errorRate = r.number("errorRate", 0.1, 0.0, 1.0);
  if (b.errorRate >= 1.0) r.fail("errorRate", "expected a rate below 1 (a canary cannot fail more than every request), got 1");
  b.minRequests = r.u32("minRequests", 20, 1, 1000000);
  b.margin = r.number("margin", 0.05, 0.0, 1.0);
  if (b.margin >= 1.0) r.fail("margin", "expected a margin below 1 (a canary's error rate can never exceed the baseline's by 1 or more), got 1");
  b.windowMs = r.u32("windowMs", 10000, 1000, 600000);
  b.cooldownMs = r.u32("cooldownMs", 0, 0, 86400000);
  if (b.cooldownMs != 0 && b.cooldownMs < b.windowMs) {
    r.fail("cooldownMs", "expected 0 (stay rolled back) or at least windowMs (" + b.windowMs.toString() + "), got " + b.cooldownMs.toString());
  }
  return b;
}

/**
 * Outcomes are counted in the bucket of the last sync and merged one syncIntervalMs later, so a window sees only its
 * last windowMs - syncIntervalMs of traffic: a quarter is the most that leaves three quarters counted (checked while
 * rollback is enabled). Ramps step at a
 * sync, so a step interval below syncIntervalMs would silently step slower than configured.
 */
function checkTiming(r: ConfigReader, c: TrafficSplitConfig): void {
  const sync = c.syncIntervalMs;
  const window = c.rollback.windowMs;
  if (c.rollback.enabled && sync > window / 4) {
    r.fail("syncIntervalMs", "expected at most a quarter of " + quoteJson(r.prefix + "rollback.windowMs") + " (" + window.toString() +
      " / 4 = " + (window / 4).toString() + "), got " + sync.toString() + "; outcomes merged later than that leave the window before a rollback can count them");
  }
  const subsets = c.subsets;
  for (let i = 1; i < subsets.length; i++) {
    const ramp = subsets[i].ramp;
    if (ramp !== null && ramp.intervalMs < sync) {
      r.fail("subsets[" + i.toString() + "].ramp.intervalMs", "expected at least " + quoteJson(r.prefix + "syncIntervalMs") + " (" + sync.toString() +
        "), got " + ramp.intervalMs.toString() + "; ramps step only when the workers sync");
    }
  }
}

/** A lowercase HTTP header name made of token characters (no pseudo-headers). */
function isHeaderName(s: string): bool {
  return s.length != 0 && s.length <= 128 && allIn(s, TOKEN_LO, TOKEN_HI);
}

/** Subset names end up in a header value and a metric label: keep them to [A-Za-z0-9._-]. */
function isLabelName(s: string): bool {
  return s.length != 0 && s.length <= MAX_NAME_LEN && allIn(s, NAME_DOT_LO, LABEL_HI);
}
