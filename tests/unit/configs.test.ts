// The shipped Envoy bootstraps stay consistent: every one that runs a project filter carries the full stats_tags list
// of envoy-configs/stats-tags.yaml (or its labels would leak into metric names), points at build/<name>.wasm of a filter
// that exists, and has a no-filter twin (<name>-baseline.yaml) as its control.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";

const DIR = "envoy-configs";
const canonical = parse(readFileSync(join(DIR, "stats-tags.yaml"), "utf8")).stats_tags;
const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml") && f !== "stats-tags.yaml");

/** Every vm_config.code.local.filename in a parsed bootstrap. */
function wasmFiles(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => wasmFiles(n, out));
  else if (node && typeof node === "object") {
    const o = node as Record<string, any>;
    const f = o.vm_config?.code?.local?.filename;
    if (typeof f === "string") out.push(f);
    Object.values(o).forEach((v) => wasmFiles(v, out));
  }
  return out;
}

describe("shipped Envoy configs", () => {
  test("stats-tags.yaml gives every tag a capture group for the value", () => {
    for (const t of canonical) assert.match(t.regex, /^\(\w+=\\\.=\(\.\*\?\);\\\.;\)$/, t.tag_name);
  });

  for (const f of files) {
    const cfg = parse(readFileSync(join(DIR, f), "utf8"));
    const modules = wasmFiles(cfg);
    if (modules.length === 0) continue;
    test(`${f} carries the full stats_tags list`, () => {
      assert.deepEqual(cfg.stats_config?.stats_tags, canonical);
    });
    test(`${f} loads modules the build produces`, () => {
      for (const m of modules) {
        const name = /^build\/(?:fixtures\/)?([\w-]+)(?:\.debug)?\.wasm$/.exec(m)?.[1];
        assert.ok(name, `${m}: expected build/<name>.wasm`);
        assert.ok(existsSync(join("filters", name)) || existsSync(join("tests", "fixtures", name)), `${m}: no filters/${name}`);
      }
    });
  }

  const filters = readdirSync("filters").filter((n) => existsSync(join("filters", n, "index.ts")));
  for (const name of filters) {
    test(`${name} ships a bootstrap and its no-filter twin`, () => {
      assert.ok(existsSync(join(DIR, `${name}.yaml`)), `${DIR}/${name}.yaml`);
      assert.ok(existsSync(join(DIR, `${name}-baseline.yaml`)), `${DIR}/${name}-baseline.yaml`);
      const twin = parse(readFileSync(join(DIR, `${name}-baseline.yaml`), "utf8"));
      assert.deepEqual(wasmFiles(twin), [], "the twin runs no Wasm");
    });
  }
});
