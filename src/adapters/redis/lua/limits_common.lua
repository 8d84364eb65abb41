-- Shared by the limit scripts (prepended to each). Counter kinds and their two parameters:
--   r  requests in a sliding window: HASH field = bucket index, value = requests (window, bucket)
--   s  rolling spend: HASH field = bucket index, value = micro-USD (window, bucket)
--   c  sessions: ZSET member = session id, score = last seen ms (session TTL, member cap)
--   p  spend of a calendar period: STRING, the key names the period (period end ms, -)
--   t  total spend: STRING (-, -)
-- Buckets mirror domain::windows::Ring: bucket i holds [i*bucket, (i+1)*bucket) and counts
-- while i >= floor((now - window) / bucket), i.e. until (i+1)*bucket + window. A hash holds at
-- most window/bucket + 1 live fields (<= 101); stale fields are deleted whenever it is summed.
-- Amounts are integers (micro-USD), exact in Lua numbers up to 2^53.

-- Integer-valued numbers as plain digits (never exponent notation) for Redis arguments.
local function int(x)
  return string.format('%d', x)
end

local function first_live(now, window, bucket)
  return math.floor((now - window) / bucket)
end

-- Sum of the live buckets of a ring at `now`, deleting the stale ones; also returns the oldest
-- live bucket index (or nil).
local function ring_sum(key, now, window, bucket)
  local first = first_live(now, window, bucket)
  local flat = redis.call('HGETALL', key)
  local sum, oldest, stale = 0, nil, {}
  for j = 1, #flat, 2 do
    local idx = tonumber(flat[j])
    if idx < first then
      stale[#stale + 1] = flat[j]
    else
      sum = sum + tonumber(flat[j + 1])
      if oldest == nil or idx < oldest then
        oldest = idx
      end
    end
  end
  if #stale > 0 then
    redis.call('HDEL', key, unpack(stale))
  end
  return sum, oldest
end

-- Adds `amount` to the bucket of `at` (ignored when that bucket already left the window at
-- `now`); trims when the hash holds more fields than a ring can; expires the key when idle.
local function ring_add(key, at, now, amount, window, bucket)
  local idx = math.floor(at / bucket)
  if idx < first_live(now, window, bucket) then
    return
  end
  redis.call('HINCRBY', key, int(idx), int(amount))
  if redis.call('HLEN', key) > math.ceil(window / bucket) + 1 then
    ring_sum(key, now, window, bucket)
  end
  redis.call('PEXPIRE', key, int(window + bucket))
end

-- When the oldest session of a session counter was last seen (-1 when empty); only asked for
-- when a check is refused.
local function session_oldest(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    return tonumber(first[2])
  end
  return -1
end

-- Current value of counter `key` of `kind` at `now` (sessions: other than `member`), and the
-- instant its oldest entry counts as (-1 when none, not windowed, or a session counter: see
-- session_oldest).
local function current(key, kind, p1, p2, now, member)
  if kind == 'r' or kind == 's' then
    local sum, oldest = ring_sum(key, now, p1, p2)
    if oldest == nil then
      return sum, -1
    end
    return sum, (oldest + 1) * p2
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - p1))
    local n = redis.call('ZCARD', key)
    if member ~= '' and redis.call('ZSCORE', key, member) then
      n = n - 1
    end
    return n, -1
  else
    return tonumber(redis.call('GET', key) or '0') or 0, -1
  end
end
