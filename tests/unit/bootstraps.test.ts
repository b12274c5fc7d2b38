// Every shipped bootstrap in envoy-configs/ passes `envoy --mode validate` (Wasm modules loaded and configured, SDS
// files read, no listener started), as shipped: paths relative to the repo root, the build's modules, the test
// certificates of `npm run certs` (made here when missing).
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
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
