-- Shared by the limit scripts (prepended to each). Counter kinds:
--   r  requests in a sliding window: ZSET member = request id, score = ms
--   s  rolling spend: ZSET member = '<id>:<micro-USD>', score = ms, plus a running sum in
--      '<key>:sum' (so a check never re-sums the window; each entry is subtracted once when
--      it leaves the window)
--   c  sessions: ZSET member = session id, score = last seen ms
--   p  spend of a calendar period: STRING (the key names the period)
--   t  total spend: STRING
-- Amounts are integers (micro-USD), exact in Lua numbers up to 2^53.

-- Integer-valued numbers as plain digits (never exponent notation) for Redis arguments.
local function int(x)
  return string.format('%d', x)
end

local function trim_rolling(key, cutoff)
  cutoff = int(cutoff)
  local old = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff)
  if #old > 0 then
    local gone = 0
    for _, m in ipairs(old) do
      gone = gone + (tonumber(string.match(m, ':(-?%d+)$')) or 0)
    end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    if gone ~= 0 then
      redis.call('DECRBY', key .. ':sum', int(gone))
    end
  end
  if redis.call('ZCARD', key) == 0 then
    redis.call('DEL', key .. ':sum')
    return 0
  end
  return tonumber(redis.call('GET', key .. ':sum') or '0') or 0
end

-- Current value of counter `key` of `kind` at `now` (sessions: other than `member`).
local function current(key, kind, param, now, member)
  if kind == 'r' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - param))
    return redis.call('ZCARD', key)
  elseif kind == 's' then
    return trim_rolling(key, now - param)
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - param))
    local n = redis.call('ZCARD', key)
    if member ~= '' and redis.call('ZSCORE', key, member) then
      n = n - 1
    end
    return n
  else
    return tonumber(redis.call('GET', key) or '0') or 0
  end
end

local function oldest(key, kind)
  if kind == 'r' or kind == 's' or kind == 'c' then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then
      return tonumber(first[2])
    end
  end
  return -1
end
