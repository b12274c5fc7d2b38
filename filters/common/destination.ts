/**
 * Which destination a request is for: the key every per-service filter groups by (config `destinationKey`). Names a
 * client writes (authority, header) are normalised, so every spelling of one host is one destination; cluster names
 * are the operator's and kept as they are.
 */
import { Str } from "../../assembly/host";
import { StreamView, stripPort, H_AUTHORITY } from "../../assembly/stream";
import { ConfigReader } from "../../assembly/config";
import { asciiLower } from "../../assembly/text";

export enum DestinationKind {
  Authority = 0,
  Cluster = 1,
  Header = 2,
}

export const DESTINATION_KINDS: string[] = ["authority", "cluster", "header"];

/** How to find the destination of a request; parsed from `destinationKey` / `destinationHeader`. */
export class Destination {
  constructor(public kind: DestinationKind, public header: Str | null) {}

  /** Reads `destinationKey` (authority | cluster | header; `byDefault` when absent) and, for header, `destinationHeader`. */
  static read(r: ConfigReader, byDefault: string = "authority"): Destination {
    const kind = r.oneOf("destinationKey", byDefault, DESTINATION_KINDS);
    const header = r.string("destinationHeader", "");
    if (kind == "header") {
      if (header.length == 0) r.fail("destinationHeader", "required when destinationKey is \"header\"");
      return new Destination(DestinationKind.Header, new Str(asciiLower(header)));
    }
    return new Destination(kind == "cluster" ? DestinationKind.Cluster : DestinationKind.Authority, null);
  }

  /** The destination of this request ("" when unknown, e.g. no route or no header). */
  of(view: StreamView): string {
    if (this.kind == DestinationKind.Cluster) return view.clusterName();
    const v = this.kind == DestinationKind.Authority ? view.requestHeader(H_AUTHORITY) : view.requestHeader(changetype<Str>(this.header));
    return v !== null ? normalizeName(v) : "";
  }

  /** The destination at completion: as `of`, but the cluster the request finally went to. */
  atCompletion(view: StreamView): string {
    return this.kind == DestinationKind.Cluster ? view.finalClusterName() : this.of(view);
  }

  /** True when the key is the routed cluster itself (then an empty key already means "no route"). */
  get byCluster(): bool {
    return this.kind == DestinationKind.Cluster;
  }
}

/**
 * One spelling per host: ASCII lower case, no port, no trailing dot (`Checkout.EXAMPLE.com.:8080` ->
 * `checkout.example.com`). Returns `name` itself when it is already normal (the common case allocates nothing).
 */
export function normalizeName(name: string): string {
  let normal = true;
  const n = name.length;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c == 0x3a) { normal = false; break; } // upper case, ':'
  }
  if (normal && (n == 0 || name.charCodeAt(n - 1) != 0x2e)) return name;
  let s = stripPort(name);
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) == 0x2e) end--; // trailing dots
  if (end < s.length) s = s.substring(0, end);
  return asciiLower(s);
}
