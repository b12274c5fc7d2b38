// Builds small hand-written test modules: WebAssembly text compiled with wabt's wat2wasm.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENV_IMPORTS, WASI_IMPORTS, type Signature } from "./abi.js";
import { EmulatorError } from "./errors.js";

/** Compiles WebAssembly text to a binary with the installed wat2wasm. */
export function wat2wasm(source: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "emulator-wat-"));
  try {
    const input = join(dir, "module.wat");
    const output = join(dir, "module.wasm");
    writeFileSync(input, source);
    const r = spawnSync("wat2wasm", [input, "-o", output], { encoding: "utf8" });
    if (r.error) throw new EmulatorError(`wat2wasm could not run: ${r.error.message}`);
    if (r.status !== 0) throw new EmulatorError(`wat2wasm failed:\n${r.stderr}\n--- source ---\n${source}`);
    return readFileSync(output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compiles a .wat file. */
export function wat2wasmFile(path: string): Uint8Array {
  return wat2wasm(readFileSync(path, "utf8"));
}

const DATA_START = 1024;
const HEAP_START = 16384;

function importDecl(module: string, name: string, s: Signature, alias: string): string {
  const params = s.params.length ? ` (param ${s.params.join(" ")})` : "";
  const results = s.results.length ? ` (result ${s.results.join(" ")})` : "";
  return `  (import "${module}" "${name}" (func $${alias}${params}${results}))`;
}

/**
 * A proxy-wasm test module in WebAssembly text. It provides the exported memory, the ABI marker, a bump `malloc` that
 * grows memory, and imports for every `call $proxy_*` (env) or `call $wasi_*` (wasi_snapshot_preview1) used in the
 * functions added. Scratch words for out-params live at 16, 20, 24, 28 and 32 (8 bytes).
 */
export class WatModule {
  private readonly funcs: string[] = [];
  private readonly data: string[] = [];
  private readonly globals: string[] = [];
  private next = DATA_START;

  /** Places a string (or raw bytes) in the data segment; returns "(i32.const ptr) (i32.const len)". */
  bytes(value: string | Uint8Array): string {
    const b = typeof value === "string" ? new TextEncoder().encode(value) : value;
    const ptr = this.next;
    const escaped = [...b].map((x) => `\\${x.toString(16).padStart(2, "0")}`).join("");
    this.data.push(`  (data (i32.const ${ptr}) "${escaped}")`);
    this.next = (ptr + b.length + 8) & ~7;
    if (this.next > HEAP_START) throw new EmulatorError("WatModule: data segment overflows into the heap");
    return `(i32.const ${ptr}) (i32.const ${b.length})`;
  }

  /** Declares a mutable i32 global `$name`. */
  global(name: string, initial = 0): this {
    this.globals.push(`  (global $${name} (mut i32) (i32.const ${initial}))`);
    return this;
  }

  /** Adds a function (full `(func ...)` text). */
  func(text: string): this {
    this.funcs.push(text);
    return this;
  }

  /** The complete module text. */
  text(): string {
    const body = this.funcs.join("\n");
    const used = [...new Set([...body.matchAll(/call \$((?:proxy|wasi)_\w+)/g)].map((m) => m[1]!))];
    const imports = used.map((alias) => {
      if (alias.startsWith("wasi_")) {
        const name = alias.slice(5);
        const s = WASI_IMPORTS[name];
        if (!s) throw new EmulatorError(`WatModule: unknown WASI function ${name}`);
        return importDecl("wasi_snapshot_preview1", name, s, alias);
      }
      const s = ENV_IMPORTS[alias];
      if (!s) throw new EmulatorError(`WatModule: unknown env import ${alias}`);
      return importDecl("env", alias, s, alias);
    });
    return `(module
${imports.join("\n")}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const ${HEAP_START}))
${this.globals.join("\n")}
${this.data.join("\n")}
  (func (export "proxy_abi_version_0_2_1"))
  (func $malloc (export "malloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (i32.and (i32.add (local.get $end) (i32.const 7)) (i32.const -8)))
    (local.get $ptr))
${body}
)`;
  }

  build(): Uint8Array {
    return wat2wasm(this.text());
  }
}
