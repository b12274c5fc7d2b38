// The Istio WasmPlugin manifests in istio/ name a root the module registers, pin the package's version, and carry a
// pluginConfig that the module itself accepts when handed over the way Istio does (JSON text, root_id = pluginName,
// empty vm_id), checked on the real .wasm in the emulator.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { Host } from "../emulator/index.js";

const version = JSON.parse(readFileSync("package.json", "utf8")).version;
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
