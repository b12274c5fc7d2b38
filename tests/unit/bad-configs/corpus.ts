// The bad-configuration corpus of tests/unit/config-corpus.test.ts, as a module so other suites (the JSON Schema
// agreement test, tests/unit/schemas.test.ts) run the very same cases: generators, the shipped bases, and the run.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { Host, LogLevel, type CompiledModule } from "../../emulator/index.js";
import { CONTRADICTIONS, SCHEMAS, type Kind } from "./schemas.js";
/** The cap of assembly/config.ts MAX_CONFIG_BYTES. */
export const MAX_CONFIG_BYTES = 262144;
export const MIN_PER_MODULE = 50;
export const FILTERS = ["retry-budget", "outlier-breaker", "deadline", "traffic-split", "service-metrics"];
export const MODULES = [...FILTERS, "resilience"];

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One refused configuration and what its critical line must say. */
export interface Case {
  title: string;
  text: string;
  /** The field the line must name (quoted, with the module's path prefix); "" for a whole-document problem. */
  field: string;
  /** A further exact part of the line, when the case knows it (e.g. the syntax error's position). */
  expect?: string | RegExp;
  /** Other fields a cross-field error must name too. */
  also?: string[];
}

export function shippedConfig(module: string): Record<string, Json> {
  return parse(readFileSync(`istio/${module}.yaml`, "utf8")).spec.pluginConfig ?? {};
}

// ------------------------------------------------------------------ a JSON printer that remembers where things are

/** Where a member or element sits in the printed text. */
interface Spot {
  path: string;
  /** Index of the key's opening quote (members only; -1 for elements). */
  keyAt: number;
  /** Index where the value starts, and just past its end. */
  valueAt: number;
  valueEnd: number;
  /** For the last element of a non-empty array: the array's path and length. */
  lastOf?: { path: string; length: number };
  inObject: boolean;
}

/** JSON with two-space indentation (several lines, so line and column matter), and every value's spot. */
export function printWithSpots(value: Json, prefix = ""): { text: string; spots: Spot[] } {
  const spots: Spot[] = [];
  let text = "";
  const write = (v: Json, path: string, indent: string): void => {
    if (Array.isArray(v)) {
      if (v.length === 0) { text += "[]"; return; }
      text += "[\n";
      v.forEach((item, i) => {
        text += indent + "  ";
        const at = text.length;
        write(item, `${path}[${i}]`, indent + "  ");
        spots.push({ path: `${path}[${i}]`, keyAt: -1, valueAt: at, valueEnd: text.length, inObject: false,
          lastOf: i === v.length - 1 ? { path, length: v.length } : undefined });
        text += (i < v.length - 1 ? "," : "") + "\n";
      });
      text += indent + "]";
    } else if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      if (keys.length === 0) { text += "{}"; return; }
      text += "{\n";
      keys.forEach((k, i) => {
        text += indent + "  ";
        const keyAt = text.length;
        const p = path === "" ? k : `${path}.${k}`;
        text += JSON.stringify(k) + ": ";
        const at = text.length;
        write(v[k], p, indent + "  ");
        spots.push({ path: p, keyAt, valueAt: at, valueEnd: text.length, inObject: true });
        text += (i < keys.length - 1 ? "," : "") + "\n";
      });
      text += indent + "}";
    } else {
      text += JSON.stringify(v);
    }
  };
  write(value, prefix, "");
  return { text, spots };
}

/** `syntax error at line L column C (byte B) in "path": `, computed from the text (ASCII here: column = index + 1). */
function position(text: string, at: number, path: string): string {
  const before = text.slice(0, at);
  const line = before.split("\n").length;
  const column = at - (before.lastIndexOf("\n") + 1) + 1;
  return `syntax error at line ${line} column ${column} (byte ${Buffer.byteLength(before)})${path ? ` in ${JSON.stringify(path)}` : ""}: `;
}

// ------------------------------------------------------------------ generators

/** Sets `value` at the dotted `path` of a copy of `base` (creating objects on the way). */
function withValue(base: Record<string, Json>, path: string[], value: Json): Record<string, Json> {
  const copy = structuredClone(base);
  let node: Record<string, Json> = copy;
  for (const k of path.slice(0, -1)) {
    if (node[k] === null || typeof node[k] !== "object" || Array.isArray(node[k])) node[k] = {};
    node = node[k] as Record<string, Json>;
  }
  node[path[path.length - 1]] = value;
  return copy;
}

/** Values of the wrong JSON type for a key of this kind, and the path the error names (an element for lists). */
function wrongTypes(kind: Kind): Array<[Json, string]> {
  switch (kind.t) {
    case "u32": case "f64": return [["7", ""], [true, ""], [[1], ""], [{ n: 1 }, ""]];
    case "bool": return [[1, ""], ["true", ""], [[], ""]];
    case "string": case "enum": return [[5, ""], [false, ""], [["x"], ""], [{}, ""]];
    case "strings": return [["x", ""], [3, ""], [[1], "[0]"], [{}, ""]];
    case "u32s": return [["x", ""], [["a"], "[0]"], [{}, ""]];
    case "object": return [[3, ""], ["x", ""], [[], ""]];
    case "objects": return [[3, ""], [{}, ""], [[1], "[0]"]];
  }
}

/** Values of the right type but out of range. */
function outOfRange(kind: Kind): Json[] {
  switch (kind.t) {
    case "u32": {
      const out: Json[] = [-1, 1.5, 1e12];
      if (kind.min > 0) out.push(kind.min - 1);
      if (kind.max < 4294967295) out.push(kind.max + 1);
      return out;
    }
    case "f64": return [kind.min - 1, kind.max + 1];
    case "enum": return ["bogus", kind.values[0].toUpperCase() === kind.values[0] ? "x" + kind.values[0] : kind.values[0].toUpperCase()];
    case "u32s": return [[kind.min - 1], [1.5]];
    default: return [];
  }
}

/** A near miss of `key` that is no other key: its first two letters swapped, or a doubled last letter. */
function misspell(key: string, others: string[]): string {
  const swapped = key[1] + key[0] + key.slice(2);
  return swapped !== key && !others.includes(swapped) ? swapped : key + key[key.length - 1];
}

/** Cases for one filter's section at `prefix` ("" for a single module, "traffic-split." in the combined one). */
function filterCases(module: string, filter: string, base: Record<string, Json>, section: string[]): Case[] {
  const schema = SCHEMAS[filter];
  const pre = section.length > 0 ? section.join(".") + "." : "";
  const cases: Case[] = [];
  const at = (path: string) => [...section, ...path.split(".")];
  for (const [key, kind] of Object.entries(schema)) {
    for (const [value, suffix] of wrongTypes(kind)) {
      cases.push({ title: `${pre}${key} = ${JSON.stringify(value)} (wrong type)`, text: JSON.stringify(withValue(base, at(key), value)),
        field: pre + key + suffix, expect: /: expected /u });
    }
    for (const value of outOfRange(kind)) {
      cases.push({ title: `${pre}${key} = ${JSON.stringify(value)} (out of range)`, text: JSON.stringify(withValue(base, at(key), value)),
        field: pre + key + (kind.t === "u32s" ? "[0]" : "") });
    }
  }
  // Misspelled keys, at the top of the section and inside its nested objects.
  for (const key of Object.keys(schema)) {
    const parts = key.split(".");
    const siblings = Object.keys(schema).filter((k) => k.split(".").length === parts.length).map((k) => k.split(".").pop()!);
    const wrong = misspell(parts[parts.length - 1], siblings);
    const kind = schema[key];
    const sample: Json = kind.t === "object" ? {} : kind.t === "bool" ? true : kind.t === "strings" ? [] : 1;
    const path = [...parts.slice(0, -1), wrong].join(".");
    cases.push({ title: `${pre}${path} (misspelled)`, text: JSON.stringify(withValue(base, at(path), sample)),
      field: pre + path, expect: `unknown field "${pre}${path}"` });
  }
  return cases;
}

/** Syntax errors at every member and element of the printed base: garbage after a value, a missing ':', a trailing
 * ',' in an array, a duplicate key; each must name the position and the enclosing field. */
function syntaxCases(base: Record<string, Json>): Case[] {
  const { text, spots } = printWithSpots(base);
  const cases: Case[] = [];
  for (const s of spots) {
    const garbage = text.slice(0, s.valueEnd) + " @" + text.slice(s.valueEnd);
    cases.push({ title: `'@' after ${s.path}`, text: garbage, field: s.path,
      expect: position(garbage, s.valueEnd + 1, s.path) + `expected ',' or '${s.inObject ? "}" : "]"}', got '@'` });
    if (s.inObject) {
      const colon = text.slice(0, s.valueAt - 2) + " " + text.slice(s.valueAt);
      cases.push({ title: `no ':' after ${s.path}`, text: colon, field: s.path,
        expect: position(colon, s.valueAt - 1, s.path) + "expected ':' after the key" });
      const member = text.slice(s.keyAt, s.valueEnd) + ", ";
      const dup = text.slice(0, s.keyAt) + member + text.slice(s.keyAt);
      const key = s.path.replace(/^.*[.\]]/u, "");
      cases.push({ title: `${s.path} twice`, text: dup, field: s.path,
        expect: position(dup, s.keyAt + member.length, s.path) + `duplicate key ${JSON.stringify(key)}` });
    }
    if (s.lastOf) {
      const trailing = text.slice(0, s.valueEnd) + "," + text.slice(s.valueEnd);
      const close = trailing.indexOf("]", s.valueEnd + 1);
      const path = `${s.lastOf.path}[${s.lastOf.length}]`;
      cases.push({ title: `trailing ',' in ${s.lastOf.path}`, text: trailing, field: path,
        expect: position(trailing, close, path) + "trailing ',' before ']'" });
    }
  }
  return cases;
}

/** Whole-document problems: no field to name, but the line says what is wrong and where. */
function documentCases(base: Record<string, Json>): Case[] {
  const padded = JSON.stringify({ ...base, padding: "\\n".repeat(MAX_CONFIG_BYTES / 2) });
  const size = Buffer.byteLength(padded);
  return [
    { title: "oversize (escapes)", text: padded, field: "", expect: `configuration is ${size} bytes, more than the cap of ${MAX_CONFIG_BYTES} bytes (256 KiB)` },
    { title: "a JSON array at the top", text: "[1, 2]", field: "", expect: "expected a JSON object at the top level, got [1,2]" },
    { title: "a number at the top", text: "42", field: "", expect: "expected a JSON object at the top level, got 42" },
    { title: "truncated", text: JSON.stringify(base).slice(0, -1), field: "", expect: /syntax error at line 1 column \d+ \(byte \d+\)/u },
    { title: "a byte-order mark", text: "\ufeff{}", field: "", expect: "syntax error at line 1 column 1 (byte 0): expected a value, got U+FEFF" },
  ];
}

export function casesFor(module: string): Case[] {
  const base = shippedConfig(module);
  const cases: Case[] = [];
  if (module === "resilience") {
    for (const f of FILTERS) cases.push(...filterCases(module, f, base, [f]));
    cases.push({ title: "filters names an unknown filter", text: JSON.stringify({ ...base, filters: ["deadline", "breaker"] }), field: "filters[1]" });
    cases.push({ title: "filters is not a list", text: JSON.stringify({ ...base, filters: "deadline" }), field: "filters" });
    cases.push({ title: "a section for an unknown filter", text: JSON.stringify({ ...base, "retry-budgets": {} }), field: "retry-budgets",
      expect: 'unknown field "retry-budgets" (did you mean "retry-budget"?)' });
    for (const f of FILTERS) {
      for (const c of CONTRADICTIONS[f]) {
        cases.push({ title: `${f}: ${c.title}`, text: JSON.stringify({ ...base, [f]: c.config }), field: `${f}.${c.field}`,
          also: c.also.map((n) => `"${f}.${n}"`) });
      }
    }
  } else {
    cases.push(...filterCases(module, module, base, []));
    for (const c of CONTRADICTIONS[module]) {
      cases.push({ title: c.title, text: JSON.stringify(c.config), field: c.field, also: c.also.map((n) => `"${n}"`) });
    }
  }
  cases.push(...syntaxCases(base));
  cases.push(...documentCases(base));
  return cases;
}

// ------------------------------------------------------------------ the runs

/** Starts the module with `text`; returns the critical lines, or null when the module accepted it. */
export function refusal(wasm: CompiledModule, module: string, text: string): string[] | null {
  const host = new Host();
  const vm = host.createVm(wasm, {});
  const root = vm.startRoot({ pluginConfig: text });
  if (root.vmStartResult && root.configureResult) return null;
  return host.logsAt(LogLevel.Critical).map((l) => l.message);
}
