/** Which destination a request is for: the key every per-service filter groups by (config `destinationKey`). */
import { Str } from "../../assembly/host";
import { StreamView } from "../../assembly/stream";
import { ConfigReader } from "../../assembly/config";

export enum DestinationKind {
  Authority = 0,
  Cluster = 1,
  Header = 2,
}

export const DESTINATION_KINDS: string[] = ["authority", "cluster", "header"];

/** How to find the destination of a request; parsed from `destinationKey` / `destinationHeader`. */
export class Destination {
  constructor(public kind: DestinationKind, public header: Str | null) {}

  /** Reads `destinationKey` (authority | cluster | header) and, for header, `destinationHeader`. */
  static read(r: ConfigReader): Destination {
    const kind = r.oneOf("destinationKey", "authority", DESTINATION_KINDS);
    const header = r.string("destinationHeader", "");
    if (kind == "header") {
      if (header.length == 0) r.fail("destinationHeader", "required when destinationKey is \"header\"");
      return new Destination(DestinationKind.Header, new Str(header.toLowerCase()));
    }
    return new Destination(kind == "cluster" ? DestinationKind.Cluster : DestinationKind.Authority, null);
  }

  /** The destination of this request ("" when unknown, e.g. no route or no header). */
  of(view: StreamView): string {
    if (this.kind == DestinationKind.Authority) return view.host();
    if (this.kind == DestinationKind.Cluster) return view.clusterName();
    const v = view.requestHeader(changetype<Str>(this.header));
    return v !== null ? v : "";
  }
}
