// `npm run release:check`: what a user of the package gets, checked from the tarball. Packs it (`npm pack`, whose
// prepack compiles the emulator and harness), checks the file list holds no test fixtures, caches or scratch, installs
// it into a fresh temporary project offline (the npm cache `npm ci` filled), and there, only through the installed
// package: validates a good and a bad configuration with its CLI, compiles the SDK example (examples/sdk-filter) with
// asc against the installed binding, tests it in the installed emulator, and runs it with an installed module in a
// real Envoy through the installed harness (process mode; ENVOY_BIN, else the repo's .venv Envoy).
// Needs `npm run build` first. KEEP_RELEASE_CHECK=1 keeps the temporary project.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveEnvoyBinary } from "./setup.mjs";

const root = new URL("..", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const started = performance.now();
const work = mkdtempSync(join(tmpdir(), "release-check-"));
/** Paths a tarball must never hold: tests, their fixtures, debug builds, caches, scratch, sources of the filters. */
const FORBIDDEN = [/^tests\//u, /__tests__/u, /\.debug\.wasm$/u, /\.map$/u, /^build\/(out|fixtures)\//u, /node_modules\//u,
  /^\.venv/u, /^\.ci\//u, /^tmp\//u, /\.log$/u, /^filters\/.*\.ts$/u, /\.tgz$/u];

/**
 * A lockfile for the example project: the package from the tarball, every other package at the version and integrity
 * the repo's own lockfile pins (so `npm ci --offline` finds them in the cache `npm ci` filled, without the registry).
 */
function lockFor(project, tarball) {
  const repo = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")).packages;
  const packages = { "": { name: project.name, version: project.version, devDependencies: project.devDependencies } };
  const add = (name) => {
    const key = `node_modules/${name}`;
    if (packages[key]) return;
    if (!repo[key]) throw new Error(`package-lock.json pins no ${name}`);
    const { dev, peer, devOptional, ...entry } = repo[key];
    packages[key] = { ...entry, dev: true };
    for (const dep of Object.keys(entry.dependencies ?? {})) add(dep);
  };
  for (const name of Object.keys(project.devDependencies)) if (name !== pkg.name) add(name);
  for (const name of Object.keys(pkg.dependencies ?? {})) add(name);
  packages[`node_modules/${pkg.name}`] = {
    version: pkg.version, resolved: `file:${tarball}`, dev: true, dependencies: pkg.dependencies,
    peerDependencies: pkg.peerDependencies, peerDependenciesMeta: pkg.peerDependenciesMeta, bin: pkg.bin, engines: pkg.engines,
  };
  return { name: project.name, version: project.version, lockfileVersion: 3, requires: true, packages };
}

/** PATH without the repo's node_modules/.bin: the temporary project uses only what it installed. */
const PATH = (process.env.PATH ?? "").split(":").filter((d) => !d.startsWith(join(root, "node_modules"))).join(":");
/**
 * The system's npm, found on that PATH: under `npm run`, PATH starts with node_modules/.bin, where a dependency's npm 6
 * sits (@as-pect/cli -> glob-promise -> npm-install-peers -> npm@6), and inside `npm test`'s chain even npm_execpath
 * names that one; npm 6 has no `pack --pack-destination`.
 */
const NPM = ["npm"];
{
  const v = spawnSync("npm", ["--version"], { encoding: "utf8", env: { ...process.env, PATH } });
  const major = Number((v.stdout ?? "").trim().split(".")[0]);
  if (v.status !== 0 || !(major >= 7)) {
    console.error(`release:check: needs npm 7 or later on PATH (outside node_modules), found ${JSON.stringify((v.stdout ?? "").trim() || v.error?.message)}`);
    process.exit(1);
  }
}

let step = "";
function run(what, cmd, args, opts = {}) {
  step = what;
  const t0 = performance.now();
  const [bin, ...pre] = cmd === "npm" ? NPM : [cmd];
  const r = spawnSync(bin, [...pre, ...args], { encoding: "utf8", ...opts, env: { ...process.env, PATH, ...opts.env } });
  const ms = performance.now() - t0;
  if (r.status !== (opts.expectStatus ?? 0)) {
    console.error(`release:check: ${what} failed (exit ${r.status}, expected ${opts.expectStatus ?? 0}): ${cmd} ${args.join(" ")}`);
    console.error(r.stdout, r.stderr);
    throw new Error(what);
  }
  console.log(`  ok  ${what} (${(ms / 1000).toFixed(1)} s)`);
  return r.stdout;
}

function check(condition, what, detail = "") {
  if (!condition) {
    console.error(`release:check: ${what}${detail ? `\n${detail}` : ""}`);
    throw new Error(what);
  }
  console.log(`  ok  ${what}`);
}

let failed = false;
try {
  console.log(`release:check: ${pkg.name}@${pkg.version} in ${work}`);
  // 1. The tarball and what it holds.
  const packed = JSON.parse(run("npm pack", "npm", ["pack", "--json", "--pack-destination", work], { cwd: root }));
  const { filename, files, size } = packed[0];
  const tarball = join(work, filename);
  const bad = files.map((f) => f.path).filter((p) => FORBIDDEN.some((re) => re.test(p)));
  check(bad.length === 0, `the tarball (${files.length} files, ${(size / 1024).toFixed(0)} KiB) holds no tests, fixtures, debug builds, caches or scratch`, bad.join("\n"));
  const need = ["build/resilience.wasm", "dist/emulator/index.js", "dist/harness/index.d.ts", "cli/cli.mjs", "schemas/types.d.ts",
    "schemas/resilience.schema.json", "assembly/stage.ts", "docs/sdk.md", "CHANGELOG.md", "README.md"];
  const paths = new Set(files.map((f) => f.path));
  check(need.every((p) => paths.has(p)), "the tarball holds the modules, emulator, harness, CLI, schemas, types, binding, guide and changelog",
    need.filter((p) => !paths.has(p)).join("\n"));

  // 2. A fresh project: the SDK example, depending on the tarball; installed without the network.
  const proj = join(work, "project");
  cpSync(join(root, "examples", "sdk-filter"), proj, { recursive: true, filter: (src) => !/\/(build|node_modules)$/u.test(src) });
  const example = JSON.parse(readFileSync(join(proj, "package.json"), "utf8"));
  example.devDependencies[pkg.name] = `file:${tarball}`;
  writeFileSync(join(proj, "package.json"), JSON.stringify(example, null, 2));
  writeFileSync(join(proj, "package-lock.json"), JSON.stringify(lockFor(example, tarball), null, 2));
  run("npm ci --offline (the tarball; assemblyscript and the runtime dependencies from the npm cache)", "npm",
    ["ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: proj });
  const installed = join(proj, "node_modules", pkg.name);
  const bin = join(proj, "node_modules", ".bin", pkg.name);

  // 3. The CLI: a shipped configuration is accepted, a bad one refused with the module's own line; versions agree.
  const good = run("validate a shipped bootstrap with the installed CLI", bin,
    ["validate", "retry-budget", join(installed, "envoy-configs", "retry-budget.yaml")], { cwd: proj });
  check(good.includes(`accepted by retry-budget ${pkg.version}`), `the installed module reports the package's version ${pkg.version}`, good);
  writeFileSync(join(proj, "bad.json"), '{"retryRatio": 99}');
  const refused = run("validate a bad configuration (exit 1)", bin, ["validate", "retry-budget", "bad.json"], { cwd: proj, expectStatus: 1 });
  const line = 'retry-budget: field "retryRatio": expected a number between 0 and 10, got 99';
  check(refused.includes(`\n  ${line}\n`), "the CLI prints the module's critical line", refused);

  // The exports map: module paths resolve (require and import), and the types type-check a consumer's code.
  const resolved = run("resolve a module, a schema and the bootstraps through the exports map", process.execPath, ["--input-type=module", "-e", `
    import { createRequire } from "node:module";
    import { modulePath, schemaPath, VERSION } from "${pkg.name}";
    const require = createRequire(process.cwd() + "/");
    const paths = [require.resolve("${pkg.name}/modules/resilience.wasm"), import.meta.resolve("${pkg.name}/schemas/deadline.schema.json"),
      require.resolve("${pkg.name}/envoy-configs/sidecar.yaml"), modulePath("resilience"), schemaPath("deadline"), VERSION];
    console.log(JSON.stringify(paths));`], { cwd: proj });
  const [viaRequire, , , viaApi, , version] = JSON.parse(resolved);
  check(viaRequire === viaApi && viaRequire.startsWith(installed) && version === pkg.version, "require.resolve and modulePath agree, inside the install", resolved);
  writeFileSync(join(proj, "types-check.ts"), `
import type { ResilienceConfig, RetryBudgetConfig } from "${pkg.name}";
import { modulePath } from "${pkg.name}";
import { compileModule, Host } from "${pkg.name}/emulator";
import { startEnvoy } from "${pkg.name}/harness";
import { validate } from "${pkg.name}/validate";
const budget: RetryBudgetConfig = { retryRatio: 0.2, retryOn: "5xx", destinationKey: "cluster" };
const combined: ResilienceConfig = { filters: ["deadline", "retry-budget"], deadline: { reporter: "gateway" }, "retry-budget": budget };
// @ts-expect-error: not a key of the configuration
const misspelt: RetryBudgetConfig = { retryRatioo: 1 };
// @ts-expect-error: not one of the values
const wrong: ResilienceConfig = { deadline: { incoming: "always" } };
export const used = [combined, misspelt, wrong, startEnvoy, validate(await import("${pkg.name}/emulator"), compileModule(modulePath("deadline")), "deadline", "{}"), new Host()];
`);
  run("type-check a consumer against the installed types (tsc, NodeNext)", join(root, "node_modules", ".bin", "tsc"),
    ["--noEmit", "--strict", "--skipLibCheck", "--target", "ES2022", "--module", "NodeNext", "--moduleResolution", "NodeNext", "types-check.ts"], { cwd: proj });

  // 4. The example: compiled against the installed binding, tested in the installed emulator and in a real Envoy.
  run("compile the SDK example with asc from node_modules", "npm", ["run", "--silent", "build"], { cwd: proj });
  const envoy = resolveEnvoyBinary();
  const tests = run("the example's tests: installed emulator, installed harness + module in Envoy", process.execPath,
    ["--test", "--test-reporter=spec", "test/"], { cwd: proj, env: { ENVOY_BIN: envoy, ENVOY_MODE: "process" } });
  check(/# fail 0/u.test(tests) || /ℹ fail 0/u.test(tests), "every example test passed", tests);
  const wasmSize = statSync(join(proj, "build", "path-guard.wasm")).size;
  console.log(`release:check: passed in ${((performance.now() - started) / 1000).toFixed(1)} s; tarball ${filename} ${size} bytes; example module ${wasmSize} bytes`);
} catch (e) {
  failed = true;
  console.error(`release:check: FAILED at "${step}": ${e.message}`);
} finally {
  if (process.env.KEEP_RELEASE_CHECK === "1") console.log(`release:check: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
