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
--   sliding counter  list of the admitted events still in the window, oldest first, merged
--                    per millisecond: "at" (cost 1, stored by Redis as an integer) or
--                    "at:cost"; the newest is "used:oldest:expiry:at:cost", carrying the sum
--                    of the costs, the oldest event's time and the expiry last set, so that
--                    an admitted call reads one element and writes one or two
--   calendar counter string "last:used" (last = the latest time it was charged at)
--   approval         hash   b = binding, s = '0' pending | '1' recorded, t = ttl ms,
--                           e = expiry time (in the clock the calls use)
-- Keys expire when their window (or the approval's TTL) has passed; with the server's clock a
-- sliding counter's expiry is moved only when needed, an eighth of a window at a time, so it
-- may outlive its newest event's window by up to that eighth.
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

-- One element of a sliding counter: its time and cost (the newest element also carries the
-- counter's totals: see sliding_state).
local function event(key, e)
  local a, b, c, d, f = string.match(e, '^(%d+):?(%d*):?(%d*):?(%d*):?(%d*)$')
  if not a then error('malformed sliding counter ' .. key) end
  if f ~= '' then return tonumber(d), tonumber(f) end
  if b ~= '' then return tonumber(a), tonumber(b) end
  return tonumber(a), 1
end

local function plain(at, cost)
  if cost == 1 then return string.format('%.0f', at) end
  return string.format('%.0f:%.0f', at, cost)
end

local function newest(used, oldest, exp, at, cost)
  return string.format('%.0f:%.0f:%.0f:%.0f:%.0f', used, oldest, exp, at, cost)
end

-- A sliding counter at `now`: the key's time (never before its newest event), the cost still
-- in the window, how many leading events left it, and the newest element's fields.
local function sliding_state(key, now, w)
  local s = { t = now, used = 0, drop = 0, exists = false, oldest = 0, exp = 0, newest = 0,
    ncost = 0 }
  local tail = redis.call('LINDEX', key, -1)
  if not tail then return s end
  local used, oldest, exp, at, cost = string.match(tail, '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
  if not used then error('malformed sliding counter ' .. key) end
  s.exists = true
  s.used, s.oldest, s.exp = tonumber(used), tonumber(oldest), tonumber(exp)
  s.newest, s.ncost = tonumber(at), tonumber(cost)
  if s.newest > s.t then s.t = s.newest end
  -- Usually the oldest event is still inside: nothing more to read.
  if s.oldest + w > s.t then return s end
  local first = 0
  while true do
    local ev = redis.call('LRANGE', key, first, first + 31)
    for i = 1, #ev do
      local e_at, e_cost = event(key, ev[i])
      if e_at + w > s.t then
        s.oldest = e_at
        return s
      end
      s.used = s.used - e_cost
      if s.used < 0 then s.used = 0 end
      s.drop = s.drop + 1
    end
    if #ev < 32 then return s end
    first = first + 32
  end
end

-- Milliseconds until `cost` fits under `max` (0: it fits now): store::window::Sliding::retry_after.
local function sliding_retry(key, s, w, max, cost)
  local total = s.used + cost
  if total <= max then return 0 end
  local need = total - max
  local freed = 0
  local first = s.drop
  while true do
    local ev = redis.call('LRANGE', key, first, first + 63)
    for i = 1, #ev do
      local e_at, e_cost = event(key, ev[i])
      freed = freed + e_cost
      if freed >= need then
        local r = e_at + w - s.t
        if r < 1 then r = 1 end
        return r
      end
    end
    if #ev < 64 then return w end
    first = first + 64
  end
end

local function sliding_charge(key, s, w, cost, now)
  if cost == 0 then return s.used end
  local used = s.used + cost
  if s.drop > 0 then redis.call('LTRIM', key, s.drop, -1) end
  -- Events are in time order: the newest is still inside iff any is.
  local kept = s.exists and s.newest + w > s.t
  local oldest = s.t
  if kept then oldest = s.oldest end
  -- The expiry: with the server's clock, moved (an eighth of a window ahead) only when the
  -- newest event would outlive it; with the caller's clock, set on every charge.
  local exp = s.exp or 0
  local need = s.t + w
  local expire = false
  if not kept or not server or exp < need then
    expire = true
    exp = need
    if server then exp = need + math.floor(w / 8) end
  end
  if kept and s.newest == s.t then
    redis.call('LSET', key, -1, newest(used, oldest, exp, s.t, s.ncost + cost))
  elseif kept then
    redis.call('LSET', key, -1, plain(s.newest, s.ncost))
    redis.call('RPUSH', key, newest(used, oldest, exp, s.t, cost))
  else
    redis.call('RPUSH', key, newest(used, oldest, exp, s.t, cost))
  end
  if expire then expire_at(key, exp, now) end
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
  local s = { t = now, used = 0, start = 0 }
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
  local value = string.format('%.0f:%.0f', s.t, used)
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
  local states, charges = {}, {}
  local worst, worst_i = 0, -1
  for i = 1, n do
    local a = 7 + 4 * (i - 1)
    local kind, w = ARGV[a + 1], tonumber(ARGV[a + 2])
    local max, cost = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local key = KEYS[ka + i]
    charges[i] = { kind, w, max, cost, key }
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
    local c = charges[i]
    local kind, w, max, cost, key = c[1], c[2], c[3], c[4], c[5]
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
      -- The event recorded at `at`, if it is still there: the list is rewritten (a rare
      -- path), keeping its expiry.
      local ev = redis.call('LRANGE', key, 0, -1)
      local len = #ev
      local found = 0
      local events = {}
      for j = 1, len do
        local e_at, e_cost = event(key, ev[j])
        events[j] = { e_at, e_cost }
        if e_at == at then found = j end
      end
      if found > 0 then
        local _, _, exp = string.match(ev[len], '^(%d+):(%d+):(%d+):')
        local take = cost
        if events[found][2] < take then take = events[found][2] end
        events[found][2] = events[found][2] - take
        local ttl = redis.call('PTTL', key)
        redis.call('DEL', key)
        local kept = {}
        local used = 0
        for j = 1, len do
          if events[j][2] > 0 then
            kept[#kept + 1] = events[j]
            used = used + events[j][2]
          end
        end
        if #kept > 0 then
          local out = {}
          for j = 1, #kept - 1 do out[j] = plain(kept[j][1], kept[j][2]) end
          local last = kept[#kept]
          out[#kept] = newest(used, kept[1][1], tonumber(exp), last[1], last[2])
          for j = 1, #out, 1000 do
            redis.call('RPUSH', key, unpack(out, j, math.min(j + 999, #out)))
          end
          if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
        end
      end
    else
      local v = redis.call('GET', key)
      if v then
        local last, used = parse_calendar(key, v)
        if calendar_start(at, w) == calendar_start(last, w) then
          used = used - cost
          if used < 0 then used = 0 end
          redis.call('SET', key, string.format('%.0f:%.0f', last, used), 'KEEPTTL')
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
