// Builds bench/go/* (the Go proxy-wasm comparison modules) into build/go/<name>.wasm with standard Go
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared). The SDK, github.com/tetratelabs/proxy-wasm-go-sdk from the Go module
// proxy (bench/go/go.mod pins it), declares its ABI with TinyGo's //export only; the build copies it from the module
// cache into build/go/sdk and adds bench/go/abi/*.go, the same functions over //go:wasmimport and //go:wasmexport.
// Module and build caches live under build/go, so a clean clone needs only `go` and the module proxy.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { projectRoot } from "../harness/index.js";

export const GO_MODULES = ["service-metrics", "breaker-closed"] as const;
const SDK = "github.com/tetratelabs/proxy-wasm-go-sdk";

function go(args: string[], env: Record<string, string>, cwd: string): string {
  const r = spawnSync("go", args, { cwd, env: { ...process.env, ...env }, encoding: "utf8" });
  if (r.error) throw new Error(`go not found (${r.error.message}): the Go comparison needs Go >= 1.24 on PATH`);
  if (r.status !== 0) throw new Error(`go ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

export interface GoBuild {
  /** Module name → .wasm path (absolute). */
  modules: Record<string, string>;
  sdkVersion: string;
  goVersion: string;
  command: string;
}

export function buildGoModules(): GoBuild {
  const root = projectRoot;
  const src = resolve(root, "bench/go");
  const out = resolve(root, "build/go");
  mkdirSync(out, { recursive: true });
  const env = { GOFLAGS: "-modcacherw", GOMODCACHE: `${out}/mod`, GOCACHE: `${out}/cache` };
  const info = JSON.parse(go(["mod", "download", "-json", SDK], env, src)) as { Dir: string; Version: string };
  // The SDK as published, minus its non-TinyGo mock host, plus the standard-Go ABI glue.
  const sdk = `${out}/sdk`;
  rmSync(sdk, { recursive: true, force: true });
  cpSync(info.Dir, sdk, { recursive: true });
  const internal = `${sdk}/proxywasm/internal`;
  for (const f of ["abi_hostcalls_mock.go", "abi_callback_test_export.go", "vmstate_test_export.go"]) rmSync(`${internal}/${f}`);
  cpSync(`${src}/abi/hostcalls.go`, `${internal}/abi_hostcalls.go`);
  cpSync(`${src}/abi/exports.go`, `${internal}/zz_wasmexports.go`);
  writeFileSync(`${out}/go.mod`, `${readFileSync(`${src}/go.mod`, "utf8")}\nreplace ${SDK} => ${sdk}\n`);
  cpSync(`${src}/go.sum`, `${out}/go.sum`);
  const modules: Record<string, string> = {};
  const flags = ["build", `-modfile=${out}/go.mod`, "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w"];
  for (const name of GO_MODULES) {
    const file = `${out}/${name}.wasm`;
    go([...flags, "-o", file, `./${name}`], { ...env, GOOS: "wasip1", GOARCH: "wasm" }, src);
    if (!existsSync(file)) throw new Error(`go build left no ${file}`);
    modules[name] = file;
  }
  return {
    modules,
    sdkVersion: `${SDK}@${info.Version}`,
    goVersion: go(["env", "GOVERSION"], env, src).trim(),
    command: `GOOS=wasip1 GOARCH=wasm go ${flags.join(" ")} -o build/go/<name>.wasm ./<name> (in bench/go)`,
  };
}
