-- A hand-written MCP policy filter for envoy.filters.http.lua: what a user would write
-- instead of Toolgate. LuaJIT in Envoy has no JSON module, so the body is read one of two
-- ways, chosen by READER: "json" (the pure-Lua decoder below) or "string" (Lua patterns
-- on the raw body, the quick way). bench/configs.py fills in READER and POLICY.
--
-- POLICY = { default = "allow"|"deny",
--            tools = { <name> = { deny = true } | { limit = N } | { deny_key = "lua pattern" } } }
-- Limits count per grant (the Authorization header) per calendar minute, in this worker's
-- Lua state: there is no sharing between workers.

local READER = "@READER@"
local POLICY = @POLICY@

local byte, sub, find, char, floor = string.byte, string.sub, string.find, string.char, math.floor
local NULL = {}

local function utf8(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64,
    0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

local ESCAPES = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
  [110] = "\n", [114] = "\r", [116] = "\t" }

-- A small recursive-descent JSON decoder: objects become tables (the last duplicate key
-- wins, as in most servers), arrays become sequences, null is NULL. Errors raise.
local function decode(s)
  local pos = 1
  local value

  local function fail(what) error("json: " .. what .. " at byte " .. pos, 0) end
  local function skip() pos = find(s, "[^ \t\r\n]", pos) or (#s + 1) end

  local function str()
    pos = pos + 1
    local parts, n = {}, 0
    while true do
      local i = find(s, '["\\%c]', pos)
      if not i then fail("unterminated string") end
      if i > pos then n = n + 1; parts[n] = sub(s, pos, i - 1) end
      local c = byte(s, i)
      if c == 34 then pos = i + 1; return table.concat(parts) end
      if c ~= 92 then fail("control character in a string") end
      local e = byte(s, i + 1)
      if e == 117 then
        local hex = sub(s, i + 2, i + 5)
        if not find(hex, "^%x%x%x%x$") then fail("bad \\u escape") end
        local cp, advance = tonumber(hex, 16), 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local low = sub(s, i + 6, i + 11)
          if find(low, "^\\u[dD][c-fC-F]%x%x$") then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(sub(low, 3), 16) - 0xDC00)
            advance = 12
          end
        end
        n = n + 1; parts[n] = utf8(cp); pos = i + advance
      else
        local r = ESCAPES[e]
        if not r then fail("bad escape") end
        n = n + 1; parts[n] = r; pos = i + 2
      end
    end
  end

  local function object()
    pos = pos + 1
    local t = {}
    skip()
    if byte(s, pos) == 125 then pos = pos + 1; return t end
    while true do
      skip()
      if byte(s, pos) ~= 34 then fail("expected a key") end
      local k = str()
      skip()
      if byte(s, pos) ~= 58 then fail("expected ':'") end
      pos = pos + 1
      t[k] = value()
      skip()
      local c = byte(s, pos)
      pos = pos + 1
      if c == 125 then return t end
      if c ~= 44 then fail("expected ',' or '}'") end
    end
  end

  local function array()
    pos = pos + 1
    local t, n = {}, 0
    skip()
    if byte(s, pos) == 93 then pos = pos + 1; return t end
    while true do
      n = n + 1
      t[n] = value()
      skip()
      local c = byte(s, pos)
      pos = pos + 1
      if c == 93 then return t end
      if c ~= 44 then fail("expected ',' or ']'") end
    end
  end

  function value()
    skip()
    local c = byte(s, pos)
    if c == 123 then return object() end
    if c == 91 then return array() end
    if c == 34 then return str() end
    if sub(s, pos, pos + 3) == "true" then pos = pos + 4; return true end
    if sub(s, pos, pos + 4) == "false" then pos = pos + 5; return false end
    if sub(s, pos, pos + 3) == "null" then pos = pos + 4; return NULL end
    local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not a then fail("unexpected character") end
    local number = tonumber(sub(s, a, b))
    if not number then fail("bad number") end
    pos = b + 1
    return number
  end

  local v = value()
  skip()
  if pos <= #s then fail("trailing data") end
  return v
end

-- The call a body makes, as {method, name, key, id}, or nil and why it cannot be read.
local function read_json(raw)
  local ok, msg = pcall(decode, raw)
  if not ok then return nil, "the body is not JSON" end
  if type(msg) ~= "table" then return nil, "not a JSON-RPC request" end
  if msg[1] ~= nil then return nil, "batches are not supported" end
  local params = type(msg.params) == "table" and msg.params or {}
  local args = type(params.arguments) == "table" and params.arguments or {}
  return { method = msg.method, name = params.name, key = args.key, id = msg.id }
end

local function read_string(raw)
  return {
    method = raw:match('"method"%s*:%s*"([^"]*)"'),
    name = raw:match('"name"%s*:%s*"([^"]*)"'),
    key = raw:match('"key"%s*:%s*"([^"]*)"'),
  }
end

local counts, window = {}, -1

local function refuse(handle, id, message)
  local id_json = type(id) == "number" and tostring(id) or "null"
  handle:respond({ [":status"] = "200", ["content-type"] = "application/json" },
    '{"jsonrpc":"2.0","id":' .. id_json .. ',"result":{"isError":true,"content":[{"type":"text","text":"'
      .. message .. '"}]}}')
end

function envoy_on_request(handle)
  local headers = handle:headers()
  if headers:get(":method") ~= "POST" then return end
  local body = handle:body()
  local raw = body and body:getBytes(0, body:length()) or ""
  local call, why
  if READER == "json" then call, why = read_json(raw) else call = read_string(raw) end
  if not call then
    handle:respond({ [":status"] = "400", ["content-type"] = "application/json" },
      '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"' .. why .. '"}}')
    return
  end
  if call.method ~= "tools/call" then return end
  local rule = POLICY.tools[call.name]
  if rule == nil then
    if POLICY.default == "deny" then refuse(handle, call.id, "tool not allowed") end
    return
  end
  if rule.deny then return refuse(handle, call.id, "tool denied") end
  if rule.deny_key and type(call.key) == "string" and find(call.key, rule.deny_key) then
    return refuse(handle, call.id, "argument denied")
  end
  if rule.limit then
    local now = floor(os.time() / 60)
    if now ~= window then counts, window = {}, now end
    local grant = headers:get("authorization") or "-"
    local n = (counts[grant] or 0) + 1
    counts[grant] = n
    if n > rule.limit then return refuse(handle, call.id, "rate limited") end
  end
end
