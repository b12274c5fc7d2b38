// Each Istio WasmPlugin manifest, translated the way Istio translates it (reference section 10: plugin name
// <namespace>.<name>, root_id = pluginName, configuration = StringValue holding the JSON of pluginConfig, empty vm_id,
// failStrategy -> failure_policy), runs in a real Envoy in front of resilience.yaml's services; and the OCI images
// `npm run oci` builds hold exactly the module as plugin.wasm.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse } from "yaml";
import { closeHttp, envoyModes, request, startEnvoy, startUpstream } from "../harness/index.js";
// @ts-expect-error: plain ESM build script without type declarations
import { ociImages } from "../../build/oci.mjs";

after(closeHttp);

const manifests = readdirSync("istio").filter((f) => f.endsWith(".yaml")).map((f) => parse(readFileSync(join("istio", f), "utf8")));
const FAILURE_POLICY: Record<string, string> = { FAIL_CLOSE: "FAIL_CLOSED", FAIL_OPEN: "FAIL_OPEN", FAIL_RELOAD: "FAIL_RELOAD" };
const modes = await envoyModes();

describe("Istio WasmPlugin manifests in a real Envoy", () => {
  for (const m of manifests) {
    test(`${m.metadata.name}: the config Istio would push is accepted and serves traffic`, async () => {
      const up = await startUpstream({ name: "svc" });
      const envoy = await startEnvoy({
        config: "envoy-configs/resilience.yaml", concurrency: 2, mode: modes[0],
        clusters: { "checkout-stable": up, "checkout-canary": up, inventory: up, payments: up },
        wasm: { [m.spec.pluginName]: `build/${m.spec.pluginName}.wasm` },
        mutate: (cfg: any) => {
          const c = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config;
          c.name = `${m.metadata.namespace}.${m.metadata.name}`;
          c.root_id = m.spec.pluginName;
          c.vm_config.vm_id = "";
          c.vm_config.code.local.filename = `build/${m.spec.pluginName}.wasm`;
          c.configuration.value = JSON.stringify(m.spec.pluginConfig);
          c.failure_policy = FAILURE_POLICY[m.spec.failStrategy];
        },
      });
      try {
        for (const host of ["checkout", "inventory"]) {
          const r = await request(envoy.url() + "/", { headers: { host, "x-user-id": "u1" } });
          assert.equal(r.status, 200, `${host}: ${r.body}`);
        }
      } finally {
        await envoy.stop();
        await up.close();
      }
    });
  }
});

describe("OCI images for Istio", { skip: modes.includes("container") ? false : "no Docker engine (container mode skipped)" }, () => {
  test("each image is one layer holding the module as plugin.wasm", () => {
    const tags: string[] = ociImages();
    assert.equal(tags.length, manifests.length);
    for (const tag of tags) {
      const name = /\/([\w-]+):/.exec(tag)![1];
      const dir = mkdtempSync(join(tmpdir(), "oci-test-"));
      try {
        execFileSync("sh", ["-c", `docker save ${tag} | tar -C ${dir} -xf -`]);
        const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
        assert.equal(manifest[0].Layers.length, 1, `${tag}: one layer`);
        const files = execFileSync("tar", ["-tf", join(dir, manifest[0].Layers[0])], { encoding: "utf8" }).trim().split("\n");
        assert.deepEqual(files, ["plugin.wasm"]);
        execFileSync("tar", ["-C", dir, "-xf", join(dir, manifest[0].Layers[0]), "plugin.wasm"]);
        assert.ok(readFileSync(join(dir, "plugin.wasm")).equals(readFileSync(`build/${name}.wasm`)), `${tag}: plugin.wasm is build/${name}.wasm`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
