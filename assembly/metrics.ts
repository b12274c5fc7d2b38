/**
 * Metrics defined once per root context, with labels encoded in the stat name, tags first:
 * `reporter=.=outbound;.;destination_service=.=a;.;resilience_requests_total`. Envoy's bootstrap
 * `stats_tags` (shipped in envoy-configs/stats-tags.yaml) turns each `k=.=v;.;` into a Prometheus label.
 */
import { defineMetric, incrementMetric, recordMetric, getMetric } from "./host";
import { MetricType } from "./abi/types";
import { mapUnits } from "./text";

/** Longest label value kept; longer ones are cut so a client cannot make huge stat names. */
// @ts-ignore: decorator
@inline export const MAX_LABEL_VALUE_LEN: i32 = 64;

/** Makes a label value safe inside a tag-encoded stat name: only [A-Za-z0-9._-:/] (SPIFFE URIs), at most 64 characters. */
export function sanitizeLabelValue(value: string): string {
  return mapUnits(value.length > MAX_LABEL_VALUE_LEN ? value.substring(0, MAX_LABEL_VALUE_LEN) : value, true);
}

/** Builds a tag-encoded name from parallel label-name and label-value lists (values are sanitized). */
export function taggedName(labelNames: string[], labelValues: string[], name: string): string {
  let s = "";
  for (let i = 0; i < labelNames.length; i++) s += labelTag(labelNames[i], labelValues[i]);
  return s + name;
}

/** One label's part of a tag-encoded name, `k=.=v;.;` (the value sanitized): for a name with a single label. */
export function labelTag(labelName: string, labelValue: string): string {
  return labelName + "=.=" + sanitizeLabelValue(labelValue) + ";.;";
}

/** A monotonically increasing count. */
@final
export class Counter {
  readonly id: u32;
  constructor(readonly name: string) {
    this.id = defineMetric(MetricType.Counter, name);
  }
  @inline inc(delta: i64 = 1): void { incrementMetric(this.id, delta); }
  get value(): u64 { return getMetric(this.id); }
}

/**
 * A counter summed on this worker and handed to Envoy by flushBatched() (every root context's tick, and its on_done):
 * no host call per request, one per series per tick. Readers see it at most one tick late. With `type` Gauge it batches
 * a shared gauge's deltas the same way (a sum over workers, like resilience_wasm_memory_bytes).
 */
@final
export class BatchedCounter {
  readonly id: u32;
  private pending: i64 = 0;
  constructor(readonly name: string, type: MetricType = MetricType.Counter) {
    this.id = defineMetric(type, name);
    batched.push(this);
  }
  @inline inc(delta: i64 = 1): void { this.pending += delta; }
  /** Hands the sum since the last flush to Envoy (one host call, none when nothing changed). */
  flush(): void {
    const p = this.pending;
    if (p == 0) return;
    this.pending = 0;
    incrementMetric(this.id, p);
  }
}

// Every BatchedCounter of this VM, in definition order (series live as long as the VM: the list only grows with them).
const batched = new Array<BatchedCounter>();

/** Flushes every BatchedCounter of this VM: called by the binding on each tick and when a root context ends. */
export function flushBatched(): void {
  for (let i = 0, n = batched.length; i < n; i++) unchecked(batched[i]).flush();
}

/** A value that goes up and down; shared by all worker VMs (last writer wins on set). */
@final
export class Gauge {
  readonly id: u32;
  constructor(readonly name: string) {
    this.id = defineMetric(MetricType.Gauge, name);
  }
  @inline set(value: u64): void { recordMetric(this.id, value); }
  @inline add(delta: i64): void { incrementMetric(this.id, delta); }
  get value(): u64 { return getMetric(this.id); }
}

/** A distribution; Envoy publishes its buckets at each stats flush. */
@final
export class Histogram {
  readonly id: u32;
  constructor(readonly name: string) {
    this.id = defineMetric(MetricType.Histogram, name);
  }
  @inline record(value: u64): void { recordMetric(this.id, value); }
}
