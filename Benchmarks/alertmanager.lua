-- wrk script: one new alert per request to Prometheus Alertmanager's /api/v2/alerts, the peer
-- Standby's durable ingest is compared with (Benchmarks/alertmanager.sh).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local template = [==[[{"labels":{"alertname":"HubLatency","severity":"warning","instance":"hub-eastus","endpoint":"chat-%d","bench":"%s-%d"},"annotations":{"description":"Request latency above threshold","summary":"RequestLatency 2411.5 > 2000"},"startsAt":"2026-11-28T10:00:00.123Z","generatorURL":"https://portal.azure.com/#alert/bench-%s-%d"}]]==]

local counter = 0
local prefix = ""

function init(args)
  math.randomseed(os.time() + tid)
  prefix = string.format("%d-%d", tid, math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local body = string.format(template, counter % 20, prefix, counter, prefix, counter)
  return wrk.format("POST", "/api/v2/alerts", { ["Content-Type"] = "application/json" }, body)
end
