-- The outlier breaker's closed path as an Envoy Lua filter, for `npm run bench` only: each request reads its
-- destination's state (answering 503 while open), each response counts its outcome; a run of consecutive 5xx reaching
-- the threshold opens it. Lua state is per worker (Envoy has no cross-worker store for Lua): with one worker, as the
-- bench runs, this table is what every request reads.
local THRESHOLD = 5
local state = {}

local function record(dest)
  local r = state[dest]
  if r == nil then
    r = { open = false, consecutive = 0, ok = 0, failed = 0 }
    state[dest] = r
  end
  return r
end

function envoy_on_request(h)
  local dest = h:headers():get(":authority") or ""
  if record(dest).open then
    h:respond({ [":status"] = "503", ["x-breaker-state"] = "open" }, "upstream circuit open\n")
    return
  end
  h:streamInfo():dynamicMetadata():set("bench", "destination", dest)
end

function envoy_on_response(h)
  local m = h:streamInfo():dynamicMetadata():get("bench")
  if m == nil then return end
  local r = record(m.destination)
  if string.sub(h:headers():get(":status") or "", 1, 1) == "5" then
    r.failed = r.failed + 1
    r.consecutive = r.consecutive + 1
    if r.consecutive >= THRESHOLD then r.open = true end
  else
    r.ok = r.ok + 1
    r.consecutive = 0
  end
end
