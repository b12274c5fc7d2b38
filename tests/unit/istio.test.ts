// The Istio WasmPlugin manifests in istio/ name a root the module registers, pin the package's version, and carry a
// pluginConfig that the module itself accepts when handed over the way Istio does (JSON text, root_id = pluginName,
// empty vm_id), checked on the real .wasm in the emulator; and a failStrategy that never skips a guard.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { Host } from "../emulator/index.js";

const version = JSON.parse(readFileSync("package.json", "utf8")).version;

/** Filters that only observe: skipping them (FAIL_OPEN) loses measurements, and nothing a client chooses gets through. */
const OBSERVE_ONLY = new Set(["service-metrics"]);

/** The filters a module runs: the stages its entry registers with registerCombined, else the module itself. */
function stagesOf(module: string): string[] {
  const entry = readFileSync(`filters/${module}/index.ts`, "utf8");
  const combined = /registerCombined\(\s*"[\w-]+",\s*\[([^\]]*)\]/.exec(entry);
  return combined ? [...combined[1].matchAll(/"([\w-]+)"/g)].map((x) => x[1]) : [module];
}

const files = readdirSync("istio").filter((f) => f.endsWith(".yaml"));

describe("Istio WasmPlugin manifests", () => {
  test("there is one per module", () => {
    const modules = readdirSync("filters").filter((n) => existsSync(`filters/${n}/index.ts`)).sort();
    assert.deepEqual(files.map((f) => f.replace(/\.yaml$/, "")).sort(), modules);
  });

  for (const f of files) {
    const m = parse(readFileSync(`istio/${f}`, "utf8"));
    test(`${f} pins the OCI image of this version and names the module's root`, () => {
      assert.equal(m.kind, "WasmPlugin");
      assert.equal(m.spec.pluginName, f.replace(/\.yaml$/, ""));
      assert.match(m.spec.url, new RegExp(`^oci://[^/]+/resilience-filters/${m.spec.pluginName}:${version.replace(/\./g, "\\.")}$`));
    });
    test(`${f} fails closed unless every filter it runs only observes, and says why in its header`, () => {
      const stages = stagesOf(m.spec.pluginName);
      assert.ok(stages.length > 0 && stages.every((s) => existsSync(`filters/${s}/config.ts`)), `${f}: stages ${stages}`);
      const guards = stages.filter((s) => !OBSERVE_ONLY.has(s));
      if (guards.length > 0) assert.ok(["FAIL_CLOSE", "FAIL_RELOAD"].includes(m.spec.failStrategy), `${f} runs ${guards.join(", ")}: FAIL_OPEN would skip them`);
      else assert.equal(m.spec.failStrategy, "FAIL_OPEN", `${f} only observes: failing closed would refuse traffic for nothing`);
      const header = readFileSync(`istio/${f}`, "utf8").split("\n").filter((l) => l.startsWith("#")).join("\n");
      assert.match(header, new RegExp(`^# failStrategy ${m.spec.failStrategy}: .{20,}`, "m"));
    });
    test(`${f}'s pluginConfig is accepted by build/${m.spec.pluginName}.wasm`, () => {
      const host = new Host();
      const vm = host.startVm(`build/${m.spec.pluginName}.wasm`, {
        vmId: "", rootId: m.spec.pluginName, pluginName: `${m.metadata.namespace}.${m.metadata.name}`,
        pluginConfig: JSON.stringify(m.spec.pluginConfig),
      });
      assert.equal(vm.root.configureResult, true);
    });
  }
});
