// Process-wide shared key/value store and shared queues (reference section 5), namespaced by vm_id.
import { WasmResult } from "./abi.js";

export interface SharedEntry {
  value: Uint8Array;
  cas: number;
}

/** Shared KV with cpp-host's CAS rules: one global u32 cas counter starting at 1 and skipping 0 on wrap. */
export class SharedDataStore {
  private readonly namespaces = new Map<string, Map<string, SharedEntry>>();
  private lastCas = 0;

  private space(vmId: string): Map<string, SharedEntry> {
    let m = this.namespaces.get(vmId);
    if (!m) this.namespaces.set(vmId, (m = new Map()));
    return m;
  }

  private nextCas(): number {
    this.lastCas = (this.lastCas + 1) >>> 0;
    if (this.lastCas === 0) this.lastCas = 1;
    return this.lastCas;
  }

  /** cas 0 writes unconditionally; otherwise an existing key is written only when cas matches (else CasMismatch). */
  set(vmId: string, key: string, value: Uint8Array, cas: number): WasmResult {
    const space = this.space(vmId);
    const existing = space.get(key);
    if (cas !== 0 && existing && existing.cas !== cas) return WasmResult.CasMismatch;
    space.set(key, { value: value.slice(), cas: this.nextCas() });
    return WasmResult.Ok;
  }

  get(vmId: string, key: string): SharedEntry | undefined {
    return this.namespaces.get(vmId)?.get(key);
  }

  keys(vmId: string): string[] {
    return [...(this.namespaces.get(vmId)?.keys() ?? [])];
  }

  /** Test hook: make the next assigned cas be `last + 1` (to exercise the wrap past 0xFFFFFFFF). */
  setLastCas(last: number): void {
    this.lastCas = last >>> 0;
  }
}

export interface QueueReceiver {
  vmIndex: number;
  rootContextId: number;
}

interface Queue {
  vmId: string;
  name: string;
  token: number;
  items: Uint8Array[];
  receiver: QueueReceiver;
}

/** Shared queues keyed by (vm_id, name) with global tokens; enqueue posts an asynchronous queue-ready notification. */
export class SharedQueues {
  private readonly byName = new Map<string, Queue>();
  private readonly byToken = new Map<number, Queue>();
  private nextToken = 1;
  /** Notifications posted by enqueue and not yet delivered (Host.deliverQueueReady delivers them). */
  readonly pending: { token: number; receiver: QueueReceiver }[] = [];

  register(vmId: string, name: string, receiver: QueueReceiver): number {
    const k = `${vmId}\0${name}`;
    let q = this.byName.get(k);
    if (q) {
      q.receiver = receiver; // re-registering keeps the token and the items, replaces the receiver
    } else {
      q = { vmId, name, token: this.nextToken++, items: [], receiver };
      this.byName.set(k, q);
      this.byToken.set(q.token, q);
    }
    return q.token;
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.byName.get(`${vmId}\0${name}`)?.token;
  }

  enqueue(token: number, data: Uint8Array): WasmResult {
    const q = this.byToken.get(token);
    if (!q) return WasmResult.NotFound;
    q.items.push(data.slice());
    this.pending.push({ token, receiver: q.receiver });
    return WasmResult.Ok;
  }

  dequeue(token: number): { result: WasmResult; data?: Uint8Array } {
    const q = this.byToken.get(token);
    if (!q) return { result: WasmResult.NotFound };
    const data = q.items.shift();
    return data ? { result: WasmResult.Ok, data } : { result: WasmResult.Empty };
  }

  size(token: number): number {
    return this.byToken.get(token)?.items.length ?? 0;
  }
}
