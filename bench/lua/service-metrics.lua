-- service-metrics' core logic as an Envoy Lua filter, for `npm run bench` only: one request counted per destination
-- (:authority) and its latency put in a histogram. Lua has no Envoy stats API and its state is per worker, so both live
-- in this worker's tables; the request's start travels to the response in the stream's dynamic metadata.
local BOUNDS_MS = { 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 }
local requests = {}
local histograms = {}

function envoy_on_request(h)
  local meta = h:streamInfo():dynamicMetadata()
  meta:set("bench", "destination", h:headers():get(":authority") or "")
  meta:set("bench", "start", h:timestamp())
end

function envoy_on_response(h)
  local m = h:streamInfo():dynamicMetadata():get("bench")
  if m == nil then return end
  local dest = m.destination
  requests[dest] = (requests[dest] or 0) + 1
  local hist = histograms[dest]
  if hist == nil then
    hist = {}
    for i = 1, #BOUNDS_MS + 1 do hist[i] = 0 end
    histograms[dest] = hist
  end
  local ms = h:timestamp() - m.start
  local i = 1
  while i <= #BOUNDS_MS and ms > BOUNDS_MS[i] do i = i + 1 end
  hist[i] = hist[i] + 1
end
