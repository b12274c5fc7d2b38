// Compiles a module and applies Envoy's load/link rules (reference section 0) before any VM is created from it.
import { readFileSync } from "node:fs";
import {
  ABI_MARKER,
  ENV_IMPORTS,
  ENV_IMPORTS_NOT_IN_0_2_1,
  KNOWN_EXPORTS,
  OTHER_ABI_MARKERS,
  WASI_IMPORTS,
  WASI_MODULES,
  formatSignature,
  sameSignature,
  type Signature,
} from "./abi.js";
import { EmulatorError } from "./errors.js";
import { readModuleShape, type ModuleShape } from "./wasm-binary.js";

/** A compiled module that passed the load checks; several VMs are instantiated from one. */
export interface CompiledModule {
  /** File path or "<bytes>", for messages. */
  readonly name: string;
  readonly module: WebAssembly.Module;
  readonly shape: ModuleShape;
  /** The allocator export the host will call: malloc first, proxy_on_memory_allocate as fallback. */
  readonly allocator: "malloc" | "proxy_on_memory_allocate";
}

export type WasmSource = string | Uint8Array | ArrayBuffer;

function importSignature(module: string, name: string): Signature | undefined {
  if (module === "env") return ENV_IMPORTS[name];
  if ((WASI_MODULES as readonly string[]).includes(module)) return WASI_IMPORTS[name];
  return undefined;
}

/** Throws an EmulatorError listing every way the module would fail to load in Envoy. */
export function checkModuleShape(shape: ModuleShape, name: string): "malloc" | "proxy_on_memory_allocate" {
  const problems: string[] = [];
  for (const imp of shape.imports) {
    const full = `${imp.module}.${imp.name}`;
    if (imp.kind === "global") {
      problems.push(`imports global ${full}: Envoy links no global imports ("missing import")`);
    } else if (imp.kind === "memory" || imp.kind === "table") {
      problems.push(`imports ${imp.kind} ${full}: Envoy allows it, but the emulator does not support imported ${imp.kind}s`);
    } else if (imp.kind === "function") {
      const expected = importSignature(imp.module, imp.name);
      if (!expected) {
        const why = imp.module === "env" ? ENV_IMPORTS_NOT_IN_0_2_1[imp.name] : undefined;
        problems.push(`imports ${full}, which Envoy does not provide to an ABI 0.2.1 module${why ? ` (${why})` : ""}`);
      } else if (!sameSignature(expected, imp.signature!)) {
        problems.push(
          `imports ${full} as ${formatSignature(imp.signature!)} but Envoy defines ${formatSignature(expected)} ("import type mismatch")`,
        );
      }
    }
  }
  const fnExports = new Map(shape.exports.filter((e) => e.kind === "function").map((e) => [e.name, e.signature!]));
  if (!fnExports.has(ABI_MARKER)) {
    const other = OTHER_ABI_MARKERS.find((m) => fnExports.has(m));
    problems.push(
      other
        ? `exports ${other}: the emulator (like the project) targets ABI 0.2.1 only`
        : `does not export the function ${ABI_MARKER} ("Missing or unknown Proxy-Wasm ABI version")`,
    );
  }
  for (const [exportName, signature] of fnExports) {
    const expected = KNOWN_EXPORTS[exportName];
    if (expected && !sameSignature(expected, signature)) {
      problems.push(
        `exports ${exportName} as ${formatSignature(signature)} but Envoy requires ${formatSignature(expected)} ("Bad function signature")`,
      );
    }
  }
  const allocator = fnExports.has("malloc") ? "malloc" : fnExports.has("proxy_on_memory_allocate") ? "proxy_on_memory_allocate" : undefined;
  if (!allocator) problems.push(`exports neither malloc nor proxy_on_memory_allocate ("missing malloc function")`);
  if (!shape.exports.some((e) => e.kind === "memory" && e.name === "memory")) {
    problems.push(`does not export its linear memory as "memory"`);
  }
  if (problems.length > 0) {
    throw new EmulatorError(`module ${name} would not load in Envoy:\n  - ${problems.join("\n  - ")}`);
  }
  return allocator!;
}

/** Reads (if a path), compiles and checks a module. */
export function compileModule(source: WasmSource): CompiledModule {
  let bytes: Uint8Array;
  let name = "<bytes>";
  if (typeof source === "string") {
    name = source;
    try {
      bytes = readFileSync(source);
    } catch (e) {
      throw new EmulatorError(`cannot read wasm module ${source}: ${(e as Error).message}`);
    }
  } else {
    bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  }
  const shape = readModuleShape(bytes);
  const allocator = checkModuleShape(shape, name);
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new EmulatorError(`module ${name} does not compile: ${(e as Error).message}`);
  }
  return { name, module, shape, allocator };
}
