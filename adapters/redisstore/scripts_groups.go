package redisstore

import "github.com/redis/go-redis/v9"

// The scripts that read groups (scripts.go says how scripts are written).

// groupsScript summarises groups from the per-group indexes and counters.
// ARGV: prefix, dimension (f, t or h), window start score (empty: none),
// order ('c': most letters first, 'l': newest first), offset, limit (0:
// all), then the group keys to read (none: the page of the order set).
// Returns per group {key, counters (HGETALL), first score, last score,
// oldest new score or empty, in window, sample error, sample class}.
//
// The order sets o:c:<d> (score: minus the group's letters) and o:l:<d>
// (minus its newest failed-at) are kept by index_add and index_del; equal
// scores sort by key, bytewise. A key set and order set of different
// sizes (letters written by a version that kept no order sets) are
// rebuilt from the counters first, O(G log G) once.
var groupsScript = redis.NewScript(prelude + orderSets + `
local d, win, ord = ARGV[2], ARGV[3], ARGV[4]
local off, lim = tonumber(ARGV[5]), tonumber(ARGV[6])
local keys = {}
if #ARGV >= 7 then
  for i = 7, #ARGV do keys[#keys + 1] = ARGV[i] end
else
  order_sets(d)
  local stop = -1
  if lim > 0 then stop = off + lim - 1 end
  keys = redis.call('ZRANGE', P .. 'o:' .. ord .. ':' .. d, off, stop)
end
local out = {}
for _, k in ipairs(keys) do
  local ix = P .. 'i:' .. d .. ':' .. k
  local first = redis.call('ZRANGE', ix, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local last = redis.call('ZRANGE', ix, -1, -1, 'WITHSCORES')
    local oldest = redis.call('ZRANGE', P .. 'n:' .. d .. ':' .. k, 0, 0, 'WITHSCORES')
    local inwin = 0
    if win ~= '' then inwin = redis.call('ZCOUNT', ix, win, '+inf') end
    local smp = redis.call('HMGET', rk(last[1]), 'err', 'ecl')
    out[#out + 1] = {k, redis.call('HGETALL', P .. 'g:' .. d .. ':' .. k), first[2], last[2],
      oldest[2] or '', inwin, smp[1] or '', smp[2] or ''}
  end
end
return out
`)

// orderSets defines order_sets(d), which rebuilds the order sets of
// dimension d from the counters when their sizes differ from the key
// set's (letters written by a version that kept no order sets), O(G log G)
// once.
const orderSets = `
local function order_sets(d)
  local ks, oc, ol = P .. 'k:' .. d, P .. 'o:c:' .. d, P .. 'o:l:' .. d
  local n = redis.call('SCARD', ks)
  if redis.call('ZCARD', oc) == n and redis.call('ZCARD', ol) == n then return end
  redis.call('DEL', oc, ol)
  for _, k in ipairs(redis.call('SMEMBERS', ks)) do
    local last = redis.call('ZRANGE', P .. 'i:' .. d .. ':' .. k, -1, -1, 'WITHSCORES')
    if #last > 0 then
      redis.call('ZADD', oc, -tonumber(redis.call('HGET', P .. 'g:' .. d .. ':' .. k, 'c') or 0), k)
      redis.call('ZADD', ol, -tonumber(last[2]), k)
    end
  end
end
`

// sumScript sums a chunk of groups of an order set. ARGV: prefix,
// dimension, window start score (empty: none), order ('c' or 'l'), offset,
// count. Returns {groups read, letters, new, replayed, archived, in
// window, first score, last score, oldest new score}, the scores empty
// when no group has one.
var sumScript = redis.NewScript(prelude + orderSets + `
local d, win, ord = ARGV[2], ARGV[3], ARGV[4]
local off, lim = tonumber(ARGV[5]), tonumber(ARGV[6])
order_sets(d)
local keys = redis.call('ZRANGE', P .. 'o:' .. ord .. ':' .. d, off, off + lim - 1)
local c, nw, rp, ar, w = 0, 0, 0, 0, 0
local first, last, oldest
for _, k in ipairs(keys) do
  local ix = P .. 'i:' .. d .. ':' .. k
  local f = redis.call('ZRANGE', ix, 0, 0, 'WITHSCORES')
  if #f > 0 then
    local l = redis.call('ZRANGE', ix, -1, -1, 'WITHSCORES')
    local o = redis.call('ZRANGE', P .. 'n:' .. d .. ':' .. k, 0, 0, 'WITHSCORES')
    local h = redis.call('HMGET', P .. 'g:' .. d .. ':' .. k, 'c', 's:new', 's:replayed', 's:archived')
    c = c + tonumber(h[1] or 0)
    nw = nw + tonumber(h[2] or 0)
    rp = rp + tonumber(h[3] or 0)
    ar = ar + tonumber(h[4] or 0)
    if win ~= '' then w = w + redis.call('ZCOUNT', ix, win, '+inf') end
    if not first or tonumber(f[2]) < tonumber(first) then first = f[2] end
    if not last or tonumber(l[2]) > tonumber(last) then last = l[2] end
    if #o > 0 and (not oldest or tonumber(o[2]) < tonumber(oldest)) then oldest = o[2] end
  end
end
return {#keys, c, nw, rp, ar, w, first or '', last or '', oldest or ''}
`)

// totalsScript sums every letter failed in a score range from the
// indexes of all letters and of each status. ARGV: prefix, low score
// ('-inf' or inclusive), high score ('+inf' or exclusive, '(' first),
// window start score (empty: none). Returns the reply of sumScript (with
// 0 groups read): O(log n).
var totalsScript = redis.NewScript(prelude + `
local lo, hi, win = ARGV[2], ARGV[3], ARGV[4]
local function ends(key)
  local f = redis.call('ZRANGE', key, lo, hi, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
  local l = redis.call('ZRANGE', key, hi, lo, 'BYSCORE', 'REV', 'LIMIT', 0, 1, 'WITHSCORES')
  return f[2] or '', l[2] or ''
end
local w = 0
if win ~= '' then
  local wlo = win
  if lo ~= '-inf' and tonumber(lo) > tonumber(win) then wlo = lo end
  w = redis.call('ZCOUNT', P .. 'all', wlo, hi)
end
local first, last = ends(P .. 'all')
local oldest = ends(P .. 's:new')
return {0, redis.call('ZCOUNT', P .. 'all', lo, hi), redis.call('ZCOUNT', P .. 's:new', lo, hi),
  redis.call('ZCOUNT', P .. 's:replayed', lo, hi), redis.call('ZCOUNT', P .. 's:archived', lo, hi), w, first, last, oldest}
`)

// rankScript returns the rank in an order set of the first group after a
// cursor: the groups of lower score, then those of equal score found by
// a binary search on their keys (bytewise, as the set orders them).
// ARGV: prefix, dimension, order ('c' or 'l'), the cursor's score, its
// key. O(log G × log ties).
var rankScript = redis.NewScript(prelude + orderSets + `
local d, ord, sc, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
order_sets(d)
local z = P .. 'o:' .. ord .. ':' .. d
local lo = redis.call('ZCOUNT', z, '-inf', '(' .. sc)
local hi = lo + redis.call('ZCOUNT', z, sc, sc)
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if bless(key, redis.call('ZRANGE', z, mid, mid)[1]) then hi = mid else lo = mid + 1 end
end
return lo
`)
