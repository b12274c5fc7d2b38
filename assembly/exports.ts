/**
 * The callbacks Envoy calls, exported by every filter module (`export * from "<this file>"` in the entry file).
 * They dispatch by context id (registry.ts) to RootContext / HttpContext objects.
 * Response-header, body and trailer callbacks live in exports-response.ts and exports-body.ts: Envoy calls only what a
 * module exports, and each call into the VM costs, so a filter exports only the callbacks it acts in.
 */
import { BufferType, FilterHeadersStatus } from "./abi/types";
import { getBuffer, allocateForHost } from "./host";
import { roots, streams, createRoot, streamContext, forget } from "./registry";
// The module's abort handler (asc --use abort=...) must be part of every program.
import "./abi/abort";


/** ABI marker: Envoy looks for this export to pick ABI 0.2.1. Never called. */
export function proxy_abi_version_0_2_1(): void {}

/** The host allocates returned data in our memory through this (cpp-host prefers `malloc`). */
export function malloc(size: usize): usize {
  return allocateForHost(size);
}

export function proxy_on_context_create(id: u32, parentId: u32): void {
  if (parentId == 0) {
    roots.set(id, createRoot(id));
    return;
  }
  if (!roots.has(parentId)) return;
  const ctx = roots.get(parentId).newHttpContext(id);
  if (ctx !== null) streams.set(id, ctx);
}

export function proxy_on_vm_start(id: u32, size: u32): bool {
  if (!roots.has(id)) return false;
  return roots.get(id).onVmStart(size > 0 ? getBuffer(BufferType.VmConfiguration, 0, size) : new ArrayBuffer(0));
}

export function proxy_on_configure(id: u32, size: u32): bool {
  if (!roots.has(id)) return false;
  const ok = roots.get(id).onConfigure(size > 0 ? getBuffer(BufferType.PluginConfiguration, 0, size) : new ArrayBuffer(0));
  collectAtSafePoint(COLLECT_EVERY);
  return ok;
}

export function proxy_on_tick(id: u32): void {
  if (roots.has(id)) roots.get(id).onTick();
  collectAtSafePoint(TICK_WEIGHT);
}

export function proxy_on_http_call_response(id: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  if (roots.has(id)) roots.get(id).onHttpCallResponse(token, numHeaders, bodySize, numTrailers);
}

export function proxy_on_request_headers(id: u32, numHeaders: u32, endOfStream: bool): u32 {
  const s = streamContext(id);
  return s !== null ? s.onRequestHeaders(numHeaders, endOfStream) : FilterHeadersStatus.Continue;
}

export function proxy_on_log(id: u32): void {
  const s = streamContext(id);
  if (s !== null) s.onLog();
}

/**
 * No `proxy_on_done` export: Envoy then treats every context as done (cpp-host: true when the export is absent) and
 * calls `proxy_on_delete` right after, for streams and for roots alike; the done work runs there, one VM entry less
 * per stream. A root context can therefore not defer its deletion (none does).
 */
export function proxy_on_delete(id: u32): void {
  const s = streamContext(id);
  if (s !== null) {
    s.onDone();
    forget(id);
    s.recycle();
  } else {
    if (roots.has(id)) roots.get(id).onDone();
    forget(id);
  }
  collectAtSafePoint(1);
}

/**
 * The `minimal` runtime never collects by itself (no shadow stack, no write barriers, no GC step inside allocations):
 * the binding collects where no managed object lives only in a Wasm local, at the end of a callback, once enough work
 * was done since the last collection (a stream deleted counts 1, a tick TICK_WEIGHT, a configuration a full period).
 */
// @ts-ignore: decorator
@inline const COLLECT_EVERY: u32 = 64;
// @ts-ignore: decorator
@inline const TICK_WEIGHT: u32 = 8;
let workSinceCollect: u32 = 0;

function collectAtSafePoint(work: u32): void {
  workSinceCollect += work;
  if (workSinceCollect < COLLECT_EVERY) return;
  workSinceCollect = 0;
  __collect();
}

