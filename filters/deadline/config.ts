/** deadline plugin configuration: a pure parser, bytes in, typed config or an error naming the field. */
import { ConfigReader } from "../../assembly/config";
import { Destination } from "../common/destination";
import { asciiLower, allIn, NAME_LO, NAME_DOT_LO, NAME_HI } from "../../assembly/text";

export const FILTER_NAME = "deadline";

/** Longest budget any field may hold: one day, so every budget fits a grpc-timeout in milliseconds (8 digits). */
// @ts-ignore: decorator
@inline export const MAX_BUDGET_MS: u32 = 86_400_000;
/** Slots share a shared-data key four at a time (one 64-byte value). */
// @ts-ignore: decorator
@inline export const SLOTS_PER_KEY: u32 = 4;
/** Most default rules; they are matched in order on every request without one. */
// @ts-ignore: decorator
@inline const MAX_RULES: i32 = 64;

/** Where an incoming budget can come from, in the order `sources` lists them. */
export enum Source {
  Header = 0,
  GrpcTimeout = 1,
  EnvoyExpected = 2,
}
export const SOURCE_NAMES: string[] = ["header", "grpc-timeout", "envoy-expected"];

/** What incoming budget headers are allowed to do. */
export enum Incoming {
  /** Taken as the operator's own bound (up to maxMs): may exceed the default and replace the route's timeout. */
  Trust = 0,
  /** May only shorten what the default (else the route's timeout) gives; longer asks get that bound. */
  Shorten = 1,
  /** Never read; the project header is removed when no default applies. */
  Ignore = 2,
}
const INCOMING_NAMES: string[] = ["trust", "shorten", "ignore"];

/** The cross-hop table's role on this listener. */
export enum CrossHop {
  Off = 0,
  /** Inbound side: remember request id -> absolute deadline while the request is in flight. */
  Record = 1,
  /** Outbound side: find the deadline of the inbound request with the same x-request-id. */
  Lookup = 2,
}
const CROSS_HOP_NAMES: string[] = ["off", "record", "lookup"];

/** A default budget for requests to one destination and/or under one path prefix. */
export class DefaultRule {
  constructor(public destination: string, public prefix: string, public ms: u32) {}
}

export class DeadlineConfig {
  reporter: string = "inbound";
  /** The project's header, lower case: remaining milliseconds at the time the sender sent it. */
  header: string = "x-resilience-deadline-ms";
  sources: Source[] = [Source.Header, Source.GrpcTimeout, Source.EnvoyExpected];
  incoming: Incoming = Incoming.Shorten;
  /** Budget when nothing else gives one and no rule matches; 0 = none (the request passes untouched). */
  defaultMs: u32 = 0;
  defaults: DefaultRule[] = [];
  destination: Destination = new Destination(0, null);
  maxMs: u32 = 15_000;
  minMs: u32 = 1;
  marginMs: u32 = 0;
  /** false: propagate and count only (no 504, no router timeout). */
  enforce: bool = true;
  crossHop: CrossHop = CrossHop.Off;
  table: string = "default";
  slots: u32 = 4096;
  graceMs: u32 = 5_000;

  /** True when some rule needs the request's destination. */
  rulesUseDestination: bool = false;
  /** True when some rule needs the request's path. */
  rulesUsePath: bool = false;
}

/** Parses the configuration; on error returns null and `r.error` names the field and quotes the value. */
export function parseConfig(r: ConfigReader): DeadlineConfig | null {
  const c = new DeadlineConfig();
  c.reporter = r.oneOf("reporter", "inbound", ["inbound", "outbound", "gateway"]);
  c.header = asciiLower(r.string("header", c.header));
  if (!isName(c.header, 64, true)) r.fail("header", "expected a header name (letters, digits, - _ .), got \"" + c.header + "\"");
  c.sources = readSources(r);
  if (c.sources.length == 0 && r.has("sources")) r.fail("sources", "empty: no incoming budget could ever be read; say \"incoming\": \"ignore\" instead");
  c.incoming = <Incoming>INCOMING_NAMES.indexOf(r.oneOf("incoming", "shorten", INCOMING_NAMES));
  c.maxMs = r.u32("maxMs", c.maxMs, 1, MAX_BUDGET_MS);
  c.minMs = r.u32("minMs", c.minMs, 1, MAX_BUDGET_MS);
  if (c.minMs > c.maxMs) r.fail("minMs", c.minMs.toString() + " is above maxMs " + c.maxMs.toString());
  c.marginMs = r.u32("marginMs", c.marginMs, 0, 60_000);
  c.defaultMs = r.u32("defaultMs", 0, 0, MAX_BUDGET_MS);
  if (c.defaultMs > c.maxMs) r.fail("defaultMs", c.defaultMs.toString() + " is above maxMs " + c.maxMs.toString());
  c.destination = Destination.read(r);
  readRules(r, c);
  checkMargin(r, c);
  c.enforce = r.bool("enforce", true);

  const x = r.object("crossHop");
  c.crossHop = <CrossHop>CROSS_HOP_NAMES.indexOf(x.oneOf("mode", "off", CROSS_HOP_NAMES));
  c.table = x.string("table", c.table);
  if (!isName(c.table, 32, false)) x.fail("table", "expected 1 to 32 of a-z 0-9 - _, got \"" + c.table + "\"");
  c.slots = x.u32("slots", c.slots, SLOTS_PER_KEY, 65_536);
  if (c.slots % SLOTS_PER_KEY != 0) x.fail("slots", "expected a multiple of " + SLOTS_PER_KEY.toString() + ", got " + c.slots.toString());
  c.graceMs = x.u32("graceMs", c.graceMs, 0, 600_000);

  r.done();
  return r.error === null ? c : null;
}

function readSources(r: ConfigReader): Source[] {
  const names = r.stringList("sources", SOURCE_NAMES);
  const out = new Array<Source>();
  for (let i: i32 = 0; i < names.length; i++) {
    const s = SOURCE_NAMES.indexOf(names[i]);
    const at = "sources[" + i.toString() + "]";
    if (s < 0) {
      r.fail(at, "expected one of \"header\", \"grpc-timeout\", \"envoy-expected\", got \"" + names[i] + "\"");
    } else if (out.includes(<Source>s)) {
      r.fail(at, "\"" + names[i] + "\" is listed twice");
    } else {
      out.push(<Source>s);
    }
  }
  return out;
}

function readRules(r: ConfigReader, c: DeadlineConfig): void {
  const items = r.objects("defaults");
  if (items.length > MAX_RULES) r.fail("defaults", "at most " + MAX_RULES.toString() + " rules, got " + items.length.toString());
  for (let i: i32 = 0; i < items.length; i++) {
    const o = items[i];
    const destination = o.string("destination", "");
    const prefix = o.string("prefix", "");
    const ms = o.u32("ms", 0, 1, MAX_BUDGET_MS);
    if (!o.has("ms")) o.fail("ms", "required");
    if (ms > c.maxMs) o.fail("ms", ms.toString() + " is above maxMs " + c.maxMs.toString());
    if (destination.length == 0 && prefix.length == 0) o.fail("destination", "a rule needs a destination, a prefix or both");
    if (prefix.length > 0 && prefix.charCodeAt(0) != 0x2f) o.fail("prefix", "expected a path starting with \"/\", got \"" + prefix + "\"");
    if (destination.length > 0) c.rulesUseDestination = true;
    if (prefix.length > 0) c.rulesUsePath = true;
    const rule = new DefaultRule(destination, prefix, ms);
    for (let j: i32 = 0; j < c.defaults.length; j++) {
      if (!covers(c.defaults[j], rule)) continue;
      o.fail("prefix", "never matched: defaults[" + j.toString() + "] (first match wins) already takes every request it would");
      break;
    }
    c.defaults.push(rule);
  }
}

/** True when every request `later` matches is already taken by `earlier`. */
function covers(earlier: DefaultRule, later: DefaultRule): bool {
  if (earlier.destination.length > 0 && earlier.destination != later.destination) return false;
  return earlier.prefix.length == 0 || later.prefix.startsWith(earlier.prefix);
}

/**
 * A budget that marginMs leaves below minMs is spent on arrival: every request it applies to would be answered 504.
 * Refused for maxMs (every request), defaultMs and each rule's ms, naming the fields.
 */
function checkMargin(r: ConfigReader, c: DeadlineConfig): void {
  const least = <u64>c.marginMs + <u64>c.minMs;
  const why = " leaves less than minMs " + c.minMs.toString() + " after marginMs " + c.marginMs.toString() + ": every request it applies to would be answered 504";
  if (<u64>c.maxMs < least) r.fail("marginMs", "maxMs " + c.maxMs.toString() + why);
  if (c.defaultMs != 0 && <u64>c.defaultMs < least) r.fail("marginMs", "defaultMs " + c.defaultMs.toString() + why);
  for (let i: i32 = 0; i < c.defaults.length; i++) {
    const ms = c.defaults[i].ms;
    if (<u64>ms < least) r.fail("marginMs", "defaults[" + i.toString() + "].ms " + ms.toString() + why);
  }
}

/** 1 to maxLen of a-z 0-9 - _ (and `.` when allowDot): a header name (no pseudo-headers) or a table name. */
function isName(s: string, maxLen: i32, allowDot: bool): bool {
  return s.length != 0 && s.length <= maxLen && allIn(s, allowDot ? NAME_DOT_LO : NAME_LO, NAME_HI);
}
