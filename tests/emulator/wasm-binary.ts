// Reads the import and export signatures out of a wasm binary, so the emulator can check them exactly as Envoy's
// linker does (the JS WebAssembly API reports only kinds, not types).
import type { Signature, ValType } from "./abi.js";
import { EmulatorError } from "./errors.js";

export type ExternKind = "function" | "table" | "memory" | "global" | "tag";

export interface ImportEntry {
  module: string;
  name: string;
  kind: ExternKind;
  /** Set for function imports. */
  signature?: Signature;
}

export interface ExportEntry {
  name: string;
  kind: ExternKind;
  /** Set for function exports. */
  signature?: Signature;
}

export interface ModuleShape {
  imports: ImportEntry[];
  exports: ExportEntry[];
  /** True when the module has a start section (it runs inside instantiation, before any host context exists). */
  hasStartSection: boolean;
}

const KINDS: readonly ExternKind[] = ["function", "table", "memory", "global", "tag"];
const VALTYPES: Readonly<Record<number, ValType | string>> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

class Reader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
  byte(): number {
    if (this.pos >= this.bytes.length) throw new EmulatorError("wasm binary: unexpected end of data");
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 35) throw new EmulatorError("wasm binary: LEB128 value too long");
    }
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  skip(n: number): void {
    this.pos += n;
  }
  limits(): void {
    const flags = this.u32();
    this.u32();
    if (flags & 1) this.u32();
  }
}

/** Parses the type, import, function, export and start sections of a wasm binary. */
export function readModuleShape(bytes: Uint8Array): ModuleShape {
  const r = new Reader(bytes);
  const magic = [0x00, 0x61, 0x73, 0x6d];
  for (const m of magic) {
    if (r.byte() !== m) throw new EmulatorError("wasm binary: bad magic number (is this a .wasm file?)");
  }
  r.skip(4); // version
  const types: Signature[] = [];
  const funcTypes: number[] = []; // function index space: imports first, then defined functions
  const imports: ImportEntry[] = [];
  const rawExports: { name: string; kind: ExternKind; index: number }[] = [];
  let hasStartSection = false;
  while (!r.done) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (id === 1) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const form = r.byte();
        if (form !== 0x60) throw new EmulatorError(`wasm binary: unsupported type form 0x${form.toString(16)}`);
        const params = Array.from({ length: r.u32() }, () => VALTYPES[r.byte()] ?? "?");
        const results = Array.from({ length: r.u32() }, () => VALTYPES[r.byte()] ?? "?");
        types.push({ params: params as ValType[], results: results as ValType[] });
      }
    } else if (id === 2) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const module = r.name();
        const name = r.name();
        const kind = KINDS[r.byte()] ?? "tag";
        const entry: ImportEntry = { module, name, kind };
        if (kind === "function") {
          const t = r.u32();
          funcTypes.push(t);
          entry.signature = types[t];
        } else if (kind === "table") {
          r.byte();
          r.limits();
        } else if (kind === "memory") {
          r.limits();
        } else if (kind === "global") {
          r.byte();
          r.byte();
        } else {
          r.byte();
          r.u32();
        }
        imports.push(entry);
      }
    } else if (id === 3) {
      const n = r.u32();
      for (let i = 0; i < n; i++) funcTypes.push(r.u32());
    } else if (id === 7) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const name = r.name();
        const kind = KINDS[r.byte()] ?? "tag";
        rawExports.push({ name, kind, index: r.u32() });
      }
    } else if (id === 8) {
      hasStartSection = true;
    }
    r.pos = end;
  }
  const exports = rawExports.map(({ name, kind, index }) => {
    const entry: ExportEntry = { name, kind };
    if (kind === "function") entry.signature = types[funcTypes[index]!];
    return entry;
  });
  return { imports, exports, hasStartSection };
}
