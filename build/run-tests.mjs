// Runs every *.test.ts below the given folders with Node's built-in test runner (tsx as the TS loader).
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const only = process.env.TEST_ONLY; // optional substring filter on the file path
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".test.ts") && (!only || p.includes(only))) files.push(p);
  }
}
for (const d of args) walk(d);
if (files.length === 0) {
  console.error(`run-tests: no *.test.ts files under ${args.join(", ")}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
