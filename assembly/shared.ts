/**
 * Read-modify-write of one shared-data record under compare-and-swap, with the one retry policy every filter uses
 * (the breaker's records, the retry budget's windows, the directories, traffic-split's state): read, let the caller
 * decide on what it read, write with that read's CAS token; a lost race (another worker wrote in between) re-reads
 * and decides again. After CAS_ATTEMPTS lost races the update is given up: counted in
 * `resilience_shared_update_dropped_total{filter}` and logged once per VM and filter; the caller says what giving up
 * means for it (Update.Exhausted).
 */
import { Str, SharedValue, getSharedData, setSharedData, casFor, log } from "./host";
import { LogLevel } from "./abi/types";
import { Counter, labelTag } from "./metrics";
import { METRIC_PREFIX } from "./context";

/** Tries of one update: enough for every worker of a large host writing one key at the same instant. */
// @ts-ignore: decorator
@inline export const CAS_ATTEMPTS: i32 = 8;

/** How an update ended. */
export enum Update {
  /** The caller's bytes were written over the value its last apply() saw. */
  Written = 0,
  /** apply() found nothing to write (the decision stands on the value read). */
  Unchanged = 1,
  /** Every try lost a race: nothing written (counted and logged). */
  Exhausted = 2,
}

/**
 * One kind of update. apply() sees the value now (null: the key was never written) and returns the bytes to write, or
 * null when nothing needs writing; after a lost race it is called again with a fresh read, so it must decide anew
 * each time (state it keeps between tries is its own business). Subclasses hold their inputs as fields, so an update
 * allocates nothing per call.
 */
export class RecordUpdate {
  apply(current: SharedValue | null): ArrayBuffer | null { return null; }
}

/** The updates of one filter on this VM: where an exhausted update is counted and said. */
export class SharedRecords {
  private dropped: Counter | null = null;
  private warned: bool = false;

  constructor(readonly filter: string) {}

  /** Runs `u` against `key` under CAS (see the file comment). */
  update(key: Str, u: RecordUpdate): Update {
    return this.updateFrom(key, getSharedData(key), u);
  }

  /** update() whose first try decides on `first`, a read of `key` the caller made already. */
  updateFrom(key: Str, first: SharedValue | null, u: RecordUpdate): Update {
    let cur = first;
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      if (i > 0) cur = getSharedData(key);
      const next = u.apply(cur);
      if (next === null) return Update.Unchanged;
      if (setSharedData(key, next, casFor(cur))) return Update.Written;
    }
    this.exhausted(key);
    return Update.Exhausted;
  }

  private exhausted(key: Str): void {
    let c = this.dropped;
    // Defined at the first drop only: the series exists where contention did.
    if (c === null) {
      c = new Counter(labelTag("filter", this.filter) + METRIC_PREFIX + "shared_update_dropped_total");
      this.dropped = c;
    }
    c.inc();
    if (this.warned) return;
    this.warned = true;
    log(LogLevel.Warn, this.filter + ": an update of shared key " + key.text + " lost " + CAS_ATTEMPTS.toString() +
      " CAS races in a row and was dropped (said once per worker; resilience_shared_update_dropped_total counts them)");
  }
}
