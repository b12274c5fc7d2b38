#!/usr/bin/env node
// envoy-resilience-filters: validate a module's configuration with the module itself, or print where a module is.
//
//   envoy-resilience-filters validate <module> <file.json|file.yaml|->   exit 0 accepted, 1 refused, 2 usage/IO error
//   envoy-resilience-filters path <module>                               the release .wasm's absolute path
//   envoy-resilience-filters version                                     the package's version
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as emulator from "../dist/emulator/index.js";
import { configurationsIn, MODULES, validate } from "./validate.mjs";

const pkgRoot = fileURLToPath(new URL("..", import.meta.url));
const version = JSON.parse(readFileSync(`${pkgRoot}package.json`, "utf8")).version;
const USAGE = `usage: envoy-resilience-filters validate <module> <file.json|file.yaml|->
       envoy-resilience-filters path <module>
       envoy-resilience-filters version
modules: ${MODULES.join(", ")}
A .json file is the plugin configuration itself; a YAML file may be one too, or an Istio WasmPlugin (its pluginConfig)
or an Envoy bootstrap (every Wasm filter that loads <module>.wasm). Exit 0 when the module accepts every configuration
found, 1 when it refuses one (its critical line is printed, as Envoy logs it), 2 on a usage or file error.`;

function fail(message) {
  console.error(message);
  process.exit(2);
}

function modulePath(module) {
  if (!MODULES.includes(module)) fail(`unknown module "${module}"; one of ${MODULES.join(", ")}`);
  return `${pkgRoot}build/${module}.wasm`;
}

const [command, ...args] = process.argv.slice(2);
if (command === "version" || command === "--version") {
  console.log(version);
} else if (command === "path" && args.length === 1) {
  console.log(modulePath(args[0]));
} else if (command === "validate" && args.length === 2) {
  const [module, file] = args;
  const wasm = emulator.compileModule(modulePath(module));
  let text;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  let found;
  try {
    found = configurationsIn(file, text, module);
  } catch (e) {
    fail(e.message);
  }
  if (found.length === 0) fail(`${file}: no configuration for ${module} (no Wasm filter loads ${module}.wasm)`);
  let refused = 0;
  for (const c of found) {
    const r = validate(emulator, wasm, module, c.text, c.rootId ?? module);
    const at = c.where ? `${file}: ${c.where}` : file;
    if (r.accepted) {
      console.log(`${at}: accepted by ${module} ${r.version ?? "?"}`);
    } else {
      refused++;
      console.log(`${at}: refused by ${module} ${r.version ?? "?"}`);
      for (const line of r.errors) console.log(`  ${line}`);
    }
  }
  process.exit(refused === 0 ? 0 : 1);
} else {
  fail(USAGE);
}
