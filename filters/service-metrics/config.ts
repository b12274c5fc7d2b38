/** service-metrics plugin configuration: a pure parser, bytes in, typed config or an error naming the field. */
import { ConfigReader } from "../../assembly/config";
import { Destination } from "../common/destination";
import { quoteJson } from "../../assembly/json";

export const FILTER_NAME = "service-metrics";

export enum Naming {
  /** `resilience_requests_total`, `resilience_request_duration_milliseconds`: never collides with Istio's own. */
  Resilience = 0,
  /** `istio_requests_total`, `istio_request_duration_milliseconds` with Istio's labels: its dashboards work unchanged. */
  Istio = 1,
}

export class ServiceMetricsConfig {
  destination: Destination = new Destination(0, null);
  reporter: string = "outbound";
  naming: Naming = Naming.Resilience;
  maxServices: i32 = 100;
  sourceWorkload: string = "unknown";
  sourceNamespace: string = "unknown";
  destinationWorkload: string = "unknown";
  destinationNamespace: string = "unknown";
}

/** Workload labels exist only in Istio naming: setting them under the filter's own naming would be silently ignored. */
const ISTIO_LABEL_KEYS: string[] = ["sourceWorkload", "sourceNamespace", "destinationWorkload", "destinationNamespace"];

function checkIstioLabels(r: ConfigReader, c: ServiceMetricsConfig): void {
  if (c.naming == Naming.Istio) return;
  for (let i = 0; i < ISTIO_LABEL_KEYS.length; i++) {
    const key = ISTIO_LABEL_KEYS[i];
    if (r.has(key)) r.fail(key, "is an Istio label, used only with " + quoteJson(r.prefix + "naming") + " \"istio\" (it is \"resilience\"); remove it or set naming");
  }
}

/** Parses the configuration; on error returns null and `r.error` names the field and quotes the value. */
export function parseConfig(r: ConfigReader): ServiceMetricsConfig | null {
  const c = new ServiceMetricsConfig();
  c.destination = Destination.read(r);
  c.reporter = r.oneOf("reporter", "outbound", ["outbound", "inbound"]);
  c.naming = r.oneOf("naming", "resilience", ["resilience", "istio"]) == "istio" ? Naming.Istio : Naming.Resilience;
  c.maxServices = <i32>r.u32("maxServices", 100, 1, 10000);
  c.sourceWorkload = r.string("sourceWorkload", "unknown");
  c.sourceNamespace = r.string("sourceNamespace", "unknown");
  c.destinationWorkload = r.string("destinationWorkload", "unknown");
  c.destinationNamespace = r.string("destinationNamespace", "unknown");
  checkIstioLabels(r, c);
  r.done();
  return r.error === null ? c : null;
}
