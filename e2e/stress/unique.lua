-- wrk script for the memory-under-attack run: every request carries values the filter has
-- never seen. MODE "grants": a cache_cas call with a new grant (Authorization) and a new
-- session (Mcp-Session-Id); MODE "names": a call to a new, unknown tool name. Values stay
-- unique across runs through RUN (a run number). wrk runs for its duration (a thread cannot
-- end the run early), so the caller repeats short runs until it has sent enough.
-- Usage: wrk -s unique.lua URL -- MODE RUN
local next_id = 1
local threads = {}

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  run = args[2]
  sent, answered, not_ok = 0, 0, 0
end

function request()
  sent = sent + 1
  local id = run .. "-" .. tid .. "-" .. sent
  local headers = {["Content-Type"] = "application/json",
                   ["Accept"] = "application/json, text/event-stream"}
  local body
  if mode == "grants" then
    headers["Authorization"] = "Bearer grant-" .. id
    headers["Mcp-Session-Id"] = "session-" .. id
    body = '{"jsonrpc":"2.0","id":' .. sent .. ',"method":"tools/call","params":{"name":"cache_cas",'
      .. '"arguments":{"key":"k","value":"v","cas_unique":1,"expire":60}}}'
  else
    headers["Authorization"] = "Bearer attacker"
    body = '{"jsonrpc":"2.0","id":' .. sent .. ',"method":"tools/call","params":{"name":"unknown_'
      .. id .. '","arguments":{}}}'
  end
  return wrk.format("POST", "/mcp", headers, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then not_ok = not_ok + 1 end
end

function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("answered")
    b = b + t:get("not_ok")
  end
  io.write(string.format('RESULT {"answered": %d, "not_ok": %d}\n', a, b))
end
