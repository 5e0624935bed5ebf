package fleetredis

import "github.com/redis/go-redis/v9"

// The scripts run atomically on the server and read its clock (TIME), so
// replicas' clocks never matter. Redis 5 and newer replicate a script's
// effects, which makes TIME safe in a script that writes.

// leaseScript is a GCRA granting up to n tokens at once (a negative n gives
// tokens back). KEYS: tat, members. ARGV: rate, burst, n, member,
// member_ttl_ms. Times in microseconds. Returns {granted, retry_after_us
// (-1: never), live members}.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local mttl = tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - mttl * 1000)
local members = redis.call('ZCARD', KEYS[2])
redis.call('PEXPIRE', KEYS[2], mttl * 2)
if rate <= 0 then return {0, -1, members} end
local interval = 1000000 / rate
local tau = burst * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local k, retry = 0, 0
if n < 0 then
  tat = math.max(now, tat + n * interval)
else
  k = math.floor((now + tau - tat) / interval)
  if k > n then k = n end
  if k < 0 then k = 0 end
  tat = tat + k * interval
  if k < n then retry = math.ceil(tat + interval - tau - now) end
end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + mttl * 2)
return {k, retry, members}
`)

// breakerScript is the fleet breaker's state machine over a shared window
// of ten buckets. KEYS: state hash, window hash, members, force. ARGV:
// member, successes, failures, probe (+1/-1/0), window_ms, min_requests,
// failure_ratio, open_for_ms, probe_ttl_ms, drain_ms, member_ttl_ms,
// idle (1: the member has no message to probe and takes no probe lease).
// The state hash keeps the force the last report saw (lf): a report that
// first sees a force open from closed takes the window's throughput as
// the baseline, and one that first sees it released from open while
// closed starts a drain, as Breaker.ClearForce does.
// Returns {state, generation, probe holder (1/0), force, members,
// drain elapsed ms, baseline (string)}.
var breakerScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local H, W, M, F = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member = ARGV[1]
local succ, fail, probe = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local window, minreq, ratio = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local openfor, probettl, drain, mttl = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local keep = window * 4 + openfor + drain + 60000
redis.call('ZADD', M, now, member)
redis.call('ZREMRANGEBYSCORE', M, '-inf', now - mttl)
local members = redis.call('ZCARD', M)
redis.call('PEXPIRE', M, keep)
local v = redis.call('HMGET', H, 'st', 'gen', 'until', 'probe', 'pu', 'da', 'base', 'lf')
local st = v[1] or 'closed'
local gen = tonumber(v[2] or '0')
local untl = tonumber(v[3] or '0')
local pm = v[4] or ''
local pu = tonumber(v[5] or '0')
local da = tonumber(v[6] or '0')
local base = v[7] or '0'
local force = redis.call('GET', F) or 'none'
local lf = v[8] or 'none'
local bw = math.max(math.floor(window / 10), 10)
local b = math.floor(now / bw)
local function trip()
  st, gen, untl, pm = 'open', gen + 1, now + openfor, ''
  redis.call('DEL', W)
end
if st == 'open' and now >= untl then st, pm = 'half', '' end
if st == 'draining' and now - da >= drain then st = 'closed' end
if st == 'half' and pm == member and probe ~= 0 then
  if probe > 0 then
    st, gen, pm = 'closed', gen + 1, ''
    if drain > 0 then st, da = 'draining', now end
    redis.call('DEL', W)
  else
    trip()
  end
end
if force == 'none' and lf == 'open' and st == 'closed' and drain > 0 then
  st, gen, da = 'draining', gen + 1, now
  redis.call('DEL', W)
end
if st == 'closed' or st == 'draining' then
  if succ > 0 then redis.call('HINCRBY', W, b .. ':s', succ) end
  if fail > 0 then redis.call('HINCRBY', W, b .. ':f', fail) end
  redis.call('PEXPIRE', W, window * 2 + 1000)
  local s, f = 0, 0
  local all = redis.call('HGETALL', W)
  for i = 1, #all, 2 do
    local k = all[i]
    local sep = string.find(k, ':', 1, true)
    local idx = tonumber(string.sub(k, 1, sep - 1))
    if idx <= b - 10 then
      redis.call('HDEL', W, k)
    elseif string.sub(k, sep + 1) == 's' then
      s = s + tonumber(all[i + 1])
    else
      f = f + tonumber(all[i + 1])
    end
  end
  if force == 'open' and lf ~= 'open' and st == 'closed' and s + f > 0 then
    base = string.format('%.3f', (s + f) * 1000 / window)
  end
  if s + f > 0 and s + f >= minreq and f / (s + f) >= ratio then
    if st == 'closed' then base = string.format('%.3f', (s + f) * 1000 / window) end
    trip()
  end
end
local holder = 0
if st == 'half' then
  if (pm == '' or now >= pu) and ARGV[12] ~= '1' then pm, pu = member, now + probettl end
  if pm == member then holder = 1 end
end
redis.call('HSET', H, 'st', st, 'gen', gen, 'until', untl, 'probe', pm, 'pu', pu, 'da', da, 'base', base, 'lf', force)
redis.call('PEXPIRE', H, keep)
local elapsed = 0
if st == 'draining' then elapsed = now - da end
if force == 'open' then st, holder = 'open', 0 elseif force == 'closed' then st, holder = 'closed', 0 end
return {st, gen, holder, force, members, elapsed, base}
`)
