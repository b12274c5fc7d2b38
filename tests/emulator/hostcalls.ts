// The host functions a VM imports: every env.proxy_* of section 1a and the WASI functions of section 1b.
// Each is wrapped to count calls, enforce the phase restrictions and record non-Ok results.
import {
  BUFFER_TYPE_MAX,
  ENV_IMPORTS,
  Errno,
  LogLevel,
  MAP_TYPE_MAX,
  StreamType,
  WASI_IMPORTS,
  WASI_MODULES,
  WasmResult,
  type BufferType,
  MapType,
} from "./abi.js";
import { EmulatorError } from "./errors.js";
import type { HeaderMap } from "./headers.js";
import { decodePairs, encodePairs, toBytes } from "./pairs.js";
import { pathFromWire } from "./properties.js";
import type { Context, Vm } from "./vm.js";
import { ModuleCallError } from "./vm.js";

type HostFn = (...args: never[]) => number | void;

/** Foreign functions Envoy has that the emulator does not implement (calling one fails the test). */
const UNIMPLEMENTED_FOREIGN = new Set([
  "set_envoy_filter_state",
  "declare_property",
  "compress",
  "uncompress",
  "verify_signature",
  "sign",
  "expr_create",
  "expr_evaluate",
  "expr_delete",
]);

export function buildImports(vm: Vm): WebAssembly.Imports {
  const host = vm.host;
  const ctx = (): Context | undefined => vm.currentContext();
  const str = (ptr: number, len: number, what: string) => vm.readString(ptr, len, what);
  const mapType = (t: number, fn: string): MapType => {
    if (t >>> 0 > MAP_TYPE_MAX) throw new EmulatorError(`map type ${t >>> 0} is out of range (0..${MAP_TYPE_MAX}) in ${fn}`);
    return (t >>> 0) as MapType;
  };
  const bufferType = (t: number): BufferType => {
    if (t >>> 0 > BUFFER_TYPE_MAX) throw new EmulatorError(`buffer type ${t >>> 0} is out of range (0..${BUFFER_TYPE_MAX})`);
    return (t >>> 0) as BufferType;
  };
  const streamOf = (fn: string) => {
    const c = ctx();
    if (c?.kind !== "stream") {
      throw new EmulatorError(
        `${fn} was called in root context ${c?.id ?? 0}: Envoy accepts it but nothing happens; call proxy_set_effective_context(stream id) first`,
      );
    }
    return c;
  };
  const streamType = (t: number): StreamType => {
    if (t >>> 0 > StreamType.Upstream) throw new EmulatorError(`stream type ${t >>> 0} is out of range (0..3)`);
    return (t >>> 0) as StreamType;
  };

  const editHeader = (
    fn: string,
    type: number,
    keyPtr: number,
    keyLen: number,
    valPtr: number,
    valLen: number,
    edit: (map: HeaderMap, key: string, value: string) => void,
  ) => {
    const t = mapType(type, fn);
    const key = str(keyPtr, keyLen, "key");
    const value = str(valPtr, valLen, "value");
    const map = vm.mutableMap(ctx(), t);
    if (!map) return WasmResult.BadArgument;
    edit(map, key, value);
    headersModified(t);
    return WasmResult.Ok;
  };

  // Envoy 1.33+ with an ABI 0.2.1 module: a successful change to the request headers clears the stream's route cache,
  // so the router re-selects the route (Envoy's onHeadersModified; reference section 12 verified it on 1.36-1.40).
  const headersModified = (t: MapType) => {
    const c = ctx();
    if (t === MapType.HttpRequestHeaders && c?.kind === "stream") c.routeCacheClears++;
  };

  const env: Record<string, HostFn> = {
    proxy_log(level: number, ptr: number, len: number) {
      const message = str(ptr, len, "message");
      if (level >>> 0 > LogLevel.Critical) return WasmResult.BadArgument;
      host.recordLog(vm, level, message, "proxy_log");
      return WasmResult.Ok;
    },
    proxy_get_log_level(out: number) {
      vm.writeU32(out, host.logLevel, "out_level");
      return WasmResult.Ok;
    },
    proxy_get_current_time_nanoseconds(out: number) {
      vm.writeU64(out, host.clock.nowNs, "out_time");
      return WasmResult.Ok;
    },
    proxy_set_tick_period_milliseconds(ms: number) {
      const root = ctx()?.root;
      if (!root) throw new EmulatorError("no context to set a tick period on");
      vm.setTickPeriod(root, ms >>> 0);
      return WasmResult.Ok;
    },
    proxy_get_property(pathPtr: number, pathLen: number, outPtr: number, outLen: number) {
      const key = pathFromWire(str(pathPtr, pathLen, "path"));
      if (key === "" || key.split("\0").some((s) => s === "")) {
        throw new EmulatorError(`malformed property path ${JSON.stringify(key)} (empty segment)`);
      }
      const value = vm.getProperty(ctx(), key);
      if (value === undefined) return WasmResult.NotFound;
      vm.returnBytes(value, outPtr, outLen, "property value");
      return WasmResult.Ok;
    },
    proxy_set_property(pathPtr: number, pathLen: number, valPtr: number, valLen: number) {
      const key = pathFromWire(str(pathPtr, pathLen, "path"));
      const value = vm.read(valPtr, valLen, "value");
      const c = ctx();
      if (c?.kind !== "stream") return WasmResult.NotFound;
      c.filterState.set(key, value);
      return WasmResult.Ok;
    },
    proxy_get_buffer_bytes(type: number, start: number, maxLen: number, outPtr: number, outLen: number) {
      const buf = vm.buffer(ctx(), bufferType(type));
      if (!buf) return WasmResult.NotFound;
      const from = Math.min(start >>> 0, buf.bytes.length);
      const to = Math.min(buf.bytes.length, from + (maxLen >>> 0));
      vm.returnBytes(buf.bytes.slice(from, to), outPtr, outLen, "buffer bytes");
      return WasmResult.Ok;
    },
    proxy_get_buffer_status(type: number, outLen: number, outFlags: number) {
      const buf = vm.buffer(ctx(), bufferType(type));
      if (!buf) return WasmResult.NotFound;
      vm.writeU32(outLen, buf.bytes.length, "out_len");
      vm.writeU32(outFlags, 0, "out_flags");
      return WasmResult.Ok;
    },
    proxy_set_buffer_bytes(type: number, start: number, len: number, dataPtr: number, dataLen: number) {
      const data = vm.read(dataPtr, dataLen, "data");
      const buf = vm.buffer(ctx(), bufferType(type));
      if (!buf) return WasmResult.NotFound;
      if (!buf.write) return WasmResult.BadArgument;
      const size = buf.bytes.length;
      start >>>= 0;
      if (start === 0) {
        const drained = buf.bytes.slice(Math.min(len >>> 0, size));
        const next = new Uint8Array(data.length + drained.length);
        next.set(data);
        next.set(drained, data.length);
        buf.write(next);
      } else if (start >= size) {
        const next = new Uint8Array(size + data.length);
        next.set(buf.bytes);
        next.set(data, size);
        buf.write(next);
      } else {
        return WasmResult.BadArgument; // Envoy has no mid-buffer insert
      }
      return WasmResult.Ok;
    },
    proxy_get_header_map_pairs(type: number, outPtr: number, outLen: number) {
      const map = vm.constMap(ctx(), mapType(type, "proxy_get_header_map_pairs"));
      const pairs = map?.pairs ?? [];
      vm.returnBytes(pairs.length === 0 ? new Uint8Array(0) : encodePairs(pairs), outPtr, outLen, "header pairs");
      return WasmResult.Ok;
    },
    proxy_set_header_map_pairs(type: number, ptr: number, len: number) {
      const t = mapType(type, "proxy_set_header_map_pairs");
      const pairs = decodePairs(vm.read(ptr, len, "pairs"), "proxy_set_header_map_pairs");
      const map = vm.mutableMap(ctx(), t);
      if (!map) return WasmResult.BadArgument;
      map.setAll(pairs);
      headersModified(t);
      return WasmResult.Ok;
    },
    proxy_get_header_map_value(type: number, keyPtr: number, keyLen: number, outPtr: number, outLen: number) {
      const t = mapType(type, "proxy_get_header_map_value");
      const key = str(keyPtr, keyLen, "key");
      const c = ctx();
      const map = vm.constMap(c, t);
      if (!map) return c?.kind === "stream" && c.inLogPhase ? WasmResult.NotFound : WasmResult.BadArgument;
      const value = map.get(key);
      if (value === undefined) return WasmResult.NotFound;
      vm.returnBytes(toBytes(value), outPtr, outLen, "header value");
      return WasmResult.Ok;
    },
    proxy_add_header_map_value(type: number, keyPtr: number, keyLen: number, valPtr: number, valLen: number) {
      return editHeader("proxy_add_header_map_value", type, keyPtr, keyLen, valPtr, valLen, (map, k, v) => map.add(k, v));
    },
    proxy_replace_header_map_value(type: number, keyPtr: number, keyLen: number, valPtr: number, valLen: number) {
      return editHeader("proxy_replace_header_map_value", type, keyPtr, keyLen, valPtr, valLen, (map, k, v) => map.replace(k, v));
    },
    proxy_remove_header_map_value(type: number, keyPtr: number, keyLen: number) {
      const t = mapType(type, "proxy_remove_header_map_value");
      const key = str(keyPtr, keyLen, "key");
      const map = vm.mutableMap(ctx(), t);
      if (!map) return WasmResult.BadArgument;
      map.remove(key);
      headersModified(t);
      return WasmResult.Ok;
    },
    proxy_get_header_map_size(type: number, out: number) {
      const map = vm.mutableMap(ctx(), mapType(type, "proxy_get_header_map_size"));
      if (!map) return WasmResult.BadArgument;
      vm.writeU32(out, map.byteSize, "out_size");
      return WasmResult.Ok;
    },
    proxy_continue_stream(type: number) {
      const t = streamType(type);
      if (t === StreamType.Upstream) return WasmResult.Unimplemented;
      if (t === StreamType.Downstream) return WasmResult.Ok; // no network filter callbacks on an HTTP stream
      streamOf(`proxy_continue_stream(${t})`).continueFromModule(t);
      return WasmResult.Ok;
    },
    proxy_close_stream(type: number) {
      const t = streamType(type);
      if (t === StreamType.Downstream || t === StreamType.Upstream) return WasmResult.Ok;
      streamOf(`proxy_close_stream(${t})`).closeFromModule();
      return WasmResult.Ok;
    },
    proxy_send_local_response(
      status: number,
      detailsPtr: number,
      detailsLen: number,
      bodyPtr: number,
      bodyLen: number,
      headersPtr: number,
      headersLen: number,
      grpcStatus: number,
    ) {
      const details = str(detailsPtr, detailsLen, "details");
      const body = vm.read(bodyPtr, bodyLen, "body");
      const headers = decodePairs(vm.read(headersPtr, headersLen, "headers"), "proxy_send_local_response headers");
      const stream = streamOf("proxy_send_local_response");
      const g = grpcStatus | 0;
      stream.localReplyFromModule({ status: status >>> 0, details, body, headers, grpcStatus: g >= 0 && g <= 16 ? g : null });
      vm.forceStop();
      return WasmResult.Ok;
    },
    proxy_http_call(
      upPtr: number,
      upLen: number,
      hdrPtr: number,
      hdrLen: number,
      bodyPtr: number,
      bodyLen: number,
      trlPtr: number,
      trlLen: number,
      timeoutMs: number,
      outToken: number,
    ) {
      const cluster = str(upPtr, upLen, "upstream");
      const headers = decodePairs(vm.read(hdrPtr, hdrLen, "headers"), "proxy_http_call headers");
      const body = vm.read(bodyPtr, bodyLen, "body");
      const trailers = decodePairs(vm.read(trlPtr, trlLen, "trailers"), "proxy_http_call trailers");
      const c = ctx();
      if (!c) throw new EmulatorError("no context to own the http call");
      return host.startHttpCall(vm, c, { cluster, headers, body, trailers, timeoutMs: timeoutMs | 0 }, outToken);
    },
    proxy_get_status(outCode: number, outMsgPtr: number, outMsgLen: number) {
      const root = ctx()?.root;
      if (!root) throw new EmulatorError("no context to read a status from");
      vm.writeU32(outCode, root.status.code, "out_code");
      vm.returnBytes(toBytes(root.status.message), outMsgPtr, outMsgLen, "status message");
      return WasmResult.Ok;
    },
    proxy_set_shared_data(keyPtr: number, keyLen: number, valPtr: number, valLen: number, cas: number) {
      const key = str(keyPtr, keyLen, "key");
      const value = vm.read(valPtr, valLen, "value");
      return host.sharedDataStore.set(vm.vmId, key, value, cas >>> 0);
    },
    proxy_get_shared_data(keyPtr: number, keyLen: number, outPtr: number, outLen: number, outCas: number) {
      const entry = host.sharedDataStore.get(vm.vmId, str(keyPtr, keyLen, "key"));
      if (!entry) return WasmResult.NotFound;
      vm.returnBytes(entry.value, outPtr, outLen, "shared data value");
      vm.writeU32(outCas, entry.cas, "out_cas");
      return WasmResult.Ok;
    },
    proxy_register_shared_queue(namePtr: number, nameLen: number, outToken: number) {
      const name = str(namePtr, nameLen, "name");
      const root = ctx()?.root;
      if (!root) throw new EmulatorError("no context to register a queue on");
      const token = host.queues.register(vm.vmId, name, { vmIndex: vm.index, rootContextId: root.id });
      vm.writeU32(outToken, token, "out_token");
      return WasmResult.Ok;
    },
    proxy_resolve_shared_queue(vmIdPtr: number, vmIdLen: number, namePtr: number, nameLen: number, outToken: number) {
      const vmId = str(vmIdPtr, vmIdLen, "vm_id") || vm.vmId;
      const token = host.queues.resolve(vmId, str(namePtr, nameLen, "name"));
      if (token === undefined) return WasmResult.NotFound;
      vm.writeU32(outToken, token, "out_token");
      return WasmResult.Ok;
    },
    proxy_enqueue_shared_queue(token: number, ptr: number, len: number) {
      return host.queues.enqueue(token >>> 0, vm.read(ptr, len, "data"));
    },
    proxy_dequeue_shared_queue(token: number, outPtr: number, outLen: number) {
      const { result, data } = host.queues.dequeue(token >>> 0);
      if (data) vm.returnBytes(data, outPtr, outLen, "queue item");
      return result;
    },
    proxy_define_metric(type: number, namePtr: number, nameLen: number, outId: number) {
      const name = str(namePtr, nameLen, "name");
      vm.writeU32(outId, vm.metrics.define(type >>> 0, name), "out_id");
      return WasmResult.Ok;
    },
    proxy_increment_metric(id: number, delta: bigint) {
      return vm.metrics.increment(id >>> 0, delta);
    },
    proxy_record_metric(id: number, value: bigint) {
      return vm.metrics.record(id >>> 0, value);
    },
    proxy_get_metric(id: number, out: number) {
      const { result, value } = vm.metrics.get(id >>> 0);
      if (value !== undefined) vm.writeU64(out, value, "out_value");
      return result;
    },
    proxy_set_effective_context(id: number) {
      return vm.setEffectiveContext(id >>> 0) ? WasmResult.Ok : WasmResult.BadArgument;
    },
    proxy_done() {
      const root = ctx()?.root;
      if (!root?.awaitingDone) return WasmResult.NotFound;
      vm.defer(() => vm.deleteRoot(root));
      return WasmResult.Ok;
    },
    proxy_call_foreign_function(namePtr: number, nameLen: number, argsPtr: number, argsLen: number, _outPtr: number, _outLen: number) {
      const name = str(namePtr, nameLen, "name");
      const args = vm.read(argsPtr, argsLen, "arguments");
      if (name === "clear_route_cache") {
        const c = ctx();
        host.foreignCalls.push({ vm: vm.index, contextId: c?.id ?? 0, name, args });
        if (c?.kind === "stream") c.routeCacheClears++;
        return WasmResult.Ok;
      }
      if (UNIMPLEMENTED_FOREIGN.has(name)) {
        throw new EmulatorError(`foreign function ${JSON.stringify(name)} exists in Envoy but is not implemented by the emulator`);
      }
      return WasmResult.NotFound;
    },
    pthread_equal(a: number, b: number) {
      return a === b ? 1 : 0;
    },
    emscripten_notify_memory_growth() {},
  };
  for (const name of ["proxy_grpc_call", "proxy_grpc_stream", "proxy_grpc_send", "proxy_grpc_cancel", "proxy_grpc_close", "envoy_resolve_dns"]) {
    env[name] = () => {
      throw new EmulatorError(`${name} is not implemented by the emulator`);
    };
  }

  const wasi: Record<string, HostFn> = {
    fd_write(fd: number, iovs: number, iovsLen: number, outWritten: number) {
      if (fd !== 1 && fd !== 2) return Errno.BADF;
      const list = vm.read(iovs, (iovsLen >>> 0) * 8, "iovs");
      const view = new DataView(list.buffer);
      const parts: Uint8Array[] = [];
      for (let i = 0; i < iovsLen >>> 0; i++) {
        parts.push(vm.read(view.getUint32(i * 8, true), view.getUint32(i * 8 + 4, true), `iov ${i}`));
      }
      const total = parts.reduce((n, p) => n + p.length, 0);
      let text = new TextDecoder().decode(Buffer.concat(parts));
      if (text.endsWith("\n")) text = text.slice(0, -1);
      host.recordLog(vm, fd === 1 ? LogLevel.Info : LogLevel.Error, text, fd === 1 ? "stdout" : "stderr");
      vm.writeU32(outWritten, total, "out_nwritten");
      return Errno.SUCCESS;
    },
    fd_read: () => Errno.NOSYS,
    fd_seek: () => Errno.SUCCESS,
    fd_close: () => Errno.SUCCESS,
    fd_fdstat_get(fd: number, out: number) {
      if (fd !== 1 && fd !== 2) return Errno.BADF;
      const stat = new Uint8Array(24);
      const view = new DataView(stat.buffer);
      view.setUint8(0, 2); // character device
      view.setUint16(2, 1, true); // append
      view.setBigUint64(8, 64n, true); // rights: FD_WRITE
      view.setBigUint64(16, 64n, true);
      vm.write(out, stat, "fdstat");
      return Errno.SUCCESS;
    },
    fd_fdstat_set_flags: () => Errno.NOSYS,
    fd_prestat_get: () => Errno.BADF,
    fd_prestat_dir_name: () => Errno.NOSYS,
    path_open: () => Errno.NOENT,
    environ_sizes_get(outCount: number, outSize: number) {
      const entries = Object.entries(vm.env).map(([k, v]) => toBytes(`${k}=${v}\0`));
      vm.writeU32(outCount, entries.length, "out_count");
      vm.writeU32(outSize, entries.reduce((n, e) => n + e.length, 0), "out_size");
      return Errno.SUCCESS;
    },
    environ_get(array: number, buf: number) {
      let at = buf >>> 0;
      Object.entries(vm.env).forEach(([k, v], i) => {
        const entry = toBytes(`${k}=${v}\0`);
        vm.writeU32((array >>> 0) + 4 * i, at, "environ pointer");
        vm.write(at, entry, "environ entry");
        at += entry.length;
      });
      return Errno.SUCCESS;
    },
    args_sizes_get(outCount: number, outSize: number) {
      vm.writeU32(outCount, 0, "out_count");
      vm.writeU32(outSize, 0, "out_size");
      return Errno.SUCCESS;
    },
    args_get: () => Errno.SUCCESS,
    clock_time_get(id: number, _precision: bigint, out: number) {
      if (id === 0) vm.writeU64(out, host.clock.nowNs, "out_time");
      else if (id === 1) vm.writeU64(out, host.clock.monotonicNowNs, "out_time");
      else return Errno.NOTSUP;
      return Errno.SUCCESS;
    },
    random_get(buf: number, len: number) {
      if (len >>> 0 > 65536) return Errno.INVAL;
      vm.write(buf, host.randomBytes(len >>> 0), "random buffer");
      return Errno.SUCCESS;
    },
    sched_yield: () => Errno.SUCCESS,
    poll_oneoff: () => Errno.NOSYS,
    proc_exit(code: number) {
      vm.procExitCode = code;
      host.recordLog(vm, LogLevel.Trace, `proc_exit(${code})`, "proc_exit");
    },
  };

  const wrap = (name: string, fn: HostFn, isProxy: boolean) =>
    (...args: never[]) => {
      vm.checkAllowed(name);
      host.countHostCall(vm, name);
      let result: number | void;
      try {
        result = fn(...args);
      } catch (e) {
        if (e instanceof ModuleCallError || !(e instanceof EmulatorError)) throw e;
        throw new EmulatorError(`host call ${name}(${args.join(", ")}) during ${vm.describeFrame()}: ${e.message}`, { cause: e });
      }
      if (isProxy && typeof result === "number" && result !== WasmResult.Ok) host.recordRejection(vm, name, result);
      return result;
    };
  const envImports: Record<string, unknown> = {};
  for (const name of Object.keys(ENV_IMPORTS)) envImports[name] = wrap(name, env[name]!, name.startsWith("proxy_"));
  const wasiImports: Record<string, unknown> = {};
  for (const name of Object.keys(WASI_IMPORTS)) wasiImports[name] = wrap(name, wasi[name]!, false);
  const imports: WebAssembly.Imports = { env: envImports as WebAssembly.ModuleImports };
  for (const m of WASI_MODULES) imports[m] = wasiImports as WebAssembly.ModuleImports;
  return imports;
}
