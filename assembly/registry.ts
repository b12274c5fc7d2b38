/** Context registry: which RootContext / HttpContext object each host context id belongs to. Private to the binding. */
import { LogLevel } from "./abi/types";
import { RootContext, HttpContext, RootFactory } from "./context";
import { getPropertyString, propertyPath, log } from "./host";

/** Makes the root context of one registered root_id. */
export abstract class RootEntry {
  abstract create(id: u32): RootContext;
}

class FactoryEntry extends RootEntry {
  constructor(readonly factory: RootFactory) { super(); }
  create(id: u32): RootContext {
    const f = this.factory;
    return f(id);
  }
}

const factoryIds = new Array<string>();
const factories = new Array<RootEntry>();
export const roots = new Map<u32, RootContext>();
export const streams = new Map<u32, HttpContext>();
// The stream a run of callbacks is about: avoids a map lookup per callback.
let lastStreamId: u32 = 0;
let lastStream: HttpContext | null = null;

/** Registers a filter's root implementation under its Envoy `root_id` (call at top level of the entry file). */
export function registerRoot(rootId: string, factory: RootFactory): void {
  registerRootEntry(rootId, new FactoryEntry(factory));
}

/** Registers a root implementation as an object (used by registerFilter in stage.ts). */
export function registerRootEntry(rootId: string, entry: RootEntry): void {
  factoryIds.push(rootId);
  factories.push(entry);
}

const PLUGIN_ROOT_ID = propertyPath(["plugin_root_id"]);

/** A root context for a root_id no filter registered: refuses its configuration, naming the choices. */
class UnknownRoot extends RootContext {
  constructor(id: u32, public rootId: string) { super(id); this.name = "unknown"; }
  onConfigure(config: ArrayBuffer): bool {
    log(LogLevel.Critical, "no filter named root_id \"" + this.rootId + "\" in this module; known: " + factoryIds.join(", "));
    return false;
  }
}

export function createRoot(id: u32): RootContext {
  if (factories.length == 1) return factories[0].create(id);
  const rootId = getPropertyString(PLUGIN_ROOT_ID);
  const wanted = rootId !== null ? rootId : "";
  for (let i = 0; i < factoryIds.length; i++) {
    if (factoryIds[i] == wanted) return factories[i].create(id);
  }
  return new UnknownRoot(id, wanted);
}

/** The stream context for an id, or null when the filter created none. */
export function streamContext(id: u32): HttpContext | null {
  if (id == lastStreamId) return lastStream;
  if (!streams.has(id)) return null;
  const s = streams.get(id);
  lastStreamId = id;
  lastStream = s;
  return s;
}


/** Forgets a context at on_delete. */
export function forget(id: u32): void {
  if (id == lastStreamId) {
    lastStreamId = 0;
    lastStream = null;
  }
  if (streams.has(id)) {
    streams.delete(id);
    return;
  }
  if (roots.has(id)) roots.delete(id);
}
