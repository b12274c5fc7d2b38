/**
 * deadline as a stage: works out the time left for this request, answers 504 (gRPC: DEADLINE_EXCEEDED) when it is
 * spent, else hands the rest to the router (x-envoy-upstream-rq-timeout-ms) and to the next hop (the project header,
 * grpc-timeout). With crossHop "record" it remembers request id -> deadline while the request is in flight; with
 * "lookup" it finds that deadline for the app's outbound call by x-request-id.
 *
 * Host calls per request: the clock (once, on request headers), the configured headers until one holds a budget (1-3),
 * request.time, content-type, and 2-3 header writes. crossHop "record": x-request-id, one shared-data get + CAS set on
 * request, and at completion response.flags plus, when the app answered, another get + CAS set (release). crossHop
 * "lookup": x-request-id and one shared-data get. `:path` / the destination only when default rules need them. The
 * per-request series (budgets, lookups, records, occupancy) are summed per worker and handed to Envoy on the
 * housekeeping tick (at most a second late); rare events (rejections, clamps, malformed values, evictions) at once.
 */
import { Stage, StageStream } from "../../assembly/stage";
import { StreamView, ResponseFlag, H_CONTENT_TYPE, H_PATH, H_REQUEST_ID } from "../../assembly/stream";
import { Counter, Gauge, taggedName } from "../../assembly/metrics";
import { Str, HeaderPair, getSharedData, setSharedData, incrementMetric, log, logEnabled, nowMs as hostNowMs, casFor } from "../../assembly/host";
import { ConfigReader } from "../../assembly/config";
import { LogLevel, GrpcStatus } from "../../assembly/abi/types";
import { METRIC_PREFIX } from "../../assembly/context";
import { DeadlineConfig, CrossHop, Incoming, Source, SOURCE_NAMES, FILTER_NAME, SLOTS_PER_KEY, parseConfig } from "./config";
import {
  BudgetSource, BUDGET_SOURCE_LABELS, NONE, PutOutcome, bucketOf, decide, defaultFor, findSlot,
  formatGrpcTimeout, hashRequestId, isGrpc, keyIndexOf, parseGrpcTimeout, parseMillis, putSlot, releaseSlot,
} from "./core";

/** Bounded CAS retries when two workers write the same key at the same moment. */
// @ts-ignore: decorator
@inline const CAS_RETRIES: i32 = 8;

const H_GRPC_TIMEOUT = new Str("grpc-timeout");
const H_ENVOY_EXPECTED = new Str("x-envoy-expected-rq-timeout-ms");
const H_UPSTREAM_TIMEOUT = new Str("x-envoy-upstream-rq-timeout-ms");
const NO_HEADERS = new Array<HeaderPair>();
/** Outcomes after which the app may still be working on the request: upstream timeout, downstream went away. */
// @ts-ignore: decorator
@inline const KEEP_AFTER: i64 = ResponseFlag.UPSTREAM_TIMEOUT | ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION;

/** A metric change summed on this worker and handed to Envoy on the housekeeping tick: no host call per request. */
@final class Tally {
  private pending: i64 = 0;
  constructor(private readonly id: u32) {}
  @inline add(delta: i64): void { this.pending += delta; }
  flush(): void {
    if (this.pending == 0) return;
    incrementMetric(this.id, this.pending);
    this.pending = 0;
  }
}

function series(reporter: string, source: string, name: string): string {
  if (source.length == 0) return taggedName(["reporter"], [reporter], METRIC_PREFIX + FILTER_NAME + "_" + name);
  return taggedName(["reporter", "budget_source"], [reporter, source], METRIC_PREFIX + FILTER_NAME + "_" + name);
}

export class DeadlineStage extends Stage {
  readonly header: Str;
  /** Header handles in the order of `sources`. */
  readonly sourceHeaders: Str[] = [];
  /** By BudgetSource. */
  readonly budgets: Tally[] = [];
  /** By Source. */
  readonly malformed: Counter[] = [];
  readonly expired: Counter;
  readonly rejections: Counter;
  readonly clamps: Counter;
  hits: Tally | null = null;
  misses: Tally | null = null;
  records: Tally | null = null;
  evictions: Counter | null = null;
  slotsUsed: Tally | null = null;
  /** Every Tally, for the tick. */
  private readonly tallies: Tally[] = [];
  /** One handle per shared-data key, made on first use. */
  private readonly keys: StaticArray<Str | null>;
  private readonly keyCount: u32;
  private stateless: DeadlineStream | null = null;

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
      this.budgets.push(this.tally(new Counter(series(rep, BUDGET_SOURCE_LABELS[i], "budgets_total")).id));
    }
    for (let i: i32 = 0; i < SOURCE_NAMES.length; i++) this.malformed.push(new Counter(series(rep, SOURCE_NAMES[i], "malformed_total")));
    if (c.crossHop == CrossHop.Lookup) {
      this.hits = this.tally(new Counter(series(rep, "", "crosshop_hits_total")).id);
      this.misses = this.tally(new Counter(series(rep, "", "crosshop_misses_total")).id);
    } else if (c.crossHop == CrossHop.Record) {
      this.records = this.tally(new Counter(series(rep, "", "crosshop_records_total")).id);
      this.evictions = new Counter(series(rep, "", "crosshop_evictions_total"));
      this.slotsUsed = this.tally(new Gauge(series(rep, "", "crosshop_slots_used")).id);
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

  onTick(nowMs: i64): void {
    const t = this.tallies;
    for (let i: i32 = 0; i < t.length; i++) unchecked(t[i]).flush();
  }

  private tally(metricId: u32): Tally {
    const t = new Tally(metricId);
    this.tallies.push(t);
    return t;
  }

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

  /** The recorded deadline of the inbound request with this id hash, or NONE. */
  lookup(hash: u64, nowMs: i64): i64 {
    const cur = getSharedData(this.keyFor(hash));
    if (cur === null) return NONE;
    return findSlot(bucketOf(cur.data), hash, nowMs, <i64>this.config.graceMs);
  }

  /** Records hash -> deadline; false when CAS kept failing. */
  record(hash: u64, deadlineMs: i64, nowMs: i64): bool {
    const key = this.keyFor(hash);
    for (let i: i32 = 0; i < CAS_RETRIES; i++) {
      const cur = getSharedData(key);
      const b = bucketOf(cur !== null ? cur.data : null);
      const outcome = putSlot(b, hash, deadlineMs, nowMs, <i64>this.config.graceMs);
      if (!setSharedData(key, b, casFor(cur))) continue;
      changetype<Tally>(this.records).add(1);
      if (outcome == PutOutcome.Added) changetype<Tally>(this.slotsUsed).add(1);
      else if (outcome == PutOutcome.Evicted) changetype<Counter>(this.evictions).inc();
      return true;
    }
    return false;
  }

  /** Frees the slot of a finished request, unless another request has taken it since. */
  release(hash: u64, deadlineMs: i64): void {
    const key = this.keyFor(hash);
    for (let i: i32 = 0; i < CAS_RETRIES; i++) {
      const cur = getSharedData(key);
      if (cur === null) return;
      const b = bucketOf(cur.data);
      if (!releaseSlot(b, hash, deadlineMs)) return;
      if (setSharedData(key, b, cur.cas)) {
        changetype<Tally>(this.slotsUsed).add(-1);
        return;
      }
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

  onRequest(view: StreamView, now: i64): bool {
    const stage = this.stage;
    const c = stage.config;
    // 0: no stage of this module asked the context for the clock (see usesClock); read it here, once.
    const nowMs = now != 0 ? now : hostNowMs();

    // 1. The first incoming budget that parses, in the configured order.
    let incoming: i64 = NONE;
    let from = BudgetSource.None;
    if (c.incoming != Incoming.Ignore) {
      const sources = c.sources;
      for (let i: i32 = 0, n: i32 = sources.length; i < n && incoming == NONE; i++) {
        const s = unchecked(sources[i]);
        const value = view.requestHeader(unchecked(stage.sourceHeaders[i]));
        if (value === null) continue;
        incoming = s == Source.GrpcTimeout ? parseGrpcTimeout(value) : parseMillis(value);
        if (incoming != NONE) {
          from = <BudgetSource>s;
        } else {
          unchecked(stage.malformed[<i32>s]).inc();
          if (logEnabled(LogLevel.Debug)) {
            log(LogLevel.Debug, FILTER_NAME + " [" + view.id.toString() + "] ignoring malformed " + SOURCE_NAMES[<i32>s] + " \"" + value + "\"");
          }
        }
      }
    }

    // 2. The inbound request's deadline, for the app's outbound call.
    let table: i64 = NONE;
    let hash: u64 = 0;
    if (c.crossHop != CrossHop.Off) {
      const id = view.requestHeader(H_REQUEST_ID);
      if (id !== null && id.length > 0) hash = hashRequestId(id);
      if (c.crossHop == CrossHop.Lookup) {
        if (hash != 0) table = stage.lookup(hash, nowMs);
        changetype<Tally>(table != NONE ? stage.hits : stage.misses).add(1);
      }
    }

    // 3. The default for this destination / path: needed when nothing else is known, or to cap a "shorten" ask.
    let def = c.defaultMs;
    const needDefault = incoming == NONE ? table == NONE : c.incoming == Incoming.Shorten;
    if (needDefault && c.defaults.length > 0) {
      const dest = c.rulesUseDestination ? c.destination.of(view) : "";
      let path = "";
      if (c.rulesUsePath) {
        const p = view.requestHeader(H_PATH);
        if (p !== null) path = p;
      }
      def = defaultFor(c.defaults, dest, path, c.defaultMs);
    }

    const t0 = view.requestTimeNs();
    const d = decide(c, incoming, from, def, table, t0 > 0 ? t0 / 1_000_000 : nowMs, nowMs);
    unchecked(stage.budgets[<i32>d.source]).add(1);
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
        if (logEnabled(LogLevel.Debug)) {
          log(LogLevel.Debug, FILTER_NAME + " [" + view.id.toString() + "] deadline exceeded: " + d.leftMs.toString() + " ms left from " + BUDGET_SOURCE_LABELS[<i32>d.source]);
        }
        view.reply(504, "deadline_exceeded", "deadline exceeded", NO_HEADERS, grpc ? GrpcStatus.DeadlineExceeded : GrpcStatus.None);
        return false;
      }
    }

    if (c.crossHop == CrossHop.Record && hash != 0 && stage.record(hash, d.deadlineMs, nowMs)) {
      this.recordedHash = hash;
      this.recordedDeadline = d.deadlineMs;
    }
    const left = d.leftMs > 0 ? d.leftMs : 0;
    const text = left.toString();
    view.setRequestHeader(stage.header, text);
    if (c.enforce) view.setRequestHeader(H_UPSTREAM_TIMEOUT, text);
    if (grpc) view.setRequestHeader(H_GRPC_TIMEOUT, formatGrpcTimeout(left));
    return true;
  }

  onComplete(view: StreamView, _now: i64): void {
    if (this.recordedHash == 0) return;
    // Cut short by the deadline or by the caller leaving: the app may still be working on it, so the entry stays
    // (its late outbound calls are refused) until deadline + graceMs. Answered: the slot is free again.
    if ((view.responseFlags() & KEEP_AFTER) != 0) return;
    this.stage.release(this.recordedHash, this.recordedDeadline);
  }
}

/** The stage from its configuration, or null (the reader's error names the field). */
export function buildDeadline(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new DeadlineStage(c) : null;
}
