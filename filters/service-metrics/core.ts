/**
 * Host-free parts of the service-metrics filter: outcome classification and the bounded label registry.
 */
import { ResponseFlag } from "../../assembly/stream";

/** `2xx`, `4xx`, `5xx`...; `0` when no response was produced. */
export function codeClass(code: i64): string {
  if (code < 100 || code > 599) return "0";
  return ((<i32>code) / 100).toString() + "xx";
}

/** Clamps a response code to the bounded label set: 100-599, else 0. */
@inline export function boundedCode(code: i64): i32 {
  return code >= 100 && code <= 599 ? <i32>code : 0;
}

// Envoy's short names, most telling first; one label value per request.
const FLAG_BITS: i64[] = [
  ResponseFlag.UPSTREAM_TIMEOUT, ResponseFlag.UPSTREAM_RESET, ResponseFlag.UPSTREAM_CONNECT_FAILURE,
  ResponseFlag.UPSTREAM_CONNECT_TERMINATION, ResponseFlag.UPSTREAM_OVERFLOW, ResponseFlag.UPSTREAM_HEALTHY_NONE,
  ResponseFlag.NO_ROUTE, ResponseFlag.LOCAL_RESET, ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION,
  ResponseFlag.UPSTREAM_RETRY_LIMIT,
];
const FLAG_NAMES: string[] = ["UT", "UR", "UF", "UC", "UO", "UH", "NR", "LR", "DC", "URX"];

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

/** True when Envoy's flags say the upstream failed (reset, connect failure, timeout, overflow, no healthy host). */
@inline export function isUpstreamFailure(flags: i64): bool {
  return (flags & ResponseFlag.ANY_UPSTREAM_FAILURE) != 0;
}

/** The label value that stands for every destination beyond the cap. */
export const OTHER = "other";
