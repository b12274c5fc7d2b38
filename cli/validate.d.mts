// Types of cli/validate.mjs (the package's "./validate" export).
export declare const MODULES: readonly string[];
export interface FoundConfiguration {
  /** Where in the file ("" for a file that is the configuration itself). */
  where: string;
  /** The exact text the module receives. */
  text: string;
  /** The root_id the file names, if it names one. */
  rootId?: string;
}
export interface Verdict {
  accepted: boolean;
  /** The module's critical lines, exactly as Envoy logs them after "wasm log <plugin> <root>: ". */
  errors: string[];
  /** The bundle version the module logged at start. */
  version: string | undefined;
}
export declare function configurationsIn(fileName: string, text: string, module: string): FoundConfiguration[];
/** What validate() uses of the emulator: the package's `envoy-resilience-filters/emulator` (or the repo's tests/emulator). */
export interface EmulatorApi {
  Host: new () => unknown;
  LogLevel: { Critical: number };
  compileModule(source: string | Uint8Array): unknown;
}
export declare function validate(emulator: EmulatorApi, wasm: unknown, module: string, text: string, rootId?: string): Verdict;
