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
