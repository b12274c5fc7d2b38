/**
 * Host-free parts of the service-metrics filter: the bounded label values (response code, flags, destination).
 */
import { ResponseFlag } from "../../assembly/stream";

/** `2xx`, `4xx`, `5xx`...; `0` when no response was produced. */
export function codeClass(code: i64): string {
  if (code < 100 || code > 599) return "0";
  return ((<i32>code) / 100).toString() + "xx";
}

/**
 * The codes reported as themselves; any other code in 100-599 is reported as its class (`5xx`), anything outside as
 * `other`, so an upstream reflecting arbitrary codes adds at most 6 values per destination and flag.
 */
const KNOWN_CODES: i32[] = [
  100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308,
  400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 425, 426, 428, 429, 431, 451,
  500, 501, 502, 503, 504, 505,
];

/** Key of a code's label: the code itself when known, 1-5 for its class, 0 for no response, CODE_OTHER for the rest. */
export function codeKey(code: i64): i32 {
  if (code == 0) return 0;
  if (code < 100 || code > 599) return CODE_OTHER;
  const c = <i32>code;
  return KNOWN_CODES.includes(c) ? c : c / 100;
}

// @ts-ignore: decorator
@inline export const CODE_OTHER: i32 = 6;

/** The `response_code` label of a codeKey: "200", "5xx", "0" (no response) or "other". */
export function codeLabel(key: i32): string {
  if (key >= 100) return key.toString();
  if (key >= 1 && key <= 5) return key.toString() + "xx";
  return key == 0 ? "0" : "other";
}

// Envoy's short names, most telling first; one label value per request.
const FLAG_BITS: i64[] = [
  ResponseFlag.UPSTREAM_TIMEOUT, ResponseFlag.UPSTREAM_RESET, ResponseFlag.UPSTREAM_CONNECT_FAILURE,
  ResponseFlag.UPSTREAM_CONNECT_TERMINATION, ResponseFlag.UPSTREAM_OVERFLOW, ResponseFlag.UPSTREAM_HEALTHY_NONE,
  ResponseFlag.NO_ROUTE, ResponseFlag.LOCAL_RESET, ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION,
  ResponseFlag.UPSTREAM_RETRY_LIMIT, ResponseFlag.DOWNSTREAM_REMOTE_RESET,
];
const FLAG_NAMES: string[] = ["UT", "UR", "UF", "UC", "UO", "UH", "NR", "LR", "DC", "URX", "DR"];

/** Index into FLAG_LABELS of the most telling response flag; 0 for none ("-"), last for any other flag. */
export function flagIndex(flags: i64): i32 {
  if (flags == 0) return 0;
  for (let i = 0; i < FLAG_BITS.length; i++) {
    if ((flags & unchecked(FLAG_BITS[i])) != 0) return i + 1;
  }
  return FLAG_BITS.length + 1;
}

/** Label value for each flagIndex. */
export const FLAG_LABELS: string[] = ["-"].concat(FLAG_NAMES).concat(["other"]);

/** The label value that stands for every destination beyond the cap. */
export const OTHER = "other";

/** The label value of every request no route sent anywhere (e.g. a made-up Host answered 404 by Envoy). */
export const UNROUTED = "unrouted";

// ---------------------------------------------------------------- Istio naming (label values as Istio's own telemetry writes them)

/** Istio's `reporter`: `destination` for the server-side proxy, `source` for the client side. */
export function istioReporter(inbound: bool): string {
  return inbound ? "destination" : "source";
}

/** `connection_security_policy` values: Istio says `unknown` on the client side, where it does not judge the hop. */
export const POLICY_MUTUAL_TLS = "mutual_tls";
export const POLICY_NONE = "none";
export const POLICY_UNKNOWN = "unknown";

/**
 * `connection_security_policy`: mutual TLS when both ends of the connection presented a URI SAN, as Istio decides on the
 * server side; on the client side Istio says `unknown`, unless `observed` asks to judge the upstream connection the same way.
 */
export function securityPolicy(inbound: bool, observed: bool, peerSan: string, localSan: string): string {
  if (!inbound && !observed) return POLICY_UNKNOWN;
  return peerSan.length > 0 && localSan.length > 0 ? POLICY_MUTUAL_TLS : POLICY_NONE;
}

/** The namespace of a SPIFFE identity (`spiffe://<trust domain>/ns/<ns>/sa/<sa>`), "" when it has none. */
export function principalNamespace(principal: string): string {
  const at = principal.indexOf("/ns/");
  if (at < 0) return "";
  const start = at + 4;
  const end = principal.indexOf("/", start);
  return end < 0 ? principal.substring(start) : principal.substring(start, end);
}

/** `destination_service`, `destination_service_name` and `destination_service_namespace` of one admitted name. */
export class ServiceNames {
  constructor(readonly full: string, readonly name: string, readonly namespace: string) {}
}

/**
 * Istio's three service labels from the filter's destination label: a short name is completed with the configured
 * namespace and domain (`reviews` -> `reviews.default.svc.cluster.local`); a dotted name is taken as the full name, its
 * namespace being the second label of a `<name>.<ns>.svc.<domain>` form. The overflow values stay as they are.
 */
export function istioServiceNames(label: string, namespace: string, domain: string): ServiceNames {
  if (label == OTHER || label == UNROUTED || label == "unknown") return new ServiceNames(label, label, "unknown");
  const dot = label.indexOf(".");
  if (dot < 0) return new ServiceNames(label + "." + namespace + ".svc." + domain, label, namespace);
  const second = label.indexOf(".", dot + 1);
  const ns = second > 0 && label.substring(second + 1).startsWith("svc") ? label.substring(dot + 1, second) : namespace;
  return new ServiceNames(label, label.substring(0, dot), ns);
}

/** gRPC status codes are 0-16; anything else a peer sends is one value. */
// @ts-ignore: decorator
@inline const GRPC_MAX_STATUS: i64 = 16;
/** Index of the grpc_response_status label: 0 for a plain HTTP request or no status (""), 1-17 for status 0-16, 18 for any other. */
export function grpcStatusIndex(grpc: bool, status: i64): i32 {
  if (!grpc || status < 0) return 0;
  return status >= 0 && status <= GRPC_MAX_STATUS ? <i32>status + 1 : <i32>GRPC_MAX_STATUS + 2;
}

/** The label of a grpcStatusIndex. */
export function grpcStatusLabel(index: i32): string {
  if (index == 0) return "";
  return index <= <i32>GRPC_MAX_STATUS + 1 ? (index - 1).toString() : OTHER;
}

/** A gRPC request by its content type (`application/grpc`, `application/grpc+proto`...), as Envoy tells them. */
export function isGrpc(contentType: string | null): bool {
  return contentType !== null && contentType.startsWith("application/grpc");
}
