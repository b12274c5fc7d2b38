/** service-metrics plugin configuration: a pure parser, bytes in, typed config or an error naming the field. */
import { ConfigReader } from "../../assembly/config";
import { Destination } from "../common/destination";
import { quoteJson } from "../../assembly/json";

export const FILTER_NAME = "service-metrics";

export enum Naming {
  /** `resilience_requests_total`, `resilience_request_duration_milliseconds`: never collides with Istio's own. */
  Resilience = 0,
  /** `istio_requests_total`, `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes` with
   *  Istio's labels and label values: its dashboards work unchanged. */
  Istio = 1,
}

/** One side's workload labels, as the operator knows them (Istio learns them from its control plane). */
export class Workload {
  name: string = "unknown";
  namespace: string = "unknown";
  app: string = "unknown";
  version: string = "unknown";
  canonicalService: string = "unknown";
  /** Istio reports an unknown revision as "latest". */
  canonicalRevision: string = "latest";
  cluster: string = "unknown";
}

export class ServiceMetricsConfig {
  destination: Destination = new Destination(0, null);
  /** `outbound` (client side) or `inbound` (server side); `source` / `destination` are read as these. */
  reporter: string = "outbound";
  naming: Naming = Naming.Resilience;
  maxServices: i32 = 100;
  source: Workload = new Workload();
  destinationWorkload: Workload = new Workload();
  /** Istio naming: the namespace and domain that complete a short service name (`reviews.default.svc.cluster.local`). */
  serviceNamespace: string = "default";
  serviceDomain: string = "cluster.local";
  /** Istio naming: distinct certificate identities (source/destination_principal values) admitted across workers. */
  maxPrincipals: i32 = 100;
  /** Istio naming, client side: judge the upstream connection's TLS (true) or say "unknown" as Istio's proxies do (false). */
  observeClientPolicy: bool = false;

  get inbound(): bool { return this.reporter == "inbound"; }
}

/** Keys that exist only in Istio naming: setting them under the filter's own naming would be silently ignored. */
const ISTIO_KEYS: string[] = [
  "sourceWorkload", "sourceNamespace", "sourceApp", "sourceVersion", "sourceCanonicalService", "sourceCanonicalRevision", "sourceCluster",
  "destinationWorkload", "destinationNamespace", "destinationApp", "destinationVersion", "destinationCanonicalService",
  "destinationCanonicalRevision", "destinationCluster", "serviceNamespace", "serviceDomain", "maxPrincipals",
  "clientSecurityPolicy",
];

function checkIstioKeys(r: ConfigReader, c: ServiceMetricsConfig): void {
  if (c.naming == Naming.Istio) return;
  for (let i = 0; i < ISTIO_KEYS.length; i++) {
    const key = ISTIO_KEYS[i];
    if (r.has(key)) r.fail(key, "is an Istio label, used only with " + quoteJson(r.prefix + "naming") + " \"istio\" (it is \"resilience\"); remove it or set naming");
  }
}

/** Reads `<side>Workload`, `<side>Namespace`, `<side>App`... into a Workload. */
function readWorkload(r: ConfigReader, side: string): Workload {
  const w = new Workload();
  w.name = r.string(side + "Workload", w.name);
  w.namespace = r.string(side + "Namespace", w.namespace);
  w.app = r.string(side + "App", w.app);
  w.version = r.string(side + "Version", w.version);
  w.canonicalService = r.string(side + "CanonicalService", w.canonicalService);
  w.canonicalRevision = r.string(side + "CanonicalRevision", w.canonicalRevision);
  w.cluster = r.string(side + "Cluster", w.cluster);
  return w;
}

/** Parses the configuration; on error returns null and `r.error` names the field and quotes the value. */
export function parseConfig(r: ConfigReader): ServiceMetricsConfig | null {
  const c = new ServiceMetricsConfig();
  c.destination = Destination.read(r);
  // Istio's own words for the two sides are accepted too; one spelling inside, so one shared label registry per side.
  const reporter = r.oneOf("reporter", "outbound", ["outbound", "inbound", "source", "destination"]);
  c.reporter = reporter == "source" ? "outbound" : reporter == "destination" ? "inbound" : reporter;
  c.naming = r.oneOf("naming", "resilience", ["resilience", "istio"]) == "istio" ? Naming.Istio : Naming.Resilience;
  c.maxServices = <i32>r.u32("maxServices", 100, 1, 10000);
  c.source = readWorkload(r, "source");
  c.destinationWorkload = readWorkload(r, "destination");
  c.serviceNamespace = r.string("serviceNamespace", c.serviceNamespace);
  c.serviceDomain = r.string("serviceDomain", c.serviceDomain);
  c.maxPrincipals = <i32>r.u32("maxPrincipals", 100, 1, 10000);
  c.observeClientPolicy = r.oneOf("clientSecurityPolicy", "unknown", ["unknown", "observed"]) == "observed";
  checkIstioKeys(r, c);
  r.done();
  return r.error === null ? c : null;
}
