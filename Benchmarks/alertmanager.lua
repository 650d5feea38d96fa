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
-- BENCH_REPEAT=N: each wrk thread re-sends the same N alerts in turn instead of a new one per request.
local repeat_every = tonumber(os.getenv("BENCH_REPEAT") or "0") or 0
local prefix = ""

function init(args)
  math.randomseed(os.time() + tid)
  prefix = string.format("%d-%d", tid, math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local n = counter
  if repeat_every > 0 then n = (counter - 1) % repeat_every + 1 end
  local body = string.format(template, n % 20, prefix, n, prefix, n)
  return wrk.format("POST", "/api/v2/alerts", { ["Content-Type"] = "application/json" }, body)
end
