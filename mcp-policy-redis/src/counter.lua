-- mcp-policy-redis: the one script behind every store call (EVALSHA; one round trip).
--
-- Redis runs a script atomically, so a call's check-then-charge over all of its keys is
-- all-or-nothing. The arithmetic is the one of mcp_policy::store::window, to the millisecond.
--
-- One charge and no approval (nearly every call), the short form:
--   KEYS = [counter key]; ARGV[1] reset ('s' sliding | 'c' calendar), ARGV[2] window ms,
--   ARGV[3] max, ARGV[4] cost, then nothing for the server clock (TIME), or ARGV[5] the
--   caller's time in ms and ARGV[6] how much longer than their window keys live (ms)
--   -> admitted: the counter's new value as stored (sliding: its newest element, 40 bytes;
--      calendar: 16 bytes; see Layout), from which the client reads the cost now used and
--      the time of the charge (a string answer costs Redis far less than an array);
--      otherwise as apply's answer, with one time
-- Any other call: ARGV[1] op 'apply' | 'release' | 'approve', ARGV[2] time ('' for the server
-- clock, or the caller's time in ms), ARGV[3] with the caller's time: the slack above (ms)
-- apply:   KEYS = [approval key,] counter keys
--          ARGV[4] n charges, ARGV[5] '1' with an approval, ARGV[6] binding, ARGV[7] ttl ms,
--          then per charge: reset ('s' | 'c'), window ms, max, cost
--          -> {1, remaining (-1: no charges), time of charge 1, ..., time of charge n}
--           | {2, index of the refusing charge, retry after ms}
--           | {3}  (approval required; it is now pending)
-- release: KEYS = counter keys; ARGV[4] n, then per charge: reset, window ms, time, cost -> 1
-- approve: KEYS = [approval key] -> 1 recorded (or already recorded), 0 unknown or expired
--
-- Layout (every key starts with the store's hash tag, "{prefix}"). Counter values are
-- big-endian IEEE doubles (struct.pack '>d'), which Lua packs and unpacks far faster than it
-- formats and parses decimal text; every number is an integer below 2^52, so each is exact.
--   sliding counter  list of the admitted events still in the window, oldest first, merged
--                    per millisecond: 8 bytes "at" (cost 1) or 16 bytes "at, cost"; the newest
--                    is 40 bytes "used, oldest, expiry, at, cost", carrying the sum of the
--                    costs, the oldest event's time and the expiry last set, so that an
--                    admitted call reads one element and writes one or two
--   calendar counter string, 16 bytes "last, used" (last = the latest time it was charged at)
--   approval         hash   b = binding, s = '0' pending | '1' recorded, t = ttl ms,
--                           e = expiry time (in the clock the calls use)
-- A double's first byte is never an ASCII digit, so counters left in the decimal text layout
-- of earlier versions ("at", "at:cost", "used:oldest:expiry:at:cost", "last:used") are still
-- read (and rewritten in this layout by their next charge).
-- Keys expire when their window (or the approval's TTL) has passed; with the server's clock a
-- sliding counter's expiry is moved only when needed, an eighth of a window at a time, so it
-- may outlive its newest event's window by up to that eighth.
--
-- Numbers are Lua doubles: the client sends only integers below 2^52, so every sum here is
-- exact. Writes happen only once every check has passed: a refused call writes nothing
-- (except a pending approval), and an out-of-memory Redis refuses the first write, before
-- anything changed.

local call, floor, fmod = redis.call, math.floor, math.fmod
local spack, sunpack = struct.pack, struct.unpack

local op = ARGV[1]
-- The call's clock: the server's, or the caller's (then keys live `slack` longer).
local server, now, slack = true, 0, 0
-- Whether the call is in the short form, and its key's value as read (false: no such key).
local single, pre = false, nil

-- The short form, admitted: check and charge inline. Anything else (a refusal, a window to
-- prune, a cost of 0, a counter in the old layout) goes on to the general code below, which
-- answers the same from the value read here.
if op == 's' or op == 'c' then
  local key = KEYS[1]
  local w, max, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if ARGV[5] then
    server, now, slack = false, tonumber(ARGV[5]), tonumber(ARGV[6]) or 0
  else
    local t = call('TIME')
    now = t[1] * 1000 + floor(t[2] / 1000)
  end
  single = true
  if op == 's' then
    pre = call('LINDEX', key, '-1')
    if cost > 0 and cost <= max then
      local used, oldest, exp, at, ncost
      if not pre then
        used, oldest, exp, at, ncost = 0, now, 0, now, 0
      elseif #pre == 40 and pre:byte() > 57 then
        used, oldest, exp, at, ncost = sunpack('>ddddd', pre)
      end
      local t = now
      if at and at > t then t = at end
      -- The oldest event still inside (so no event left the window), and room for `cost`.
      if at and oldest + w > t and used + cost <= max then
        used = used + cost
        local need = t + w
        local expire = not pre or not server or exp < need
        if expire then
          exp = need
          if server then exp = need + floor(w / 8) end
        end
        local v
        if not pre then
          v = spack('>ddddd', used, oldest, exp, t, cost)
          call('RPUSH', key, v)
        elseif at == t then
          v = spack('>ddddd', used, oldest, exp, t, ncost + cost)
          call('LSET', key, '-1', v)
        else
          if ncost == 1 then
            call('LSET', key, '-1', spack('>d', at))
          else
            call('LSET', key, '-1', spack('>dd', at, ncost))
          end
          v = spack('>ddddd', used, oldest, exp, t, cost)
          call('RPUSH', key, v)
        end
        if expire then
          if server then
            call('PEXPIREAT', key, string.format('%.0f', exp))
          else
            local ttl = exp - now
            if ttl < 1 then ttl = 1 end
            call('PEXPIRE', key, string.format('%.0f', ttl + slack))
          end
        end
        return v
      end
    end
  else
    pre = call('GET', key)
    local used, last = 0, nil
    if not pre then
      last = now
    elseif #pre == 16 and pre:byte() > 57 then
      last, used = sunpack('>dd', pre)
    end
    if last and cost > 0 then
      local ww = w
      if ww < 1 then ww = 1 end
      local t = now
      if last > t then t = last end
      local start = t - fmod(t, ww)
      if last - fmod(last, ww) ~= start then used = 0 end
      if used + cost <= max then
        local v = spack('>dd', t, used + cost)
        if server then
          call('SET', key, v, 'PXAT', string.format('%.0f', start + ww))
        else
          local ttl = start + ww - now
          if ttl < 1 then ttl = 1 end
          call('SET', key, v, 'PX', string.format('%.0f', ttl + slack))
        end
        return v
      end
    end
  end
end

local function clock()
  if server then
    local t = call('TIME')
    return tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
  end
  return tonumber(ARGV[2])
end

local function int(x)
  return string.format('%.0f', x)
end

-- Lets `key` expire at time `at` of the call's clock (`now` is that clock's reading). With
-- the caller's clock, the server's clock counts down instead, `slack` longer: a caller's
-- clock that runs slow must not see budgets vanish early.
local function expire_at(key, at)
  if server then
    call('PEXPIREAT', key, int(at))
  else
    local ttl = at - now
    if ttl < 1 then ttl = 1 end
    call('PEXPIRE', key, int(ttl + slack))
  end
end

-- Whether `v` is `len` bytes of doubles (not the decimal text of earlier versions).
local function binary(v, len)
  local b = v:byte(1)
  return b ~= nil and #v == len and (b < 48 or b > 57)
end

-- One element of a sliding counter: its time and cost (the newest element also carries the
-- counter's totals: see sliding_state).
local function event(key, e)
  local n = #e
  if binary(e, n) then
    if n == 8 then return (sunpack('>d', e)), 1 end
    if n == 16 then
      local at, cost = sunpack('>dd', e)
      return at, cost
    end
    if n == 40 then
      local _, _, _, at, cost = sunpack('>ddddd', e)
      return at, cost
    end
  else
    -- The text layout of earlier versions.
    local a, b, c, d, f = string.match(e, '^(%d+):?(%d*):?(%d*):?(%d*):?(%d*)$')
    if a then
      if f ~= '' then return tonumber(d), tonumber(f) end
      if b ~= '' then return tonumber(a), tonumber(b) end
      return tonumber(a), 1
    end
  end
  error('malformed sliding counter ' .. key)
end

local function plain(at, cost)
  if cost == 1 then return spack('>d', at) end
  return spack('>dd', at, cost)
end

local function newest(used, oldest, exp, at, cost)
  return spack('>ddddd', used, oldest, exp, at, cost)
end

-- The newest element's fields: used, oldest, expiry, at, cost.
local function parse_newest(key, tail)
  if binary(tail, 40) then
    local used, oldest, exp, at, cost = sunpack('>ddddd', tail)
    return used, oldest, exp, at, cost
  end
  local used, oldest, exp, at, cost = string.match(tail, '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
  if not used then error('malformed sliding counter ' .. key) end
  return tonumber(used), tonumber(oldest), tonumber(exp), tonumber(at), tonumber(cost)
end

-- A sliding counter at `now`: the key's time (never before its newest event), the cost still
-- in the window, how many leading events left it, and the newest element's fields. `tail` is
-- the newest element when already read (false: no key), nil to read it.
local function sliding_state(key, w, tail)
  local s = { t = now, used = 0, drop = 0, exists = false, oldest = 0, exp = 0, newest = 0,
    ncost = 0 }
  if tail == nil then tail = call('LINDEX', key, '-1') end
  if not tail then return s end
  s.exists = true
  s.used, s.oldest, s.exp, s.newest, s.ncost = parse_newest(key, tail)
  if s.newest > s.t then s.t = s.newest end
  -- Usually the oldest event is still inside: nothing more to read.
  if s.oldest + w > s.t then return s end
  local first = 0
  while true do
    local ev = call('LRANGE', key, int(first), int(first + 31))
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
    local ev = call('LRANGE', key, int(first), int(first + 63))
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

local function sliding_charge(key, s, w, cost)
  if cost == 0 then return s.used end
  local used = s.used + cost
  if s.drop > 0 then call('LTRIM', key, int(s.drop), '-1') end
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
    if server then exp = need + floor(w / 8) end
  end
  if kept and s.newest == s.t then
    call('LSET', key, '-1', newest(used, oldest, exp, s.t, s.ncost + cost))
  elseif kept then
    call('LSET', key, '-1', plain(s.newest, s.ncost))
    call('RPUSH', key, newest(used, oldest, exp, s.t, cost))
  else
    call('RPUSH', key, newest(used, oldest, exp, s.t, cost))
  end
  if expire then expire_at(key, exp) end
  return used
end

-- A calendar counter's value: last, used.
local function parse_calendar(key, v)
  if binary(v, 16) then
    local last, used = sunpack('>dd', v)
    return last, used
  end
  local last, used = string.match(v, '^(%d+):(%d+)$')
  if not last then error('malformed calendar counter ' .. key) end
  return tonumber(last), tonumber(used)
end

local function calendar_start(t, w)
  if w < 1 then w = 1 end
  return t - fmod(t, w)
end

-- A calendar counter at `now`: the key's time, its window's start, the cost in that window.
-- `v` is the key's value when already read (false: no key), nil to read it.
local function calendar_state(key, w, v)
  local s = { t = now, used = 0, start = 0 }
  if v == nil then v = call('GET', key) end
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

local function calendar_charge(key, s, w, cost)
  if cost == 0 then return s.used end
  local used = s.used + cost
  local value = spack('>dd', s.t, used)
  local wl = w
  if wl < 1 then wl = 1 end
  if server then
    call('SET', key, value, 'PXAT', int(s.start + wl))
  else
    local ttl = s.start + wl - now
    if ttl < 1 then ttl = 1 end
    call('SET', key, value, 'PX', int(ttl + slack))
  end
  return used
end

if single or op == 'apply' then
  local n, ka, charges = 1, 0, nil
  if single then
    charges = { { op, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), KEYS[1] } }
  else
    server = ARGV[2] == ''
    slack = tonumber(ARGV[3]) or 0
    now = clock()
    n = tonumber(ARGV[4])
    -- 1. The approval: checked before the limits; a missing one becomes pending.
    if ARGV[5] == '1' then
      ka = 1
      local akey = KEYS[1]
      local r = call('HMGET', akey, 'b', 's', 'e')
      local recorded = r[1] and r[2] == '1' and tonumber(r[3]) > now
      if not (recorded and r[1] == ARGV[6]) then
        if not recorded then
          local ttl = tonumber(ARGV[7])
          if ttl > 0 then
            call('HSET', akey, 'b', ARGV[6], 's', '0', 't', int(ttl), 'e', int(now + ttl))
            expire_at(akey, now + ttl)
          else
            call('DEL', akey)
          end
        end
        return { 3 }
      end
    end
    charges = {}
    for i = 1, n do
      local a = 7 + 4 * (i - 1)
      charges[i] = { ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
        tonumber(ARGV[a + 4]), KEYS[ka + i] }
    end
  end
  -- 2. Check every charge; nothing is written.
  local states = {}
  local worst, worst_i = 0, -1
  for i = 1, n do
    local c = charges[i]
    local kind, w, max, cost, key = c[1], c[2], c[3], c[4], c[5]
    local s, retry
    if kind == 's' then
      s = sliding_state(key, w, pre)
      if cost > max then retry = w else retry = sliding_retry(key, s, w, max, cost) end
    else
      s = calendar_state(key, w, pre)
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
      if seen[key] then s = sliding_state(key, w) end
      used = sliding_charge(key, s, w, cost)
    else
      if seen[key] then s = calendar_state(key, w) end
      used = calendar_charge(key, s, w, cost)
    end
    seen[key] = true
    local left = max - used
    if left < 0 then left = 0 end
    if out[2] < 0 or left < out[2] then out[2] = left end
    out[#out + 1] = s.t
  end
  if ka == 1 then call('DEL', KEYS[1]) end
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
      local ev = call('LRANGE', key, '0', '-1')
      local len = #ev
      local found = 0
      local events = {}
      for j = 1, len do
        local e_at, e_cost = event(key, ev[j])
        events[j] = { e_at, e_cost }
        if e_at == at then found = j end
      end
      if found > 0 then
        local _, _, exp = parse_newest(key, ev[len])
        local take = cost
        if events[found][2] < take then take = events[found][2] end
        events[found][2] = events[found][2] - take
        local ttl = call('PTTL', key)
        call('DEL', key)
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
          out[#kept] = newest(used, kept[1][1], exp, last[1], last[2])
          for j = 1, #out, 1000 do
            call('RPUSH', key, unpack(out, j, math.min(j + 999, #out)))
          end
          if ttl > 0 then call('PEXPIRE', key, int(ttl)) end
        end
      end
    else
      local v = call('GET', key)
      if v then
        local last, used = parse_calendar(key, v)
        if calendar_start(at, w) == calendar_start(last, w) then
          used = used - cost
          if used < 0 then used = 0 end
          call('SET', key, spack('>dd', last, used), 'KEEPTTL')
        end
      end
    end
  end
  return 1
elseif op == 'approve' then
  server = ARGV[2] == ''
  slack = tonumber(ARGV[3]) or 0
  now = clock()
  local r = call('HMGET', KEYS[1], 's', 't', 'e')
  if not r[1] or not (tonumber(r[3]) > now) then return 0 end
  if r[1] == '0' then
    local ttl = tonumber(r[2])
    call('HSET', KEYS[1], 's', '1', 'e', int(now + ttl))
    expire_at(KEYS[1], now + ttl)
  end
  return 1
end
return redis.error_reply('mcp-policy-redis: unknown operation ' .. tostring(op))
