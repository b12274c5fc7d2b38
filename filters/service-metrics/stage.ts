/**
 * service-metrics as a stage: per destination service and reporter, requests by response code (and class and flags),
 * a duration histogram in milliseconds, local replies and upstream failures; in Istio naming, Istio's four HTTP series
 * with its labels, the connection's identities and security policy among them.
 *
 * Host calls per request (project naming): `:authority` (or the cluster / header) on request; response.code,
 * response.flags, upstream.request_attempt_count, request.duration and two metric updates at completion.
 * Istio naming adds `content-type` on request and, at completion, the two URI SANs of the connection (downstream on the
 * server side, upstream on the client side), request.total_size, response.total_size (response.grpc_status for gRPC)
 * and two more histogram records. Series are defined once per VM on first use; for a destination or identity this VM
 * has not seen, xds.cluster_name (was it routed?) and the label registry in shared data.
 */
import { Stage, StageStream, renewFrom } from "../../assembly/stage";
import {
  StreamView, H_CONTENT_TYPE, P_DOWNSTREAM_PEER_URI_SAN, P_DOWNSTREAM_LOCAL_URI_SAN, P_UPSTREAM_PEER_URI_SAN,
  P_UPSTREAM_LOCAL_URI_SAN, P_REQUEST_TOTAL_SIZE, P_RESPONSE_TOTAL_SIZE, P_GRPC_STATUS,
} from "../../assembly/stream";
import { BatchedCounter, Histogram, taggedName } from "../../assembly/metrics";
import { METRIC_PREFIX } from "../../assembly/context";
import { ConfigReader } from "../../assembly/config";
import { ServiceMetricsConfig, Naming, FILTER_NAME, parseConfig, Workload } from "./config";
import { SharedDirectory } from "../common/directory";
import {
  OTHER, UNROUTED, codeKey, codeLabel, codeClass, flagIndex, FLAG_LABELS, istioReporter, securityPolicy,
  principalNamespace, istioServiceNames, ServiceNames, grpcStatusIndex, grpcStatusLabel, isGrpc,
} from "./core";
import { isUpstreamFailure, outcomeOf } from "../common/outcome";

/** Longest destination label kept; longer ones are counted under "other" (label values are cut at 64 anyway). */
// @ts-ignore: decorator
@inline const MAX_SERVICE_LENGTH: i32 = 253;
/** Longest certificate identity admitted as a label value; longer ones count as "other". */
// @ts-ignore: decorator
@inline const MAX_PRINCIPAL_LENGTH: i32 = 64;
/** Istio's word for a side it cannot name. */
const UNKNOWN = "unknown";

/** The series of one destination service on this VM. */
class ServiceSeries {
  /** Request counters keyed by codeKey * 16 + flag index (project naming). */
  requests: Map<i32, BatchedCounter> = new Map<i32, BatchedCounter>();
  /** Istio naming: the series of each (identities, security policy, protocol) seen with this service. */
  connections: Map<string, IstioSeries> = new Map<string, IstioSeries>();
  private last: IstioSeries | null = null;
  duration: Histogram | null = null;
  localReplies: BatchedCounter;
  upstreamFailures: BatchedCounter;
  readonly names: ServiceNames;

  constructor(readonly stage: ServiceMetricsStage, readonly service: string) {
    const c = stage.config;
    const names = istioServiceNames(service, c.serviceNamespace, c.serviceDomain);
    const istio = c.naming == Naming.Istio;
    // In Istio naming the per-service extras carry the service's full name, as its istio_* series do.
    const label = istio ? names.full : service;
    if (!istio) this.duration = new Histogram(stage.seriesName(service, -1, 0, METRIC_PREFIX + "request_duration"));
    this.localReplies = new BatchedCounter(stage.seriesName(label, -1, 0, METRIC_PREFIX + "local_replies_total"));
    this.upstreamFailures = new BatchedCounter(stage.seriesName(label, -1, 0, METRIC_PREFIX + "upstream_failures_total"));
    this.names = names;
  }

  requestCounter(code: i32, flags: i32): BatchedCounter {
    const key = code * 16 + flags;
    if (this.requests.has(key)) return this.requests.get(key);
    const c = new BatchedCounter(this.stage.seriesName(this.service, code, flags, METRIC_PREFIX + "requests_total"));
    this.requests.set(key, c);
    return c;
  }

  /** Istio naming: the series of one connection shape with this service, defined on first use. */
  connection(peer: string, local: string, policy: string, grpc: bool): IstioSeries {
    // Most requests repeat the last shape: compared field by field, no key string built.
    const last = this.last;
    if (last !== null && last.grpc == grpc && last.policy == policy && last.peer == peer && last.local == local) return last;
    const key = peer + "\n" + local + "\n" + policy + (grpc ? "\ng" : "\nh");
    let s: IstioSeries;
    if (this.connections.has(key)) {
      s = this.connections.get(key);
    } else {
      s = new IstioSeries(this.stage, this.names, peer, local, policy, grpc);
      this.connections.set(key, s);
    }
    this.last = s;
    return s;
  }
}

/** Istio's label names and values shared by the four series of one service and connection shape. */
class IstioLabels {
  names: string[] = [];
  values: string[] = [];
  add(name: string, value: string): void { this.names.push(name); this.values.push(value); }
  /** One side's workload labels (`source_*` or `destination_*`). */
  addWorkload(side: string, w: Workload, namespace: string, principal: string): void {
    this.add(side + "_workload", w.name);
    this.add(side + "_workload_namespace", namespace);
    this.add(side + "_principal", principal);
    this.add(side + "_app", w.app);
    this.add(side + "_version", w.version);
    this.add(side + "_canonical_service", w.canonicalService);
    this.add(side + "_canonical_revision", w.canonicalRevision);
    this.add(side + "_cluster", w.cluster);
  }
}

/** Istio naming: istio_requests_total by code, flag and gRPC status, and the three histograms, for one service and connection shape. */
class IstioSeries {
  private readonly labels: IstioLabels;
  /** Keyed by (codeKey * 16 + flag index) * 32 + gRPC status index. */
  private readonly requests: Map<i32, BatchedCounter> = new Map<i32, BatchedCounter>();
  readonly duration: Histogram;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;

  constructor(stage: ServiceMetricsStage, service: ServiceNames, readonly peer: string, readonly local: string, readonly policy: string, readonly grpc: bool) {
    const c = stage.config;
    const inbound = c.inbound;
    const l = new IstioLabels();
    // The peer's namespace is in its SPIFFE identity when it has one; else what the operator configured.
    const peerNs = principalNamespace(peer);
    const src = c.source;
    const dst = c.destinationWorkload;
    l.add("reporter", istioReporter(inbound));
    l.addWorkload("source", src, inbound && peerNs.length > 0 ? peerNs : src.namespace, inbound ? peer : local);
    l.addWorkload("destination", dst, !inbound && peerNs.length > 0 ? peerNs : dst.namespace, inbound ? local : peer);
    l.add("destination_service", service.full);
    l.add("destination_service_name", service.name);
    l.add("destination_service_namespace", service.namespace);
    l.add("request_protocol", grpc ? "grpc" : "http");
    l.add("connection_security_policy", policy);
    this.duration = new Histogram(taggedName(l.names, l.values, "istio_request_duration_milliseconds"));
    this.requestBytes = new Histogram(taggedName(l.names, l.values, "istio_request_bytes"));
    this.responseBytes = new Histogram(taggedName(l.names, l.values, "istio_response_bytes"));
    this.labels = l;
  }

  requestCounter(code: i32, flags: i32, grpcStatus: i32): BatchedCounter {
    const key = (code * 16 + flags) * 32 + grpcStatus;
    if (this.requests.has(key)) return this.requests.get(key);
    const names = this.labels.names.slice(0);
    const values = this.labels.values.slice(0);
    names.push("response_code"); values.push(codeLabel(code));
    names.push("grpc_response_status"); values.push(grpcStatusLabel(grpcStatus));
    names.push("response_flags"); values.push(FLAG_LABELS[flags]);
    const c = new BatchedCounter(taggedName(names, values, "istio_requests_total"));
    this.requests.set(key, c);
    return c;
  }
}

export class ServiceMetricsStage extends Stage {
  private readonly series: Map<string, ServiceSeries> = new Map<string, ServiceSeries>();
  /** The destinations admitted as label values, shared by all workers; beyond the cap they count as "other". */
  private readonly services: SharedDirectory;
  /** Istio naming: the certificate identities admitted as label values, the same way. */
  private readonly principals: SharedDirectory;
  /** Identities this VM already got a slot for (the directory is read only for new ones). */
  private readonly admittedPrincipals: Set<string> = new Set<string>();
  readonly istio: bool;

  constructor(readonly config: ServiceMetricsConfig) {
    super();
    const prefix = "resilience." + FILTER_NAME + "." + config.reporter;
    this.services = new SharedDirectory(
      prefix + ".services", config.maxServices, MAX_SERVICE_LENGTH, OTHER,
      FILTER_NAME + ": " + config.maxServices.toString() + " destination_service values in use; later ones are counted as \"" + OTHER + "\"");
    this.principals = new SharedDirectory(
      prefix + ".principals", config.maxPrincipals, MAX_PRINCIPAL_LENGTH, OTHER,
      FILTER_NAME + ": " + config.maxPrincipals.toString() + " principal values in use; later ones are counted as \"" + OTHER + "\"");
    this.istio = config.naming == Naming.Istio;
  }

  get name(): string { return FILTER_NAME; }

  /** Durations come from Envoy's `request.duration`: no clock reads. */
  usesClock(): bool { return false; }

  /** Every completion reads request.duration: other stages' completion time comes from it, not from the clock. */
  readsDuration(): bool { return true; }

  newStream(view: StreamView): StageStream | null {
    return new ServiceMetricsStream(this);
  }

  /** The tag-encoded stat name of a project-naming series (and the per-service extras); `code` < 0: no code labels. */
  seriesName(service: string, code: i32, flags: i32, metric: string): string {
    const c = this.config;
    const names = new Array<string>();
    const values = new Array<string>();
    names.push("reporter"); values.push(this.istio ? istioReporter(c.inbound) : c.reporter);
    names.push("destination_service"); values.push(service);
    if (code >= 0) {
      names.push("response_code"); values.push(codeLabel(code));
      names.push("response_code_class"); values.push(codeClass(code >= 1 && code <= 5 ? code * 100 : code));
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
      if (service.length == 0) service = UNKNOWN;
      if (this.series.has(service)) return this.series.get(service);
      label = this.services.slotOf(service) >= 0 ? service : OTHER;
    }
    // Folded names are not remembered: clients choosing names cannot grow this VM's map.
    if (label != service && this.series.has(label)) return this.series.get(label);
    const s = new ServiceSeries(this, label);
    this.series.set(label, s);
    return s;
  }

  /** A certificate identity as a label value: "unknown" without one, itself once admitted, else "other". */
  principalLabel(san: string): string {
    if (san.length == 0) return UNKNOWN;
    if (this.admittedPrincipals.has(san)) return san;
    if (this.principals.slotOf(san) < 0) return OTHER;
    this.admittedPrincipals.add(san);
    return san;
  }
}

class ServiceMetricsStream extends StageStream {
  private service: string = "";
  private grpc: bool = false;

  constructor(readonly stage: ServiceMetricsStage) { super(); }

  /** Every field is a value, a string or the stage's own object: copied from a stream that never served a request. */
  renew(view: StreamView): bool { return renewFrom<ServiceMetricsStream>(this, this.stage.unusedStream(view)); }

  onRequest(view: StreamView, nowMs: i64): bool {
    // The cluster is read at completion: a later stage may re-route the request (traffic-split), and only once the
    // router re-selected the route does xds.cluster_name name the cluster the request went to.
    if (!this.stage.config.destination.byCluster) this.service = this.stage.config.destination.of(view);
    if (this.stage.istio) this.grpc = isGrpc(view.requestHeader(H_CONTENT_TYPE));
    return true;
  }

  onComplete(view: StreamView, nowMs: i64): void {
    const stage = this.stage;
    // A stream that never reached on_request_headers still gets its destination here (request headers are readable).
    if (this.service.length == 0) this.service = stage.config.destination.atCompletion(view);
    const s = stage.seriesFor(view, this.service);
    const code = view.responseCode();
    const flags = view.responseFlags();
    const durNs = view.requestDurationNs();
    if (stage.istio) {
      this.recordIstio(view, s, code, flags, durNs);
    } else {
      s.requestCounter(codeKey(code), flagIndex(flags)).inc();
      if (durNs >= 0) s.duration!.record(<u64>(durNs / 1_000_000));
    }
    if (view.attemptCount() == 0 && code != 0) s.localReplies.inc();
    // Caller-caused outcomes (its own deadline, a disconnect) are counted above with their flag, not as upstream failures.
    if (isUpstreamFailure(outcomeOf(view))) s.upstreamFailures.inc();
  }

  /** Istio's series: identities from the connection's certificates (server side: downstream; client side: upstream). */
  private recordIstio(view: StreamView, s: ServiceSeries, code: i64, flags: i64, durNs: i64): void {
    const stage = this.stage;
    const inbound = stage.config.inbound;
    const peerSan = view.stringProperty(inbound ? P_DOWNSTREAM_PEER_URI_SAN : P_UPSTREAM_PEER_URI_SAN);
    const localSan = view.stringProperty(inbound ? P_DOWNSTREAM_LOCAL_URI_SAN : P_UPSTREAM_LOCAL_URI_SAN);
    const policy = securityPolicy(inbound, stage.config.observeClientPolicy, peerSan, localSan);
    const series = s.connection(stage.principalLabel(peerSan), stage.principalLabel(localSan), policy, this.grpc);
    const grpcStatus = this.grpc ? grpcStatusIndex(true, view.intProperty(P_GRPC_STATUS, -1)) : 0;
    series.requestCounter(codeKey(code), flagIndex(flags), grpcStatus).inc();
    if (durNs >= 0) series.duration.record(<u64>(durNs / 1_000_000));
    const reqBytes = view.intProperty(P_REQUEST_TOTAL_SIZE, -1);
    if (reqBytes >= 0) series.requestBytes.record(<u64>reqBytes);
    const respBytes = view.intProperty(P_RESPONSE_TOTAL_SIZE, -1);
    if (respBytes >= 0) series.responseBytes.record(<u64>respBytes);
  }
}

/** The stage from its configuration, or null (the reader's error names the field). */
export function buildServiceMetrics(r: ConfigReader): Stage | null {
  const c = parseConfig(r);
  return c !== null ? new ServiceMetricsStage(c) : null;
}
