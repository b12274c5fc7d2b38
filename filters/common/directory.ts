/**
 * A bounded directory of names shared by all workers: which destinations have state of their own (a budget, a breaker,
 * a metrics label). Shared data has no delete in ABI 0.2.1, so a filter that keyed state by a name a client chooses
 * would let that client grow Envoy's memory; instead each admitted name gets a slot (a fixed key), up to a cap, and
 * later names share an overflow slot. The directory itself is one shared-data value: names separated by `\n`, a
 * name's position being its slot. It only grows, so once full it never changes and each worker keeps its copy.
 */
import { Str, SharedValue, log, LogLevel } from "../../assembly/host";
import { RecordUpdate, SharedRecords, Update } from "../../assembly/shared";
import { splitOn } from "../../assembly/text";

/** The directory's value: host-free. */
export class Directory {
  names: string[];

  constructor(encoded: string) {
    this.names = encoded.length == 0 ? [] : splitOn(encoded, "\n");
  }

  /** The slot of `name`, or -1. */
  slotOf(name: string): i32 {
    return this.names.indexOf(name);
  }

  /** The slot of `name`, adding it while fewer than `cap` names are in; -1 when full. */
  admit(name: string, cap: i32): i32 {
    const s = this.names.indexOf(name);
    if (s >= 0) return s;
    if (this.names.length >= cap) return -1;
    this.names.push(name);
    return this.names.length - 1;
  }

  encode(): string {
    return this.names.join("\n");
  }
}

/** Admits one name into the directory's value as read (assembly/shared.ts retries it on a lost race). */
class Admission extends RecordUpdate {
  name: string = "";
  slot: i32 = -1;
  /** The directory as last read, when it was full (then nothing is written). */
  full: Directory | null = null;

  constructor(readonly cap: i32) { super(); }

  apply(cur: SharedValue | null): ArrayBuffer | null {
    this.full = null;
    const dir = new Directory(cur !== null ? String.UTF8.decode(cur.data) : "");
    const known = dir.slotOf(this.name);
    this.slot = known >= 0 ? known : dir.admit(this.name, this.cap);
    if (this.slot < 0) this.full = dir;
    return known < 0 && this.slot >= 0 ? String.UTF8.encode(dir.encode()) : null;
  }
}

/** The directory in one shared-data key, admitted into by compare-and-swap. */
export class SharedDirectory {
  private full: Directory | null = null;
  private readonly key: Str;
  private readonly admission: Admission;
  private readonly records: SharedRecords;

  /**
   * `key`: the shared-data key. `cap`: names with a slot. `maxNameLength`: longer names never get one. `reserved`:
   * a name that never gets one either (the overflow's own name, e.g. "other"). `fullMessage`: logged once per worker
   * when the directory is found full.
   */
  constructor(key: string, readonly cap: i32, readonly maxNameLength: i32, readonly reserved: string, readonly fullMessage: string) {
    this.key = new Str(key);
    this.admission = new Admission(cap);
    // Keys read "resilience.<filter>.<what>": the filter an exhausted admission is counted for.
    const parts = splitOn(key, ".");
    this.records = new SharedRecords(parts.length > 1 ? parts[1] : key);
  }

  /** True when `name` may have a slot at all. */
  admissible(name: string): bool {
    return name.length > 0 && name.length <= this.maxNameLength && name != this.reserved && !name.includes("\n");
  }

  /**
   * The slot of `name`, admitting it while there is room; -1 for a name that gets none (the directory is full, or
   * the name is not admissible). Costs a shared-data read (and a CAS write to admit) until the directory is full;
   * then nothing. Callers cache the slots they got.
   */
  slotOf(name: string): i32 {
    if (!this.admissible(name)) return -1;
    const full = this.full;
    if (full !== null) return full.slotOf(name);
    const a = this.admission;
    a.name = name;
    a.full = null;
    if (this.records.update(this.key, a) == Update.Exhausted) return -1;
    if (a.full !== null) {
      this.full = a.full;
      log(LogLevel.Info, this.fullMessage);
    }
    return a.slot;
  }
}
