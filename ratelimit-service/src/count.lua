-- Counts one ShouldRateLimit request atomically: either every descriptor fits and all are
-- counted, or nothing is counted. The window comes from Redis' own clock, so replicas of
-- the service agree on it whatever their clocks say.
--
-- KEYS[i]: the descriptor's base key. ARGV: per descriptor, limit (-1: none), hits,
-- window seconds. Returns {overall, code1, remaining1, reset1, code2, ...} with codes
-- 1 (OK) and 2 (OVER_LIMIT).
local t = redis.call('TIME')
local now = tonumber(t[1])
local n = #KEYS
--
-- Descriptors with one key add up: each is checked against the count from before the
-- request plus the hits of the same key earlier in it (a batch of calls is not admitted
-- whole against a limit it exceeds). A descriptor needs room for one hit even when it adds
-- none.
local keys, limits, hits, resets, counts, codes = {}, {}, {}, {}, {}, {}
local pending = {}
local over = false
for i = 1, n do
  local limit = tonumber(ARGV[(i - 1) * 3 + 1])
  local hit = tonumber(ARGV[(i - 1) * 3 + 2])
  local w = tonumber(ARGV[(i - 1) * 3 + 3])
  local start = now - (now % w)
  keys[i] = KEYS[i] .. '|' .. start
  limits[i], hits[i], resets[i] = limit, hit, start + w - now
  if pending[keys[i]] == nil then
    pending[keys[i]] = tonumber(redis.call('GET', keys[i]) or '0')
  end
  counts[i] = pending[keys[i]]
  codes[i] = 1
  if limit >= 0 and counts[i] + math.max(hit, 1) > limit then
    codes[i] = 2
    over = true
  end
  pending[keys[i]] = counts[i] + hit
end
local out = { over and 2 or 1 }
for i = 1, n do
  local code = codes[i]
  if not over then
    counts[i] = redis.call('INCRBY', keys[i], hits[i])
    redis.call('EXPIRE', keys[i], resets[i] + 5)
  end
  local remaining = 0
  if limits[i] >= 0 and limits[i] > counts[i] then
    remaining = limits[i] - counts[i]
  end
  out[#out + 1] = code
  out[#out + 1] = remaining
  out[#out + 1] = resets[i]
end
return out
