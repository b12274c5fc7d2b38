/** The response-headers callback: re-export it only from filters whose stages act on response headers. */
import { FilterHeadersStatus } from "./abi/types";
import { streamContext } from "./registry";

export function proxy_on_response_headers(id: u32, numHeaders: u32, endOfStream: bool): u32 {
  const s = streamContext(id);
  return s !== null ? s.onResponseHeaders(numHeaders, endOfStream) : FilterHeadersStatus.Continue;
}
