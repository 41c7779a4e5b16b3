-- mcp-policy-redis: the one script behind every store call (EVALSHA; one round trip).
--
-- Redis runs a script atomically, so a call's check-then-charge over all of its keys is
-- all-or-nothing. The arithmetic is the one of mcp_policy::store::window, to the millisecond.
--
-- ARGV[1] op: 'apply' | 'release' | 'approve'
-- ARGV[2] time: '' for the server clock (TIME), or the caller's time in ms
-- ARGV[3] with the caller's time: how much longer than their window keys live (ms)
--
-- apply:   KEYS = [approval key,] counter keys
--          ARGV[4] n charges, ARGV[5] '1' with an approval, ARGV[6] binding, ARGV[7] ttl ms,
--          then per charge: reset ('s' sliding | 'c' calendar), window ms, max, cost
--          -> {1, remaining (-1: no charges), time of charge 1, ..., time of charge n}
--           | {2, index of the refusing charge, retry after ms}
--           | {3}  (approval required; it is now pending)
-- release: KEYS = counter keys; ARGV[4] n, then per charge: reset, window ms, time, cost -> 1
-- approve: KEYS = [approval key] -> 1 recorded (or already recorded), 0 unknown or expired
--
-- Layout (every key starts with the store's hash tag, "{prefix}"):
--   sliding counter  list   at1, cost1, ..., atN, costN, used  (events oldest first, merged
--                           per millisecond; used = the sum of the costs)
--   calendar counter string "last:used" (last = the latest time it was charged at)
--   approval         hash   b = binding, s = '0' pending | '1' recorded, t = ttl ms,
--                           e = expiry time (in the clock the calls use)
-- Keys expire when their window (or the approval's TTL) has passed.
--
-- Numbers are Lua doubles: the client sends only integers below 2^52, so every sum here is
-- exact. Writes happen only once every check has passed: a refused call writes nothing
-- (except a pending approval), and an out-of-memory Redis refuses the first write, before
-- anything changed.

local op = ARGV[1]
local server = ARGV[2] == ''
local slack = tonumber(ARGV[3]) or 0

local function clock()
  if server then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return tonumber(ARGV[2])
end

local function int(x)
  return string.format('%.0f', x)
end

-- Lets `key` expire at time `at` of the call's clock (`now` is that clock's reading). With
-- the caller's clock, the server's clock counts down instead, `slack` longer: a caller's
-- clock that runs slow must not see budgets vanish early.
local function expire_at(key, at, now)
  if server then
    redis.call('PEXPIREAT', key, int(at))
  else
    local ttl = at - now
    if ttl < 1 then ttl = 1 end
    redis.call('PEXPIRE', key, int(ttl + slack))
  end
end

-- A sliding counter at `now`: the key's time (never before its newest event), the cost still
-- in the window, how many leading events left it, the list's length, the newest event.
local function sliding_state(key, now, w)
  local tail = redis.call('LRANGE', key, -3, -1)
  local s = { t = now, used = 0, drop = 0, len = 0 }
  if #tail == 0 then return s end
  if #tail ~= 3 then error('malformed sliding counter ' .. key) end
  s.len = redis.call('LLEN', key)
  s.newest = tonumber(tail[1])
  s.ncost = tonumber(tail[2])
  s.used = tonumber(tail[3])
  if s.newest > s.t then s.t = s.newest end
  local first = 0
  while true do
    local ev = redis.call('LRANGE', key, first, first + 15)
    local i = 1
    -- Pairs (at, cost); a chunk that reaches the end has `used` as a last, single element.
    while i < #ev do
      if tonumber(ev[i]) + w > s.t then return s end
      s.used = s.used - tonumber(ev[i + 1])
      if s.used < 0 then s.used = 0 end
      s.drop = s.drop + 1
      i = i + 2
    end
    if #ev < 16 then return s end
    first = first + 16
  end
end

-- Milliseconds until `cost` fits under `max` (0: it fits now): store::window::Sliding::retry_after.
local function sliding_retry(key, s, w, max, cost)
  local total = s.used + cost
  if total <= max then return 0 end
  local need = total - max
  local freed = 0
  local first = s.drop * 2
  while true do
    local ev = redis.call('LRANGE', key, first, first + 63)
    local i = 1
    while i < #ev do
      freed = freed + tonumber(ev[i + 1])
      if freed >= need then
        local r = tonumber(ev[i]) + w - s.t
        if r < 1 then r = 1 end
        return r
      end
      i = i + 2
    end
    if #ev < 64 then return w end
    first = first + 64
  end
end

local function sliding_charge(key, s, w, cost, now)
  if cost == 0 then return s.used end
  local used = s.used + cost
  local left = (s.len - 1) / 2 - s.drop
  if s.drop > 0 then redis.call('LTRIM', key, s.drop * 2, -1) end
  if left > 0 and s.newest == s.t then
    redis.call('LSET', key, -2, int(s.ncost + cost))
    redis.call('LSET', key, -1, int(used))
  elseif s.len > 0 then
    redis.call('LSET', key, -1, int(s.t))
    redis.call('RPUSH', key, int(cost), int(used))
  else
    redis.call('RPUSH', key, int(s.t), int(cost), int(used))
  end
  expire_at(key, s.t + w, now)
  return used
end

local function parse_calendar(key, v)
  local last, used = string.match(v, '^(%d+):(%d+)$')
  if not last then error('malformed calendar counter ' .. key) end
  return tonumber(last), tonumber(used)
end

local function calendar_start(t, w)
  if w < 1 then w = 1 end
  return t - math.fmod(t, w)
end

-- A calendar counter at `now`: the key's time, its window's start, the cost in that window.
local function calendar_state(key, now, w)
  local s = { t = now, used = 0 }
  local v = redis.call('GET', key)
  if v then
    local last, used = parse_calendar(key, v)
    if last > s.t then s.t = last end
    if calendar_start(last, w) == calendar_start(s.t, w) then s.used = used end
  end
  s.start = calendar_start(s.t, w)
  return s
end

local function calendar_retry(s, w, max, cost)
  if s.used + cost <= max then return 0 end
  local r = s.start + w - s.t
  if r < 1 then r = 1 end
  return r
end

local function calendar_charge(key, s, w, cost, now)
  if cost == 0 then return s.used end
  local used = s.used + cost
  local value = int(s.t) .. ':' .. int(used)
  local wl = w
  if wl < 1 then wl = 1 end
  if server then
    redis.call('SET', key, value, 'PXAT', int(s.start + wl))
  else
    local ttl = s.start + wl - now
    if ttl < 1 then ttl = 1 end
    redis.call('SET', key, value, 'PX', int(ttl + slack))
  end
  return used
end

if op == 'apply' then
  local now = clock()
  local n = tonumber(ARGV[4])
  local ka = 0
  -- 1. The approval: checked before the limits; a missing one becomes pending.
  if ARGV[5] == '1' then
    ka = 1
    local akey = KEYS[1]
    local r = redis.call('HMGET', akey, 'b', 's', 'e')
    local recorded = r[1] and r[2] == '1' and tonumber(r[3]) > now
    if not (recorded and r[1] == ARGV[6]) then
      if not recorded then
        local ttl = tonumber(ARGV[7])
        if ttl > 0 then
          redis.call('HSET', akey, 'b', ARGV[6], 's', '0', 't', int(ttl), 'e', int(now + ttl))
          expire_at(akey, now + ttl, now)
        else
          redis.call('DEL', akey)
        end
      end
      return { 3 }
    end
  end
  -- 2. Check every charge; nothing is written.
  local states = {}
  local worst, worst_i = 0, -1
  for i = 1, n do
    local a = 7 + 4 * (i - 1)
    local kind, w = ARGV[a + 1], tonumber(ARGV[a + 2])
    local max, cost = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local key = KEYS[ka + i]
    local s, retry
    if kind == 's' then
      s = sliding_state(key, now, w)
      if cost > max then retry = w else retry = sliding_retry(key, s, w, max, cost) end
    else
      s = calendar_state(key, now, w)
      if cost > max then retry = w else retry = calendar_retry(s, w, max, cost) end
    end
    states[i] = s
    if retry > worst then worst, worst_i = retry, i - 1 end
  end
  if worst_i >= 0 then return { 2, worst_i, worst } end
  -- 3. Charge them all, then consume the approval.
  local out = { 1, -1 }
  local seen = {}
  for i = 1, n do
    local a = 7 + 4 * (i - 1)
    local kind, w = ARGV[a + 1], tonumber(ARGV[a + 2])
    local max, cost = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local key = KEYS[ka + i]
    local s = states[i]
    local used
    if kind == 's' then
      -- A key named twice in one plan is read again after its first charge.
      if seen[key] then s = sliding_state(key, now, w) end
      used = sliding_charge(key, s, w, cost, now)
    else
      if seen[key] then s = calendar_state(key, now, w) end
      used = calendar_charge(key, s, w, cost, now)
    end
    seen[key] = true
    local left = max - used
    if left < 0 then left = 0 end
    if out[2] < 0 or left < out[2] then out[2] = left end
    out[#out + 1] = s.t
  end
  if ka == 1 then redis.call('DEL', KEYS[1]) end
  return out
elseif op == 'release' then
  local n = tonumber(ARGV[4])
  for i = 1, n do
    local a = 4 + 4 * (i - 1)
    local kind, w = ARGV[a + 1], tonumber(ARGV[a + 2])
    local at, cost = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local key = KEYS[i]
    if kind == 's' then
      -- The event recorded at `at`, if it is still there (newest first: refunds are recent).
      local ev = redis.call('LRANGE', key, 0, -1)
      local len = #ev
      local j = len - 2
      while j >= 1 do
        local e = tonumber(ev[j])
        if e == at then break end
        if e < at then j = -1 break end
        j = j - 2
      end
      if j >= 1 then
        local c = tonumber(ev[j + 1])
        local take = cost
        if c < take then take = c end
        local used = tonumber(ev[len]) - take
        if used < 0 then used = 0 end
        if c - take > 0 then
          redis.call('LSET', key, j, int(c - take))
          redis.call('LSET', key, -1, int(used))
        elseif len == 3 then
          redis.call('DEL', key)
        else
          redis.call('LSET', key, j - 1, '-')
          redis.call('LSET', key, j, '-')
          redis.call('LREM', key, 2, '-')
          redis.call('LSET', key, -1, int(used))
        end
      end
    else
      local v = redis.call('GET', key)
      if v then
        local last, used = parse_calendar(key, v)
        if calendar_start(at, w) == calendar_start(last, w) then
          used = used - cost
          if used < 0 then used = 0 end
          redis.call('SET', key, int(last) .. ':' .. int(used), 'KEEPTTL')
        end
      end
    end
  end
  return 1
elseif op == 'approve' then
  local now = clock()
  local r = redis.call('HMGET', KEYS[1], 's', 't', 'e')
  if not r[1] or not (tonumber(r[3]) > now) then return 0 end
  if r[1] == '0' then
    local ttl = tonumber(r[2])
    redis.call('HSET', KEYS[1], 's', '1', 'e', int(now + ttl))
    expire_at(KEYS[1], now + ttl, now)
  end
  return 1
end
return redis.error_reply('mcp-policy-redis: unknown operation ' .. tostring(op))
