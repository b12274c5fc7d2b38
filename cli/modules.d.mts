// Types of the package's main entry (cli/modules.mjs), and of every module's configuration.
export type * from "../schemas/types.js";
/** Every module the package ships: the five filters and "resilience", the combined one. */
export declare const MODULES: readonly string[];
/** The package's version: the one every module logs at start. */
export declare const VERSION: string;
/** Absolute path of a release module, e.g. modulePath("resilience") -> .../build/resilience.wasm. */
export declare function modulePath(module: string): string;
/** Absolute path of a module's JSON Schema. */
export declare function schemaPath(module: string): string;
