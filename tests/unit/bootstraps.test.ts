// Every shipped bootstrap in envoy-configs/ passes `envoy --mode validate` (Wasm modules loaded and configured, SDS
// files read, no listener started), as shipped: paths relative to the repo root, the build's modules, the test
// certificates of `npm run certs` (made here when missing).
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { projectRoot, resolveEnvoyBinary } from "../harness/index.js";

const run = promisify(execFile);
const DIR = "envoy-configs";
const files = readdirSync(join(projectRoot, DIR)).filter((f) => f.endsWith(".yaml") && f !== "stats-tags.yaml").sort();

describe("envoy --mode validate on every shipped bootstrap", () => {
  before(() => {
    assert.ok(existsSync(join(projectRoot, "build", "resilience.wasm")), "build/*.wasm missing: run `npm run build` first");
    if (!existsSync(join(projectRoot, "build", "out", "certs", "service-a", "cert.yaml"))) {
      const r = spawnSync("bash", ["build/certs.sh"], { cwd: projectRoot, encoding: "utf8" });
      assert.equal(r.status, 0, `build/certs.sh failed: ${r.stderr}`);
    }
  });

  test("the folder ships the deployable configs", () => {
    for (const f of ["sidecar.yaml", "sidecar-mtls-permissive.yaml", "sidecar-mtls-strict.yaml", "gateway.yaml", "gateway-mtls.yaml"]) {
      assert.ok(files.includes(f), f);
    }
  });

  for (const f of files) {
    test(`${f} is valid`, async () => {
      const bin = resolveEnvoyBinary();
      const { stdout, stderr } = await run(bin, ["--mode", "validate", "-c", join(DIR, f), "-l", "warning"], {
        cwd: projectRoot,
        encoding: "utf8",
      }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
        assert.fail(`${f} refused: ${(e.stderr || e.stdout || e.message).slice(-2_000)}`);
      });
      assert.match(stdout + stderr, new RegExp(`configuration '${DIR}/${f.replace(".", "\\.")}' OK`));
    });
  }
});

/** A parsed bootstrap with its TLS parts taken out: what must stay the same between a sidecar and its mTLS variants. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function withoutTls(cfg: any): any {
  delete cfg.node;
  for (const l of cfg.static_resources.listeners) {
    delete l.listener_filters;
    l.filter_chains = l.filter_chains.filter((c: { name?: string }) => c.name !== "plaintext");
    for (const c of l.filter_chains) {
      delete c.name;
      delete c.filter_chain_match;
      delete c.transport_socket;
      c.filters[0].typed_config.stat_prefix = c.filters[0].typed_config.stat_prefix.replace(/_mtls$/, "");
    }
  }
  for (const c of cfg.static_resources.clusters) delete c.transport_socket;
  return cfg;
}

describe("the mTLS variants are sidecar.yaml plus TLS", () => {
  const read = (f: string) => parse(readFileSync(join(projectRoot, DIR, f), "utf8"));
  for (const f of ["sidecar-mtls-permissive.yaml", "sidecar-mtls-strict.yaml"]) {
    test(`${f}: the same listeners, filters, routes and clusters as sidecar.yaml`, () => {
      assert.deepEqual(withoutTls(read(f)), read("sidecar.yaml"));
    });
  }
  test("gateway-mtls.yaml: gateway.yaml plus TLS", () => {
    assert.deepEqual(withoutTls(read("gateway-mtls.yaml")), read("gateway.yaml"));
  });
  test("permissive serves plaintext on a chain of its own, the same HTTP chain as its mTLS one", () => {
    const inbound = read("sidecar-mtls-permissive.yaml").static_resources.listeners.find((l: { name: string }) => l.name === "inbound");
    const [mtls, plain] = inbound.filter_chains;
    assert.deepEqual([mtls.filter_chain_match, plain.filter_chain_match], [{ transport_protocol: "tls" }, { transport_protocol: "raw_buffer" }]);
    const hcm = (c: { filters: Array<{ typed_config: Record<string, unknown> }> }) => {
      const { stat_prefix: _p, ...rest } = c.filters[0].typed_config;
      return rest;
    };
    assert.deepEqual(hcm(plain), hcm(mtls));
    assert.equal(mtls.transport_socket.typed_config.require_client_certificate, true);
  });
});
