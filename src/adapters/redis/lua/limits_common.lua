-- Shared by the limit scripts (prepended to each). The check, read and record scripts take
-- their parameters as one MessagePack array in ARGV[1] (`cmsgpack.unpack`: numbers arrive as
-- Lua numbers, no `tonumber`; see adapters/redis/pack.rs). Arguments Redis must read as
-- integers (fields, increments, expiries) are formatted with `int`, never passed as Lua
-- numbers, whose formatting differs between Redis versions.
-- Counter kinds and their two parameters:
--   r  requests in a sliding window: HASH field = bucket index, value = requests (window, bucket)
--   s  rolling spend: HASH field = bucket index, value = micro-USD (window, bucket)
--   c  sessions: ZSET member = session id, score = last seen ms (session TTL, member cap)
--   p  spend of a calendar period: STRING, the key names the period (period end ms, -)
--   t  total spend: STRING (-, -)
-- Buckets mirror domain::windows::Ring: bucket i holds [i*bucket, (i+1)*bucket) and counts
-- while i >= floor((now - window) / bucket), i.e. until (i+1)*bucket + window. A ring hash
-- also keeps two bookkeeping fields: 't', the sum of its bucket fields, and 'lo', a bucket
-- index no bucket field is below. Reading a ring is then O(1): only the buckets between 'lo'
-- and the first live one are looked at (and deleted), at most one per bucket width of time
-- on a busy ring, so a check never walks the ~100 buckets of a window. A hash holds at most
-- window/bucket + 1 live bucket fields (<= 101) plus the two.
-- Amounts are integers (micro-USD), exact in Lua numbers up to 2^53.

-- Current values of the plain counters (kinds 'p' and 't') among KEYS, read with one MGET:
-- KEYS index -> number. `kind_of(i)` names counter i's kind.
local function plain_values(kind_of)
  local at, names = {}, {}
  for i = 1, #KEYS do
    local kind = kind_of(i)
    if kind == 'p' or kind == 't' then
      at[#at + 1] = i
      names[#names + 1] = KEYS[i]
    end
  end
  local out = {}
  if #names > 0 then
    local values = redis.call('MGET', unpack(names))
    for j = 1, #at do
      out[at[j]] = tonumber(values[j] or '0') or 0
    end
  end
  return out
end

-- Integer-valued numbers as plain digits (never exponent notation) for Redis arguments.
local function int(x)
  return string.format('%d', x)
end

local function first_live(now, window, bucket)
  return math.floor((now - window) / bucket)
end

-- Recounts a ring from all its fields: drops the buckets below `first`, rewrites 't' and
-- 'lo'. For hashes written before the bookkeeping fields existed, and for a 'lo' so far behind
-- that walking up from it would cost more than reading the hash. `skip` (optional) names a
-- live bucket field left out of the sum (one an add just created, counted by its caller).
-- Returns t, lo (0, nil when the key does not exist: nothing is created).
local function ring_recount(key, first, skip)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return 0, nil
  end
  local sum, stale = 0, {}
  for j = 1, #flat, 2 do
    local idx = tonumber(flat[j])
    if idx ~= nil then
      if idx < first then
        stale[#stale + 1] = flat[j]
      elseif flat[j] ~= skip then
        sum = sum + tonumber(flat[j + 1])
      end
    end
  end
  if #stale > 0 then
    redis.call('HDEL', key, unpack(stale))
  end
  redis.call('HSET', key, 't', int(sum), 'lo', int(first))
  return sum, first
end

-- Drops the buckets of a ring below `first` and returns its live sum and its 'lo' (0, nil
-- when the key does not exist); `skip` as in ring_recount.
local function ring_prune(key, first, window, bucket, skip)
  local meta = redis.call('HMGET', key, 't', 'lo')
  local t, lo = tonumber(meta[1]), tonumber(meta[2])
  if t == nil or lo == nil then
    return ring_recount(key, first, skip)
  end
  if lo >= first then
    return t, lo
  end
  if first - lo > math.ceil(window / bucket) + 2 then
    return ring_recount(key, first, skip)
  end
  local names = {}
  for i = lo, first - 1 do
    names[#names + 1] = int(i)
  end
  local values = redis.call('HMGET', key, unpack(names))
  local gone, present = 0, {}
  for j = 1, #names do
    if values[j] then
      gone = gone + tonumber(values[j])
      present[#present + 1] = names[j]
    end
  end
  if #present > 0 then
    redis.call('HDEL', key, unpack(present))
  end
  t = t - gone
  redis.call('HSET', key, 't', int(t), 'lo', int(first))
  return t, first
end

-- Sum of the live buckets of a ring at `now` (stale ones are deleted).
local function ring_sum(key, now, window, bucket)
  local t = ring_prune(key, first_live(now, window, bucket), window, bucket)
  return t
end

-- The oldest live bucket index of a ring at `now`, or nil when it has none; only asked for
-- when a check is refused (it reads the whole hash).
local function ring_oldest(key, now, window, bucket)
  local first = first_live(now, window, bucket)
  local flat = redis.call('HGETALL', key)
  local oldest = nil
  for j = 1, #flat, 2 do
    local idx = tonumber(flat[j])
    if idx ~= nil and idx >= first and (oldest == nil or idx < oldest) then
      oldest = idx
    end
  end
  return oldest
end

-- Adds `amount` to the bucket of `at` (ignored when that bucket already left the window at
-- `now`), keeping 't' and 'lo' true; expires the key when idle. Adding to a bucket that
-- exists is two calls: that bucket is live, so 't' counts it and 'lo' is at or below it.
-- Only a new bucket field (once per bucket width of time on a busy ring) also drops the stale
-- buckets (which keeps the hash within window/bucket + 1 bucket fields) and restarts the
-- idle expiry. `amount_s` (optional) is `amount` already in decimal digits.
local function ring_add(key, at, now, amount, window, bucket, amount_s)
  local idx = math.floor(at / bucket)
  local first = first_live(now, window, bucket)
  if idx < first then
    return
  end
  amount_s = amount_s or int(amount)
  local field = int(idx)
  local now_in_bucket = redis.call('HINCRBY', key, field, amount_s)
  if now_in_bucket ~= amount then
    redis.call('HINCRBY', key, 't', amount_s)
    return
  end
  local t, lo = ring_prune(key, first, window, bucket, field)
  if lo == nil or idx < lo then
    lo = idx
  end
  redis.call('HSET', key, 't', int(t + amount), 'lo', int(lo))
  -- Window + bucket from now outlives every bucket stored.
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

-- Current value of counter `key` of `kind` at `now` (sessions: other than `member`); `plain`
-- is a plain counter's value when already read (see plain_values).
local function current(key, kind, p1, p2, now, member, plain)
  if kind == 'r' or kind == 's' then
    return ring_sum(key, now, p1, p2)
  elseif kind == 'c' then
    -- Numbers go in digits (`int`: cheaper for Redis to parse than Lua's float notation) and
    -- membership is asked with ZRANK (an integer reply, where ZSCORE's is a formatted float).
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - p1))
    local n = redis.call('ZCARD', key)
    if member ~= '' and redis.call('ZRANK', key, member) then
      n = n - 1
    end
    return n
  elseif plain ~= nil then
    return plain
  else
    return tonumber(redis.call('GET', key) or '0') or 0
  end
end

-- The instant the oldest entry of a refused counter counts as: a ring's oldest live bucket
-- end, a session counter's least recently seen member; -1 when none or not windowed.
local function oldest_of(key, kind, p1, p2, now)
  if kind == 'r' or kind == 's' then
    local idx = ring_oldest(key, now, p1, p2)
    if idx == nil then
      return -1
    end
    return (idx + 1) * p2
  elseif kind == 'c' then
    return session_oldest(key)
  end
  return -1
end
