/**
 * deadline as a stage: works out the time left for this request, answers 504 (gRPC: DEADLINE_EXCEEDED) when it is
 * spent, else hands the rest to the router (x-envoy-upstream-rq-timeout-ms under an operator's bound, else the per-try
 * header, which can only lower the route's timeout) and to the next hop (the project header, grpc-timeout), and tells
 * the view when a caller's budget bounds the upstream (the outcome classifier's input). With crossHop "record" it
 * remembers request id -> deadline while the request is in flight; with "lookup" it finds that deadline for the app's
 * outbound call by x-request-id.
 *
 * Host calls per request: the clock (once, on request headers), every configured source header (1-3: the smallest
 * wins; one pairs call from three reads on), request.time when a budget applies, content-type, 2-3 header writes, and one property write when a caller's budget binds.
 * crossHop "record": x-request-id, one shared-data get + CAS set on request, and at completion response.flags plus,
 * when the app answered, another get + CAS set (release). crossHop "lookup": x-request-id and one shared-data get.
 * `:path` / the destination only when default rules need them. The per-request series (budgets, lookups, records,
 * occupancy) are summed per worker and handed to Envoy on the housekeeping tick (at most a second late); rare events
 * (rejections, clamps, malformed values, full keys) at once. */
import { Stage, StageStream, renewFrom } from "../../assembly/stage";
import { StreamView, H_CONTENT_TYPE, H_PATH, H_REQUEST_ID } from "../../assembly/stream";
import { BatchedCounter, Counter, labelTag } from "../../assembly/metrics";
import { Str, HeaderPair, SharedValue, getSharedData, nowMs as hostNowMs, LogLevel, GrpcStatus, MetricType } from "../../assembly/host";
import { StageLog } from "../../assembly/log";
import { RecordUpdate, SharedRecords, Update } from "../../assembly/shared";
import { ConfigReader } from "../../assembly/config";
import { METRIC_PREFIX } from "../../assembly/context";
import { DeadlineConfig, CrossHop, Incoming, Source, SOURCE_NAMES, FILTER_NAME, SLOTS_PER_KEY, parseConfig } from "./config";
import {
  BudgetSource, BUDGET_SOURCE_LABELS, NONE, PutOutcome, ReleaseOutcome, TimeoutHeader, bucketOf, decide, defaultFor,
  entryCaller, entryDeadline, findSlot, formatGrpcTimeout, hashRequestId, isGrpc, keyIndexOf, parseGrpcTimeout,
  parseMillis, putSlot, releaseSlot,
} from "./core";

/** Puts hash -> deadline into a key's slots; `outcome` is what the last apply() decided. */
class SlotPut extends RecordUpdate {
  hash: u64 = 0;
  deadlineMs: i64 = 0;
  caller: bool = false;
  nowMs: i64 = 0;
  graceMs: i64 = 0;
  outcome: PutOutcome = PutOutcome.Full;

  apply(cur: SharedValue | null): ArrayBuffer | null {
    const b = bucketOf(cur !== null ? cur.data : null);
    this.outcome = putSlot(b, this.hash, this.deadlineMs, this.caller, this.nowMs, this.graceMs);
    return this.outcome == PutOutcome.Full ? null : b;
  }
}

/** Drops one hold on a key's slot; `outcome` is what the last apply() decided. */
class SlotRelease extends RecordUpdate {
  hash: u64 = 0;
  deadlineMs: i64 = 0;
  outcome: ReleaseOutcome = ReleaseOutcome.NotHeld;

  apply(cur: SharedValue | null): ArrayBuffer | null {
    if (cur === null) {
      this.outcome = ReleaseOutcome.NotHeld;
      return null;
    }
    const b = bucketOf(cur.data);
    this.outcome = releaseSlot(b, this.hash, this.deadlineMs);
    return this.outcome == ReleaseOutcome.NotHeld || this.outcome == ReleaseOutcome.Saturated ? null : b;
  }
}

const H_GRPC_TIMEOUT = new Str("grpc-timeout");
const H_ENVOY_EXPECTED = new Str("x-envoy-expected-rq-timeout-ms");
const H_UPSTREAM_TIMEOUT = new Str("x-envoy-upstream-rq-timeout-ms");
const H_PER_TRY_TIMEOUT = new Str("x-envoy-upstream-rq-per-try-timeout-ms");
const NO_HEADERS = new Array<HeaderPair>();
const LOG = new StageLog(FILTER_NAME);

function series(reporter: string, source: string, name: string): string {
  const tag = labelTag("reporter", reporter);
  return (source.length == 0 ? tag : tag + labelTag("budget_source", source)) + METRIC_PREFIX + FILTER_NAME + "_" + name;
}

export class DeadlineStage extends Stage {
  readonly header: Str;
  /** Header handles in the order of `sources`. */
  readonly sourceHeaders: Str[] = [];
  /** By BudgetSource. */
  readonly budgets: BatchedCounter[] = [];
  /** By Source. */
  readonly malformed: Counter[] = [];
  readonly expired: Counter;
  readonly rejections: Counter;
  readonly clamps: Counter;
  hits: BatchedCounter | null = null;
  misses: BatchedCounter | null = null;
  recordsTotal: BatchedCounter | null = null;
  full: Counter | null = null;
  slotsUsed: BatchedCounter | null = null;
  /** One handle per shared-data key, made on first use. */
  private readonly keys: StaticArray<Str | null>;
  private readonly keyCount: u32;
  private stateless: DeadlineStream | null = null;
  /** The cross-hop table's CAS updates (assembly/shared.ts), reused by every request. */
  private readonly records: SharedRecords = new SharedRecords(FILTER_NAME);
  private readonly put: SlotPut = new SlotPut();
  private readonly releaseUpdate: SlotRelease = new SlotRelease();

  constructor(readonly config: DeadlineConfig) {
    super();
    const c = config;
    const rep = c.reporter;
    this.header = new Str(c.header);
    this.expired = new Counter(series(rep, "", "expired_total"));
    this.rejections = new Counter(series(rep, "", "rejections_total"));
    this.clamps = new Counter(series(rep, "", "clamps_total"));
    const keyCount = c.slots / SLOTS_PER_KEY;
    this.keyCount = keyCount;
    this.keys = new StaticArray<Str | null>(<i32>keyCount);
    for (let i: i32 = 0; i < c.sources.length; i++) this.sourceHeaders.push(headerOf(this.header, c.sources[i]));
    for (let i: i32 = 0; i < BUDGET_SOURCE_LABELS.length; i++) {
      this.budgets.push(new BatchedCounter(series(rep, BUDGET_SOURCE_LABELS[i], "budgets_total")));
    }
    for (let i: i32 = 0; i < SOURCE_NAMES.length; i++) this.malformed.push(new Counter(series(rep, SOURCE_NAMES[i], "malformed_total")));
    if (c.crossHop == CrossHop.Lookup) {
      this.hits = new BatchedCounter(series(rep, "", "crosshop_hits_total"));
      this.misses = new BatchedCounter(series(rep, "", "crosshop_misses_total"));
    } else if (c.crossHop == CrossHop.Record) {
      this.recordsTotal = new BatchedCounter(series(rep, "", "crosshop_records_total"));
      this.full = new Counter(series(rep, "", "crosshop_full_total"));
      this.slotsUsed = new BatchedCounter(series(rep, "", "crosshop_slots_used"), MetricType.Gauge);
    }
    // Only "record" keeps per-request state (what to release at completion); the others share one stream object.
    if (c.crossHop != CrossHop.Record) this.stateless = new DeadlineStream(this);
  }

  get name(): string { return FILTER_NAME; }

  /**
   * The clock is needed once per request, in onRequest: read there (unless the module's other stages made the context
   * read it anyway), not in every callback of the stream.
   */
  usesClock(): bool { return false; }

  newStream(view: StreamView): StageStream | null {
    const s = this.stateless;
    return s !== null ? s : new DeadlineStream(this);
  }

  /** The shared-data key of the slots a hash lives in. */
  keyFor(hash: u64): Str {
    const k = <i32>keyIndexOf(hash, this.keyCount);
    let key = unchecked(this.keys[k]);
    if (key === null) {
      key = new Str("resilience." + FILTER_NAME + "." + this.config.table + "." + k.toString());
      unchecked(this.keys[k] = key);
    }
    return key;
  }

  /** The recorded entry (core.ts: deadline, holders, caller bit) of the inbound request with this id hash, or 0. */
  lookup(hash: u64, nowMs: i64): u64 {
    const cur = getSharedData(this.keyFor(hash));
    if (cur === null) return 0;
    return findSlot(bucketOf(cur.data), hash, nowMs, <i64>this.config.graceMs);
  }

  /** Records hash -> deadline; false when the key was full of live entries or CAS kept failing. */
  record(hash: u64, deadlineMs: i64, caller: bool, nowMs: i64): bool {
    const u = this.put;
    u.hash = hash;
    u.deadlineMs = deadlineMs;
    u.caller = caller;
    u.nowMs = nowMs;
    u.graceMs = <i64>this.config.graceMs;
    const r = this.records.update(this.keyFor(hash), u);
    if (r == Update.Unchanged) {
      changetype<Counter>(this.full).inc();
      return false;
    }
    if (r != Update.Written) return false;
    changetype<BatchedCounter>(this.recordsTotal).inc();
    if (u.outcome == PutOutcome.Added) changetype<BatchedCounter>(this.slotsUsed).inc();
    return true;
  }

  /** Drops a finished request's hold on its slot; the slot is freed when no other request with its id holds it. */
  release(hash: u64, deadlineMs: i64): void {
    const u = this.releaseUpdate;
    u.hash = hash;
    u.deadlineMs = deadlineMs;
    if (this.records.update(this.keyFor(hash), u) == Update.Written && u.outcome == ReleaseOutcome.Freed) {
      changetype<BatchedCounter>(this.slotsUsed).inc(-1);
    }
  }
}

function headerOf(own: Str, s: Source): Str {
  if (s == Source.GrpcTimeout) return H_GRPC_TIMEOUT;
  if (s == Source.EnvoyExpected) return H_ENVOY_EXPECTED;
  return own;
}

class DeadlineStream extends StageStream {
  /** What "record" wrote, so completion can free exactly that slot. */
  private recordedHash: u64 = 0;
  private recordedDeadline: i64 = NONE;

  constructor(readonly stage: DeadlineStage) { super(); }

  /** Every field is a value, a string or the stage's own object: copied from a stream that never served a request. */
  renew(view: StreamView): bool { return renewFrom<DeadlineStream>(this, this.stage.unusedStream(view)); }

  onRequest(view: StreamView, now: i64): bool {
    const stage = this.stage;
    const c = stage.config;
    // 0: no stage of this module asked the context for the clock (see usesClock); read it here, once.
    const nowMs = now != 0 ? now : hostNowMs();

    // 1. The smallest incoming budget of all sources present: a caller cannot hide a short one behind a long one.
    //    A malformed value is ignored (counted) and the others are still read.
    let incoming: i64 = NONE;
    let from = BudgetSource.None;
    if (c.incoming != Incoming.Ignore) {
      const sources = c.sources;
      for (let i: i32 = 0, n: i32 = sources.length; i < n; i++) {
        const s = unchecked(sources[i]);
        const value = view.requestHeader(unchecked(stage.sourceHeaders[i]));
        if (value === null) continue;
        const ms = s == Source.GrpcTimeout ? parseGrpcTimeout(value) : parseMillis(value);
        if (ms != NONE) {
          if (incoming == NONE || ms < incoming) {
            incoming = ms;
            from = <BudgetSource>s;
          }
        } else {
          unchecked(stage.malformed[<i32>s]).inc();
          if (LOG.on(LogLevel.Debug)) LOG.debug(view, "ignoring malformed " + SOURCE_NAMES[<i32>s] + " \"" + value + "\"");
        }
      }
    }

    // 2. The inbound request's deadline, for the app's outbound call.
    let table: i64 = NONE;
    let tableCaller = false;
    let hash: u64 = 0;
    if (c.crossHop != CrossHop.Off) {
      const id = view.requestHeader(H_REQUEST_ID);
      if (id !== null && id.length > 0) hash = hashRequestId(id);
      if (c.crossHop == CrossHop.Lookup) {
        const entry = hash != 0 ? stage.lookup(hash, nowMs) : 0;
        if (entry != 0) {
          table = entryDeadline(entry);
          tableCaller = entryCaller(entry);
        }
        changetype<BatchedCounter>(table != NONE ? stage.hits : stage.misses).inc();
      }
    }

    // 3. The operator's default for this destination / path: the bound an incoming ask may only shorten.
    let def = c.defaultMs;
    if (c.defaults.length > 0) {
      const dest = c.rulesUseDestination ? c.destination.of(view) : "";
      let path = "";
      if (c.rulesUsePath) {
        const p = view.requestHeader(H_PATH);
        if (p !== null) path = p;
      }
      def = defaultFor(c.defaults, dest, path, c.defaultMs);
    }

    // request.time is the time zero of an incoming budget or an operator's default; with neither it is never read.
    const t0 = (incoming != NONE && c.incoming != Incoming.Ignore) || def != 0 ? view.requestTimeNs() : 0;
    const d = decide(c, incoming, from, def, table, tableCaller, t0 > 0 ? t0 / 1_000_000 : nowMs, nowMs);
    unchecked(stage.budgets[<i32>d.source]).inc();
    if (d.clamped) stage.clamps.inc();
    if (d.source == BudgetSource.None) {
      // No deadline: pass untouched, except that an untrusted project header must not reach the app.
      if (c.incoming == Incoming.Ignore && view.requestHeader(stage.header) !== null) view.removeRequestHeader(stage.header);
      return true;
    }

    const grpc = isGrpc(view.requestHeader(H_CONTENT_TYPE));
    if (d.expired) {
      stage.expired.inc();
      if (c.enforce) {
        stage.rejections.inc();
        if (LOG.on(LogLevel.Debug)) {
          LOG.debug(view, "deadline exceeded: " + d.leftMs.toString() + " ms left from " + BUDGET_SOURCE_LABELS[<i32>d.source]);
        }
        view.reply(504, "deadline_exceeded", "deadline exceeded", NO_HEADERS, grpc ? GrpcStatus.DeadlineExceeded : GrpcStatus.None);
        return false;
      }
    }

    if (c.crossHop == CrossHop.Record && hash != 0 && stage.record(hash, d.deadlineMs, d.callerBound, nowMs)) {
      this.recordedHash = hash;
      this.recordedDeadline = d.deadlineMs;
    }
    const left = d.leftMs > 0 ? d.leftMs : 0;
    const text = left.toString();
    view.setRequestHeader(stage.header, text);
    if (d.timeout == TimeoutHeader.Global) {
      view.setRequestHeader(H_UPSTREAM_TIMEOUT, text);
    } else if (d.timeout == TimeoutHeader.PerTry) {
      view.setRequestHeader(H_PER_TRY_TIMEOUT, text);
      // An internal caller's own whole-request timeout would replace the route's: a caller only ever shortens it.
      if (view.requestHeader(H_UPSTREAM_TIMEOUT) !== null) view.removeRequestHeader(H_UPSTREAM_TIMEOUT);
    }
    if (d.callerBound) view.setCallerBudget(left);
    if (grpc) view.setRequestHeader(H_GRPC_TIMEOUT, formatGrpcTimeout(left));
    return true;
  }

  onComplete(view: StreamView, _now: i64): void {
    if (this.recordedHash == 0) return;
    // Only a stream that ended without any response flag was answered by the app: its hold is dropped. Cut short by
    // the deadline (UT), the caller leaving (DC) or resetting its stream (DR), or anything else, the app may still be
    // working on it, so the entry stays (its late outbound calls get the recorded deadline) until deadline + graceMs.
    if (view.responseFlags() != 0) return;
    this.stage.release(this.recordedHash, this.recordedDeadline);
  }
}

/** The stage from its configuration, or null (the reader's error names the field). */
export function buildDeadline(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new DeadlineStage(c) : null;
}
