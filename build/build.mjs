// Compiles every filters/<name>/index.ts to build/<name>.wasm (release, size-optimised) and build/<name>.debug.wasm,
// prints sizes, and checks each module's imports against what Envoy provides (a mismatch fails the build).
import { readdirSync, existsSync, readFileSync, statSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { checkModule } from "./wasm-imports.mjs";

const root = new URL("..", import.meta.url).pathname;
const only = process.argv.slice(2);
const entries = (dir) => readdirSync(join(root, dir))
  .filter((n) => existsSync(join(root, dir, n, "index.ts")))
  .filter((n) => only.length === 0 || only.includes(n))
  .sort();
const names = entries("filters");
// Test fixtures (e.g. the empty filter that is the benchmarks' floor) are built to build/fixtures/, release only.
const fixtures = entries("tests/fixtures");
if (names.length === 0) {
  console.error("build: no filters/<name>/index.ts found" + (only.length ? ` for ${only.join(", ")}` : ""));
  process.exit(1);
}
mkdirSync(join(root, "build", "fixtures"), { recursive: true });
const asc = join(root, "node_modules", ".bin", "asc");
// binaryen's wasm-opt (installed with assemblyscript): one more -Oz round over asc's output shrinks release modules
// by 1-2 KB more; the features are asc's defaults, so the module needs nothing more from Envoy's runtime.
// Configuration-path string literals stored as UTF-8 (see the file); given here because asc resolves an asconfig.json
// "transform" under the project directory as a package name.
const UTF8_STRINGS = "./build/size-utf8-strings.mjs";
const wasmOpt = join(root, "node_modules", ".bin", "wasm-opt");
const WASM_OPT_ARGS = ["-Oz", "--enable-bulk-memory", "--enable-sign-ext",
  "--enable-nontrapping-float-to-int", "--enable-mutable-globals"];
let failed = false;
const jobs = [];
for (const name of names) {
  jobs.push({ name, src: join("filters", name, "index.ts"), target: "release", out: join("build", `${name}.wasm`) });
  jobs.push({ name, src: join("filters", name, "index.ts"), target: "debug", out: join("build", `${name}.debug.wasm`) });
}
for (const name of fixtures) {
  jobs.push({ name, src: join("tests", "fixtures", name, "index.ts"), target: "release", out: join("build", "fixtures", `${name}.wasm`) });
}
for (const { name, src, target, out } of jobs) {
  {
    const r = spawnSync(asc, [src, "--config", "asconfig.json", "--target", target, "--transform", UTF8_STRINGS, "-o", out],
      { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) {
      console.error(`build: ${name} (${target}) failed to compile`);
      process.exit(1);
    }
    if (target === "release") {
      const o = spawnSync(wasmOpt, [...WASM_OPT_ARGS, out, "-o", out], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
      if (o.status !== 0) {
        console.error(`build: wasm-opt failed on ${out}`);
        process.exit(1);
      }
    }
    const { problems, imports } = checkModule(readFileSync(join(root, out)));
    const size = statSync(join(root, out)).size;
    const fns = imports.filter((i) => i.kind === "function").length;
    console.log(`${out.padEnd(36)} ${String(size).padStart(8)} bytes  ${fns} imports${problems.length ? "  INVALID" : "  ok"}`);
    for (const p of problems) console.error(`  ${out}: ${p}`);
    if (problems.length) failed = true;
  }
}
if (failed) {
  console.error("build: some modules import what Envoy does not provide (see above)");
  process.exit(1);
}
