// The JSON Schemas (schemas/*.schema.json, from build/schemas.mjs) agree with the modules' own parsers: every
// configuration shipped in the repo, every case of the bad-config corpus and a seeded set of random mixes of valid
// values (which drive the cross-field rules) get the same verdict from the schema and the real .wasm in the emulator,
// except where the module refuses for a rule JSON Schema cannot express; each such refusal must match one of the
// rules listed in CLI_ONLY, and every listed rule must be met at least once (the list holds nothing stale).
// The schema never refuses what a module accepts. Needs `node build/build.mjs` first.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { Ajv2020 } from "ajv/dist/2020.js";
import { compileModule } from "../emulator/index.js";
import { prng } from "../harness/upstream.js";
import { casesFor, FILTERS, MODULES, refusal, shippedConfig, type Json } from "./bad-configs/corpus.js";
import { CONTRADICTIONS, SCHEMAS, type Kind } from "./bad-configs/schemas.js";
// @ts-expect-error: plain ES module without types
import { CLI_ONLY, outputs } from "../../build/schemas.mjs";
import { configurationsIn } from "../../cli/validate.mjs";

const RANDOM_PER_MODULE = 600;
const cliOnly = CLI_ONLY as Array<{ rule: string; message: RegExp }>;
const ajv = new Ajv2020({ allErrors: false, allowUnionTypes: true, strictTypes: false, strictTuples: false });

/** Every configuration of `module` shipped in envoy-configs/ (bootstraps), istio/ (WasmPlugins) and examples/configs/. */
function shipped(module: string): Array<{ where: string; text: string }> {
  const example = `examples/configs/${module}.yaml`;
  const out: Array<{ where: string; text: string }> = [{ where: example, text: JSON.stringify(parse(readFileSync(example, "utf8"))) }];
  for (const dir of ["envoy-configs", "istio"]) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".yaml"))) {
      const text = readFileSync(`${dir}/${f}`, "utf8");
      const doc = parse(text);
      // Bootstraps and this module's WasmPlugin; other YAML (stats_tags, alerts) holds no plugin configuration.
      if (dir === "istio" ? doc?.spec?.pluginName !== module : !doc?.static_resources) continue;
      for (const c of configurationsIn(`${dir}/${f}`, text, module) as Array<{ where: string; text: string }>) {
        out.push({ where: `${dir}/${f} ${c.where}`, text: c.text });
      }
    }
  }
  return out;
}

/** A valid-looking value of a key's kind, boundaries preferred: mixes of these meet the cross-field rules. */
function valueOf(kind: Kind, rnd: () => number): Json {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  switch (kind.t) {
    case "u32": return pick([kind.min, kind.max, kind.min + 1, Math.min(kind.max, kind.min * 4 + 4), kind.min + Math.floor(rnd() * Math.min(kind.max - kind.min + 1, 20000)), 0, 100, 250, 1000, 5000]);
    case "f64": return pick([kind.min, kind.max, 0, 0.5, 0.98, 0.99, 1, (kind.min + kind.max) * rnd()]);
    case "bool": return rnd() < 0.5;
    case "string": return pick(["", "x-a", "header", "X-Up", "content-length", "5xx,reset", "5xx, gateway-error", "/api", "Main", "ok_name"]);
    case "enum": return pick(kind.values);
    case "strings": return pick([[], ["5xx"], ["header", "header"], ["header", "grpc-timeout"], ["timeout", "reset"], ["deadline"], ["a"]]);
    case "u32s": return pick([[], [kind.min], [kind.max, kind.min]]);
    case "object": return {};
    case "objects": return [];
  }
}

/** A section made of 1 to 4 keys with boundary values, sometimes over a hand-written contradiction's fields. */
function randomSection(filter: string, rnd: () => number): Record<string, Json> {
  const keys = Object.entries(SCHEMAS[filter]).filter(([k]) => !k.includes("."));
  const base: Record<string, Json> = rnd() < 0.3 ? structuredClone(CONTRADICTIONS[filter][Math.floor(rnd() * CONTRADICTIONS[filter].length)].config) as Record<string, Json> : {};
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const [k, kind] = keys[Math.floor(rnd() * keys.length)];
    base[k] = valueOf(kind, rnd);
  }
  for (const [k, kind] of Object.entries(SCHEMAS[filter]).filter(([k]) => k.includes("."))) {
    if (rnd() < 0.15) {
      const [outer, inner] = k.split(".");
      const o = (base[outer] && typeof base[outer] === "object" && !Array.isArray(base[outer]) ? base[outer] : {}) as Record<string, Json>;
      o[inner] = valueOf(kind, rnd);
      base[outer] = o;
    }
  }
  return base;
}

function randomCases(module: string): string[] {
  const rnd = prng(0x5c4e_0000 + module.length);
  const out: string[] = [];
  for (let i = 0; i < RANDOM_PER_MODULE; i++) {
    if (module === "resilience") {
      const f = FILTERS[Math.floor(rnd() * FILTERS.length)];
      out.push(JSON.stringify({ [f]: randomSection(f, rnd) }));
    } else {
      out.push(JSON.stringify(randomSection(module, rnd)));
    }
  }
  return out;
}

/** Which CLI-only rules were met, over all modules. */
const met = new Map<string, number>();
const tally = { schemaDecided: 0, cliOnly: 0, accepted: 0 };

/** Checks one text both ways; returns "" when they agree (or a listed rule explains the difference), else why not. */
function compare(module: string, validate: (d: unknown) => boolean, errors: () => unknown, wasm: ReturnType<typeof compileModule>, text: string): string {
  const refused = refusal(wasm, module, text);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    if (refused === null) return `the module accepts text JSON.parse refuses: ${text.slice(0, 200)}`;
    const rule = cliOnly.find((r) => r.message.test(refused[0]));
    if (!rule) return `a syntax refusal matches no CLI_ONLY rule: ${refused[0]}`;
    met.set(rule.rule, (met.get(rule.rule) ?? 0) + 1);
    tally.cliOnly++;
    return "";
  }
  const schemaOk = validate(data);
  if (refused === null) {
    tally.accepted++;
    // A new key or value in a config.ts shows here first: describe it in build/schemas.mjs and run it.
    return schemaOk ? "" : `the schema refuses what the module accepts (a key or value build/schemas.mjs does not describe yet?): ${text.slice(0, 300)}\n${JSON.stringify(errors())}`;
  }
  if (!schemaOk) {
    tally.schemaDecided++;
    return "";
  }
  const rule = cliOnly.find((r) => r.message.test(refused[0]));
  if (!rule) return `the schema accepts what the module refuses, for a rule not in CLI_ONLY: ${refused[0]}\n${text.slice(0, 300)}`;
  met.set(rule.rule, (met.get(rule.rule) ?? 0) + 1);
  tally.cliOnly++;
  return "";
}

test("schemas/ is what build/schemas.mjs writes (run `node build/schemas.mjs` after changing it)", () => {
  for (const [file, text] of Object.entries(outputs() as Record<string, string>)) {
    assert.equal(readFileSync(`schemas/${file}`, "utf8"), text, `schemas/${file} is stale`);
  }
});

for (const module of MODULES) {
  describe(`${module}: the JSON Schema and the module agree`, () => {
    const wasm = compileModule(`build/${module}.wasm`);
    const schema = JSON.parse(readFileSync(`schemas/${module}.schema.json`, "utf8"));
    const validate = ajv.compile(schema);
    const check = (text: string) => compare(module, validate, () => validate.errors, wasm, text);

    test("every shipped configuration is accepted by both", () => {
      const found = shipped(module);
      assert.ok(found.length >= 1, "no shipped configuration found");
      found.push({ where: "the corpus base", text: JSON.stringify(shippedConfig(module)) }, { where: "{}", text: "{}" });
      for (const c of found) {
        assert.equal(refusal(wasm, module, c.text), null, `${c.where}: refused by the module`);
        assert.ok(validate(JSON.parse(c.text)),
          `${c.where}: refused by the schema (describe the module's new key or value in build/schemas.mjs, then run it): ${JSON.stringify(validate.errors)}`);
      }
    });

    test("examples/configs names its schema for editors and holds the Istio manifest's pluginConfig", () => {
      const text = readFileSync(`examples/configs/${module}.yaml`, "utf8");
      assert.equal(text.split("\n")[0], `# yaml-language-server: $schema=../../schemas/${module}.schema.json`);
      assert.deepEqual(parse(text), shippedConfig(module));
    });

    test("every case of the bad-config corpus: same verdict, or a listed CLI-only rule", () => {
      const problems = casesFor(module).map((c) => check(c.text)).filter((p) => p !== "");
      assert.deepEqual(problems.slice(0, 5), []);
    });

    test(`${RANDOM_PER_MODULE} seeded mixes of boundary values: same verdict, or a listed CLI-only rule`, () => {
      const problems = randomCases(module).map(check).filter((p) => p !== "");
      assert.deepEqual(problems.slice(0, 5), []);
    });
  });
}

test("every CLI-only rule is met by some case (the list names real gaps only)", () => {
  const unmet = cliOnly.filter((r) => !met.has(r.rule)).map((r) => r.rule);
  assert.deepEqual(unmet, []);
  console.log(`schema agreement: ${tally.accepted} accepted by both, ${tally.schemaDecided} refused by both, ${tally.cliOnly} refused by the module only (CLI-only rules)`);
  for (const r of cliOnly) console.log(`  ${met.get(r.rule)}  ${r.rule}`);
});
