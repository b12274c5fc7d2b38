// The package's main entry: where the shipped modules, schemas and bootstraps are, for tools that load them.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MODULES } from "./validate.mjs";

export { MODULES };

const root = fileURLToPath(new URL("..", import.meta.url));

/** The package's version: the one every module logs at start ("resilience filters <version> ..."). */
export const VERSION = JSON.parse(readFileSync(`${root}package.json`, "utf8")).version;

function known(module) {
  if (!MODULES.includes(module)) throw new Error(`unknown module "${module}"; one of ${MODULES.join(", ")}`);
  return module;
}

/** Absolute path of a release module, e.g. modulePath("resilience") -> .../build/resilience.wasm. */
export function modulePath(module) {
  return `${root}build/${known(module)}.wasm`;
}

/** Absolute path of a module's JSON Schema (its plugin configuration). */
export function schemaPath(module) {
  return `${root}schemas/${known(module)}.schema.json`;
}
