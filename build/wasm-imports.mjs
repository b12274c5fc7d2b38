// Reads a Wasm module's imports with their function signatures, and checks them against what Envoy provides to an
// ABI 0.2.1 module (reference sections 1a and 1b): a name Envoy lacks, or a wrong signature, fails Envoy's load.

const I32 = 0x7f, I64 = 0x7e;
const T = { i32: I32, i64: I64 };
const sig = (params, result) => ({ params: params.map((p) => T[p]), results: result ? [T[result]] : [] });
const w = (n) => Array(n).fill("i32");

/** What Envoy registers for ABI 0.2.1, by module and name, with signatures. */
export const ENVOY_IMPORTS = {
  env: {
    proxy_log: sig(w(3), "i32"),
    proxy_get_log_level: sig(w(1), "i32"),
    proxy_get_current_time_nanoseconds: sig(w(1), "i32"),
    proxy_set_tick_period_milliseconds: sig(w(1), "i32"),
    proxy_get_property: sig(w(4), "i32"),
    proxy_set_property: sig(w(4), "i32"),
    proxy_get_buffer_bytes: sig(w(5), "i32"),
    proxy_get_buffer_status: sig(w(3), "i32"),
    proxy_set_buffer_bytes: sig(w(5), "i32"),
    proxy_get_header_map_pairs: sig(w(3), "i32"),
    proxy_set_header_map_pairs: sig(w(3), "i32"),
    proxy_get_header_map_value: sig(w(5), "i32"),
    proxy_add_header_map_value: sig(w(5), "i32"),
    proxy_replace_header_map_value: sig(w(5), "i32"),
    proxy_remove_header_map_value: sig(w(3), "i32"),
    proxy_get_header_map_size: sig(w(2), "i32"),
    proxy_continue_stream: sig(w(1), "i32"),
    proxy_close_stream: sig(w(1), "i32"),
    proxy_send_local_response: sig(w(8), "i32"),
    proxy_http_call: sig(w(10), "i32"),
    proxy_grpc_call: sig(w(12), "i32"),
    proxy_grpc_stream: sig(w(9), "i32"),
    proxy_grpc_send: sig(w(4), "i32"),
    proxy_grpc_cancel: sig(w(1), "i32"),
    proxy_grpc_close: sig(w(1), "i32"),
    proxy_get_status: sig(w(3), "i32"),
    proxy_set_shared_data: sig(w(5), "i32"),
    proxy_get_shared_data: sig(w(5), "i32"),
    proxy_register_shared_queue: sig(w(3), "i32"),
    proxy_resolve_shared_queue: sig(w(5), "i32"),
    proxy_enqueue_shared_queue: sig(w(3), "i32"),
    proxy_dequeue_shared_queue: sig(w(3), "i32"),
    proxy_define_metric: sig(w(4), "i32"),
    proxy_increment_metric: sig(["i32", "i64"], "i32"),
    proxy_record_metric: sig(["i32", "i64"], "i32"),
    proxy_get_metric: sig(w(2), "i32"),
    proxy_set_effective_context: sig(w(1), "i32"),
    proxy_done: sig([], "i32"),
    proxy_call_foreign_function: sig(w(6), "i32"),
  },
  wasi_snapshot_preview1: {
    fd_write: sig(w(4), "i32"),
    clock_time_get: sig(["i32", "i64", "i32"], "i32"),
    random_get: sig(w(2), "i32"),
    proc_exit: sig(["i32"], null),
    environ_sizes_get: sig(w(2), "i32"),
    environ_get: sig(w(2), "i32"),
  },
};

/** The exports Envoy needs from every filter module. */
export const REQUIRED_EXPORTS = ["proxy_abi_version_0_2_1", "malloc", "_initialize", "memory", "proxy_on_context_create"];

function readU32(buf, pos) {
  let result = 0, shift = 0, b;
  do {
    b = buf[pos.i++];
    result |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  return result >>> 0;
}

function readName(buf, pos) {
  const len = readU32(buf, pos);
  const s = buf.subarray(pos.i, pos.i + len).toString("utf8");
  pos.i += len;
  return s;
}

/** Parses the type, import and export sections of a module. */
export function readModule(buf) {
  if (buf.readUInt32LE(0) !== 0x6d736100) throw new Error("not a Wasm module");
  const pos = { i: 8 };
  const types = [], imports = [], exports = [];
  while (pos.i < buf.length) {
    const id = buf[pos.i++];
    const size = readU32(buf, pos);
    const end = pos.i + size;
    if (id === 1) {
      const n = readU32(buf, pos);
      for (let k = 0; k < n; k++) {
        if (buf[pos.i++] !== 0x60) throw new Error("unexpected type form");
        const np = readU32(buf, pos);
        const params = [...buf.subarray(pos.i, pos.i + np)]; pos.i += np;
        const nr = readU32(buf, pos);
        const results = [...buf.subarray(pos.i, pos.i + nr)]; pos.i += nr;
        types.push({ params, results });
      }
    } else if (id === 2) {
      const n = readU32(buf, pos);
      for (let k = 0; k < n; k++) {
        const module = readName(buf, pos), name = readName(buf, pos);
        const kind = buf[pos.i++];
        if (kind === 0) imports.push({ module, name, kind: "function", type: types[readU32(buf, pos)] });
        else if (kind === 1) { pos.i++; const f = readU32(buf, pos); readU32(buf, pos); if (f & 1) readU32(buf, pos); imports.push({ module, name, kind: "table" }); }
        else if (kind === 2) { const f = readU32(buf, pos); readU32(buf, pos); if (f & 1) readU32(buf, pos); imports.push({ module, name, kind: "memory" }); }
        else { pos.i += 2; imports.push({ module, name, kind: "global" }); }
      }
    } else if (id === 7) {
      const n = readU32(buf, pos);
      for (let k = 0; k < n; k++) {
        const name = readName(buf, pos);
        pos.i++;
        readU32(buf, pos);
        exports.push(name);
      }
    }
    pos.i = end;
  }
  return { imports, exports };
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Problems that would make Envoy refuse the module; empty when it loads. */
export function checkModule(buf) {
  const { imports, exports } = readModule(buf);
  const problems = [];
  for (const imp of imports) {
    const where = `${imp.module}.${imp.name}`;
    if (imp.kind === "global") { problems.push(`global import ${where}: Envoy links no globals`); continue; }
    if (imp.kind !== "function") continue;
    const want = ENVOY_IMPORTS[imp.module]?.[imp.name];
    if (!want) { problems.push(`import ${where} is not provided by Envoy`); continue; }
    if (!same(want.params, imp.type.params) || !same(want.results, imp.type.results)) {
      problems.push(`import ${where} has signature ${fmt(imp.type)}, Envoy provides ${fmt(want)}`);
    }
  }
  for (const e of REQUIRED_EXPORTS) if (!exports.includes(e)) problems.push(`missing export ${e}`);
  return { problems, imports, exports };
}

function fmt(t) {
  const n = (x) => (x === I32 ? "i32" : x === I64 ? "i64" : `0x${x.toString(16)}`);
  return `(${t.params.map(n).join(",")})->(${t.results.map(n).join(",")})`;
}
