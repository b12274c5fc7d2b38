// traffic-split's split decision: the request values rules read (header, cookie, query) and the subset choice.
import { TrafficSplitConfig, Condition, Op, Selector, Source } from "./config";
import { POINTS, stickyPoint } from "./hash";
import { SplitState } from "./state";

/** The value of cookie `name` in a `cookie` header (`a=1; b="2"` -> b is `2`), or null. */
export function cookieValue(header: string, name: string): string | null {
  const n = header.length;
  let start = 0;
  while (start < n) {
    let end = header.indexOf(";", start);
    if (end < 0) end = n;
    let a = start;
    while (a < end && isSpace(header.charCodeAt(a))) a++;
    const eq = header.indexOf("=", a);
    if (eq > a && eq < end) {
      let ke = eq;
      while (ke > a && isSpace(header.charCodeAt(ke - 1))) ke--;
      if (ke - a == name.length && header.substring(a, ke) == name) {
        let vs = eq + 1;
        let ve = end;
        while (vs < ve && isSpace(header.charCodeAt(vs))) vs++;
        while (ve > vs && isSpace(header.charCodeAt(ve - 1))) ve--;
        if (ve - vs >= 2 && header.charCodeAt(vs) == 0x22 && header.charCodeAt(ve - 1) == 0x22) { vs++; ve--; }
        return header.substring(vs, ve);
      }
    }
    start = end + 1;
  }
  return null;
}

/** The raw (not percent-decoded) value of query parameter `name` in a `:path`; `?a&b=1` gives a = "". */
export function queryValue(path: string, name: string): string | null {
  const q = path.indexOf("?");
  if (q < 0) return null;
  let n = path.indexOf("#", q);
  if (n < 0) n = path.length;
  let start = q + 1;
  while (start < n) {
    let end = path.indexOf("&", start);
    if (end < 0 || end > n) end = n;
    let eq = path.indexOf("=", start);
    if (eq < 0 || eq > end) eq = end;
    if (eq - start == name.length && path.substring(start, eq) == name) {
      return eq < end ? path.substring(eq + 1, end) : "";
    }
    start = end + 1;
  }
  return null;
}

@inline function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}

/** The distinct request headers the configuration reads, fetched lazily (the stage reads them through the view). */
export abstract class Inputs {
  /** The first value of TrafficSplitConfig.inputs[i], or null when absent. */
  abstract get(i: i32): string | null;
}

/** The value a selector names in this request, or null. */
export function selectValue(sel: Selector, inputs: Inputs): string | null {
  const raw = inputs.get(sel.input);
  if (raw === null) return null;
  if (sel.source == Source.Header) return raw;
  if (sel.source == Source.Cookie) return cookieValue(raw, sel.name);
  return queryValue(raw, sel.name);
}

export function conditionHolds(cond: Condition, inputs: Inputs): bool {
  const v = selectValue(cond.selector, inputs);
  const op = cond.op;
  if (op == Op.Absent) return v === null;
  if (v === null) return false;
  const s = changetype<string>(v);
  switch (op) {
    case Op.Present: return true;
    case Op.Exact: return s == cond.value;
    case Op.Prefix: return s.startsWith(cond.value);
    case Op.Suffix: return s.endsWith(cond.value);
    case Op.Contains: return s.includes(cond.value);
    case Op.OneOf: return cond.values.includes(s);
  }
  return false;
}

// ---------------------------------------------------------------- the choice

/**
 * Which subset serves this request (an index into config.subsets), given the current shared state:
 * 1. with allowClientHeader, a client's routing header naming a subset that is not rolled back;
 * 2. the first rule whose conditions all hold: its subset for `percent`% of sticky points, else the baseline;
 * 3. the weighted split: the later subsets own consecutive point ranges from 0, the baseline the rest.
 * A rolled-back subset is never chosen (its requests go to the baseline). `random` is used only when no sticky key is present.
 */
export function chooseSubset(c: TrafficSplitConfig, st: SplitState, inputs: Inputs, random: u32): i32 {
  const subsets = st.subsets;
  if (c.allowClientHeader) {
    const asked = inputs.get(0);
    if (asked !== null) {
      const i = c.subsetIndex(asked);
      if (i >= 0 && !unchecked(subsets[i]).rolledBack) return i;
    }
  }
  let point: u32 = POINTS; // not computed yet
  const rules = c.rules;
  for (let r = 0; r < rules.length; r++) {
    const rule = unchecked(rules[r]);
    if (!allHold(rule.conditions, inputs)) continue;
    if (rule.percent < 100) {
      if (point == POINTS) point = pointOf(c, inputs, random);
      if (point >= rule.percent * (POINTS / 100)) return 0;
    }
    return unchecked(subsets[rule.subset]).rolledBack ? 0 : rule.subset;
  }
  let edge: u32 = 0;
  for (let i = 1; i < subsets.length; i++) {
    const w = unchecked(subsets[i]).weight;
    if (w == 0) continue;
    if (point == POINTS) point = pointOf(c, inputs, random);
    edge += w * (POINTS / 100);
    if (point < edge) return i;
  }
  return 0;
}

function allHold(conds: Condition[], inputs: Inputs): bool {
  for (let i = 0; i < conds.length; i++) if (!conditionHolds(unchecked(conds[i]), inputs)) return false;
  return true;
}

/** The sticky point of the first stickyBy source present, else the per-request random point. */
function pointOf(c: TrafficSplitConfig, inputs: Inputs, random: u32): u32 {
  const sources = c.stickyBy;
  for (let i = 0; i < sources.length; i++) {
    const v = selectValue(unchecked(sources[i]), inputs);
    if (v !== null && v.length > 0) return stickyPoint(c.revision, v);
  }
  return random;
}
