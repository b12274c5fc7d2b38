/** Body and trailer callbacks: re-export these only from filters that act on bodies or trailers. */
import { FilterDataStatus, FilterTrailersStatus } from "./abi/types";
import { streamContext } from "./registry";

export function proxy_on_request_body(id: u32, size: u32, endOfStream: bool): u32 {
  const s = streamContext(id);
  return s !== null ? s.onRequestBody(size, endOfStream) : FilterDataStatus.Continue;
}

export function proxy_on_request_trailers(id: u32, n: u32): u32 {
  const s = streamContext(id);
  return s !== null ? s.onRequestTrailers(n) : FilterTrailersStatus.Continue;
}

export function proxy_on_response_body(id: u32, size: u32, endOfStream: bool): u32 {
  const s = streamContext(id);
  return s !== null ? s.onResponseBody(size, endOfStream) : FilterDataStatus.Continue;
}

export function proxy_on_response_trailers(id: u32, n: u32): u32 {
  const s = streamContext(id);
  return s !== null ? s.onResponseTrailers(n) : FilterTrailersStatus.Continue;
}
