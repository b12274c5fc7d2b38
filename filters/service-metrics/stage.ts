/**
 * service-metrics as a stage: per destination service and reporter, requests by response code (and class and flags),
 * a duration histogram in milliseconds, local replies and upstream failures.
 *
 * Host calls per request: `:authority` (or the cluster / header) on request; response.code, response.flags,
 * upstream.request_attempt_count, request.duration and two metric updates at completion. Series are defined once per
 * VM on first use; for a destination this VM has not seen, xds.cluster_name (was it routed?) and the label registry
 * in shared data.
 */
import { Stage, StageStream } from "../../assembly/stage";
import { StreamView } from "../../assembly/stream";
import { Counter, Histogram, taggedName } from "../../assembly/metrics";
import { METRIC_PREFIX } from "../../assembly/context";
import { ConfigReader } from "../../assembly/config";
import { ServiceMetricsConfig, Naming, FILTER_NAME, parseConfig } from "./config";
import { SharedDirectory } from "../common/directory";
import { OTHER, UNROUTED, codeKey, codeLabel, codeClass, flagIndex, FLAG_LABELS } from "./core";
import { isUpstreamFailure, outcomeOf } from "../common/outcome";

/** Longest destination label kept; longer ones are counted under "other" (label values are cut at 64 anyway). */
// @ts-ignore: decorator
@inline const MAX_SERVICE_LENGTH: i32 = 253;

/** The series of one destination service on this VM. */
class ServiceSeries {
  /** Request counters keyed by codeKey * 16 + flag index. */
  requests: Map<i32, Counter> = new Map<i32, Counter>();
  duration: Histogram;
  localReplies: Counter;
  upstreamFailures: Counter;

  constructor(readonly stage: ServiceMetricsStage, readonly service: string) {
    this.duration = new Histogram(stage.seriesName(service, -1, 0, stage.durationName));
    this.localReplies = new Counter(stage.seriesName(service, -1, 0, METRIC_PREFIX + "local_replies_total"));
    this.upstreamFailures = new Counter(stage.seriesName(service, -1, 0, METRIC_PREFIX + "upstream_failures_total"));
  }

  requestCounter(code: i32, flags: i32): Counter {
    const key = code * 16 + flags;
    if (this.requests.has(key)) return this.requests.get(key);
    const c = new Counter(this.stage.seriesName(this.service, code, flags, this.stage.requestsName));
    this.requests.set(key, c);
    return c;
  }
}

export class ServiceMetricsStage extends Stage {
  private readonly series: Map<string, ServiceSeries> = new Map<string, ServiceSeries>();
  /** The destinations admitted as label values, shared by all workers; beyond the cap they count as "other". */
  private readonly services: SharedDirectory;
  readonly requestsName: string;
  readonly durationName: string;

  constructor(readonly config: ServiceMetricsConfig) {
    super();
    this.services = new SharedDirectory(
      "resilience." + FILTER_NAME + "." + config.reporter + ".services", config.maxServices, MAX_SERVICE_LENGTH, OTHER,
      FILTER_NAME + ": " + config.maxServices.toString() + " destination_service values in use; later ones are counted as \"" + OTHER + "\"");
    const istio = config.naming == Naming.Istio;
    this.requestsName = istio ? "istio_requests_total" : METRIC_PREFIX + "requests_total";
    this.durationName = istio ? "istio_request_duration_milliseconds" : METRIC_PREFIX + "request_duration";
  }

  get name(): string { return FILTER_NAME; }

  /** Durations come from Envoy's `request.duration`: no clock reads. */
  usesClock(): bool { return false; }

  newStream(view: StreamView): StageStream | null {
    return new ServiceMetricsStream(this);
  }

  /** The tag-encoded stat name of a series; `code` is a codeKey, < 0 for a series without code labels. */
  seriesName(service: string, code: i32, flags: i32, metric: string): string {
    const c = this.config;
    const names = new Array<string>();
    const values = new Array<string>();
    names.push("reporter"); values.push(c.reporter);
    if (c.naming == Naming.Istio) {
      names.push("source_workload"); values.push(c.sourceWorkload);
      names.push("source_workload_namespace"); values.push(c.sourceNamespace);
      names.push("destination_workload"); values.push(c.destinationWorkload);
      names.push("destination_workload_namespace"); values.push(c.destinationNamespace);
      names.push("destination_service_name"); values.push(service);
    }
    names.push("destination_service"); values.push(service);
    if (code >= 0) {
      names.push("response_code"); values.push(codeLabel(code));
      if (c.naming == Naming.Resilience) { names.push("response_code_class"); values.push(codeClass(code >= 1 && code <= 5 ? code * 100 : code)); }
      names.push("response_flags"); values.push(FLAG_LABELS[flags]);
    }
    return taggedName(names, values, metric);
  }

  /**
   * This VM's series for a destination, admitting it to the shared registry or folding it into "other". A name enters
   * the registry only when a route sent the request somewhere; every other request counts under "unrouted".
   */
  seriesFor(view: StreamView, service: string): ServiceSeries {
    if (this.series.has(service)) return this.series.get(service);
    // Called at completion: the cluster the request went to, also when a stage re-routed it.
    const routed = this.config.destination.byCluster ? service.length > 0 : view.finalClusterName().length > 0;
    let label = UNROUTED;
    if (routed) {
      if (service.length == 0) service = "unknown";
      if (this.series.has(service)) return this.series.get(service);
      label = this.services.slotOf(service) >= 0 ? service : OTHER;
    }
    // Folded names are not remembered: clients choosing names cannot grow this VM's map.
    if (label != service && this.series.has(label)) return this.series.get(label);
    const s = new ServiceSeries(this, label);
    this.series.set(label, s);
    return s;
  }

}

class ServiceMetricsStream extends StageStream {
  private service: string = "";

  constructor(readonly stage: ServiceMetricsStage) { super(); }

  onRequest(view: StreamView, nowMs: i64): bool {
    // The cluster is read at completion: a later stage may re-route the request (traffic-split), and only once the
    // router re-selected the route does xds.cluster_name name the cluster the request went to.
    if (!this.stage.config.destination.byCluster) this.service = this.stage.config.destination.of(view);
    return true;
  }

  onComplete(view: StreamView, nowMs: i64): void {
    // A stream that never reached on_request_headers still gets its destination here (request headers are readable).
    if (this.service.length == 0) this.service = this.stage.config.destination.atCompletion(view);
    const s = this.stage.seriesFor(view, this.service);
    const code = view.responseCode();
    const flags = view.responseFlags();
    s.requestCounter(codeKey(code), flagIndex(flags)).inc();
    const durNs = view.requestDurationNs();
    if (durNs >= 0) s.duration.record(<u64>(durNs / 1_000_000));
    if (view.attemptCount() == 0 && code != 0) s.localReplies.inc();
    // Caller-caused outcomes (its own deadline, a disconnect) are counted above with their flag, not as upstream failures.
    if (isUpstreamFailure(outcomeOf(view))) s.upstreamFailures.inc();
  }
}

/** The stage from its configuration, or null (the reader's error names the field). */
export function buildServiceMetrics(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new ServiceMetricsStage(c) : null;
}
