-- wrk script: Azure Monitor common-schema metric alerts with unique alert ids, as an alert storm
-- on a hub's resources sends them. Every request is a new alert (no duplicates).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local template = [[{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":"/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.AlertsManagement/alerts/bench-%s-%d","alertRule":"hub-latency-%d","severity":"Sev3","signalType":"Metric","monitorCondition":"Fired","monitoringService":"Platform","alertTargetIDs":["/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/ai-eastus/providers/microsoft.machinelearningservices/workspaces/hub-eastus/onlineendpoints/chat-%d"],"configurationItems":["chat"],"originAlertId":"bench-%s-%d","firedDateTime":"2026-11-28T10:00:00.1234567Z","description":"Request latency above threshold","essentialsVersion":"1.0","alertContextVersion":"1.0"},"alertContext":{"properties":null,"conditionType":"SingleResourceMultipleMetricCriteria","condition":{"windowSize":"PT5M","allOf":[{"metricName":"RequestLatency","metricNamespace":"Microsoft.MachineLearningServices/workspaces/onlineEndpoints","operator":"GreaterThan","threshold":"2000","timeAggregation":"Average","dimensions":[{"name":"deployment","value":"blue"}],"metricValue":2411.5}],"windowStartTime":"2026-11-28T09:55:00.000Z","windowEndTime":"2026-11-28T10:00:00.000Z"}}}}]]

local counter = 0
-- BENCH_REPEAT=N: each wrk thread re-sends the same N alerts in turn (duplicates, as Azure's
-- retries and re-notifications are) instead of a new alert per request.
local repeat_every = tonumber(os.getenv("BENCH_REPEAT") or "0") or 0
local prefix = ""
local token = os.getenv("STANDBY_WEBHOOK_TOKEN") or "bench-webhook-token"
-- BENCH_PATH sends the same requests elsewhere: bench.sh measures the HTTP floor with a route that
-- does not exist (same bytes in and a small answer out, nothing parsed or stored).
local path = os.getenv("BENCH_PATH") or "/webhooks/azure-monitor"

function init(args)
  math.randomseed(os.time() + tid)
  -- BENCH_PREFIX keeps the ids of several wrk processes started in the same second apart.
  prefix = string.format("%s%d-%d", os.getenv("BENCH_PREFIX") or "", tid, math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local n = counter
  if repeat_every > 0 then n = (counter - 1) % repeat_every + 1 end
  local body = string.format(template, prefix, n, n % 50, n % 20, prefix, n)
  return wrk.format("POST", path .. "?token=" .. token,
    { ["Content-Type"] = "application/json" }, body)
end
