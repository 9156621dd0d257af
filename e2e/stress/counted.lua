-- wrk script for the fleet latency run: the same allowed cache_cas call from one grant,
-- counting the answers that did not come from the static upstream (a denial would be fast
-- and still HTTP 200, so status alone proves nothing).
-- Usage: wrk -s counted.lua URL
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "Bearer bench"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cache_cas",'
  .. '"arguments":{"key":"k","value":"v","cas_unique":1,"expire":60}}}'

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) answered, not_upstream = 0, 0 end
function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 or not body:find('"text":"ok"', 1, true) then not_upstream = not_upstream + 1 end
end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("answered"); b = b + t:get("not_upstream") end
  io.write(string.format('RESULT {"answered": %d, "not_ok": %d}\n', a, b))
end
