// Metrics (reference section 6): one process-wide stat store; per-VM metric ids with id & 3 == type, growing by 4.
import { MetricType, WasmResult } from "./abi.js";
import { EmulatorError } from "./errors.js";

const U64_MAX = (1n << 64n) - 1n;

export interface Stat {
  readonly type: MetricType;
  /** The name the module defined (Envoy shows it as `wasmcustom.<name>`). */
  readonly name: string;
  /** Counter or gauge value (u64). */
  value: bigint;
  /** Every value recorded into a histogram, in order. */
  readonly values: bigint[];
}

const TYPE_NAMES = ["counter", "gauge", "histogram"] as const;

/** Process-wide stats: every VM that defines the same name and type updates the same stat. */
export class MetricStore {
  private readonly stats = new Map<string, Stat>();

  stat(type: MetricType, name: string): Stat {
    const key = `${type}\0${name}`;
    let s = this.stats.get(key);
    if (!s) this.stats.set(key, (s = { type, name, value: 0n, values: [] }));
    return s;
  }

  find(type: MetricType, name: string): Stat | undefined {
    return this.stats.get(`${type}\0${name}`);
  }

  /** The stat of that type and name, or an error listing the names that do exist. */
  require(type: MetricType, name: string): Stat {
    const s = this.find(type, name);
    if (!s) {
      const known = this.all()
        .filter((x) => x.type === type)
        .map((x) => x.name);
      throw new EmulatorError(
        `no ${TYPE_NAMES[type]} named ${JSON.stringify(name)} was defined; defined ${TYPE_NAMES[type]}s: ${JSON.stringify(known)}`,
      );
    }
    return s;
  }

  all(): Stat[] {
    return [...this.stats.values()];
  }
}

/** One VM's metric id table, mirroring Envoy's Context::defineMetric/incrementMetric/recordMetric/getMetric. */
export class VmMetrics {
  private readonly ids = new Map<number, Stat>();
  private readonly next = [0, 1, 2];

  constructor(private readonly store: MetricStore) {}

  /** Returns the new id; the same name defined again gets a new id for the same stat. */
  define(type: number, name: string): number {
    if (type !== MetricType.Counter && type !== MetricType.Gauge && type !== MetricType.Histogram) {
      throw new EmulatorError(`proxy_define_metric: metric type ${type} is out of range (0 counter, 1 gauge, 2 histogram)`);
    }
    const id = (this.next[type]! += 4) >>> 0;
    this.ids.set(id, this.store.stat(type, name));
    return id;
  }

  stat(id: number): Stat | undefined {
    return this.ids.get(id);
  }

  /** Counter: delta must be > 0 (else BadArgument). Gauge: add or subtract. Histogram: BadArgument. */
  increment(id: number, delta: bigint): WasmResult {
    const type = id & 3;
    if (type === MetricType.Histogram || type === 3) return WasmResult.BadArgument;
    const s = this.ids.get(id);
    if (!s) return WasmResult.NotFound;
    if (type === MetricType.Counter) {
      if (delta <= 0n) return WasmResult.BadArgument;
      s.value = (s.value + delta) & U64_MAX;
      return WasmResult.Ok;
    }
    if (s.value + delta < 0n) {
      throw new EmulatorError(
        `proxy_increment_metric: gauge ${JSON.stringify(s.name)} would go below zero (${s.value} + ${delta}); Envoy gauges are unsigned`,
      );
    }
    s.value += delta;
    return WasmResult.Ok;
  }

  /** Counter: add(value). Gauge: set(value). Histogram: record(value). Values are u64 on the host side. */
  record(id: number, value: bigint): WasmResult {
    const s = this.ids.get(id);
    if (!s) return WasmResult.NotFound;
    if (value < 0n) {
      throw new EmulatorError(
        `proxy_record_metric: negative value ${value} for ${TYPE_NAMES[s.type]} ${JSON.stringify(s.name)}; Envoy reads it as uint64 ${BigInt.asUintN(64, value)}`,
      );
    }
    if (s.type === MetricType.Counter) s.value = (s.value + value) & U64_MAX;
    else if (s.type === MetricType.Gauge) s.value = value;
    else s.values.push(value);
    return WasmResult.Ok;
  }

  /** Counter or gauge value; histogram → BadArgument; unknown id → NotFound. */
  get(id: number): { result: WasmResult; value?: bigint } {
    const type = id & 3;
    if (type === MetricType.Histogram || type === 3) return { result: WasmResult.BadArgument };
    const s = this.ids.get(id);
    return s ? { result: WasmResult.Ok, value: s.value } : { result: WasmResult.NotFound };
  }
}
