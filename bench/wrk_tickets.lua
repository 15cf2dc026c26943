-- wrk script for benchmark 4: POST one ticket per request, each with a unique external_id
-- (thread number + counter), and print a one-line JSON summary that bench/intake.py reads.
--   wrk -t2 -c32 -d10s -s bench/wrk_tickets.lua http://127.0.0.1:8000/tickets -- PREFIX TOKEN
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "wrk"
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] and args[2] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[2]
  end
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"external_id":"%s-%d-%d","title":"Checkout fails with error 500",' ..
    '"description":"Since this morning every payment attempt ends with an error page."}',
    prefix, tid, counter)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
