-- wrk script: probe health reports, each unique on (hub, source, observedAt): eight sources per
-- wrk thread, observedAt advancing one millisecond per report from ten minutes ago.
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

local counter = 0
local base = 0
local token = os.getenv("STANDBY_API_TOKEN") or "bench-api-token-01"

function init(args)
  base = (os.time() - 600) * 1000
end

local function iso(ms)
  local seconds = math.floor(ms / 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", seconds) .. string.format(".%03dZ", ms % 1000)
end

function request()
  counter = counter + 1
  local hub = (counter % 2 == 0) and "eastus-hub" or "westus-hub"
  local body = string.format(
    '{"hub":"%s","source":"bench-%d-%d","outcome":"success","observedAt":"%s","latencyMs":%d,"statusCode":200}',
    hub, tid, counter % 8, iso(base + counter), 40 + counter % 30)
  return wrk.format("POST", "/v1/health-reports",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
