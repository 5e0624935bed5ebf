package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Each runs atomically on the server, so an index and the
// record it points at never disagree, and a claim is a check-and-set no
// other client can interleave with. Key names are derived inside the
// scripts from the prefix (ARGV[1], "<prefix>:dlq:"): the store needs one
// Redis server (or a primary with replicas), not Redis Cluster.
//
// Lua compares strings with strcoll, which follows the server's locale;
// ties in the replay order are broken bytewise (as sorted sets order
// members), so the scripts compare IDs with bless, byte by byte.

// prelude is shared by the scripts that maintain the indexes.
const prelude = `
local P = ARGV[1]
local function rk(id) return P .. 'r:' .. id end

local function bless(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return la < lb
end

local function hdecr(g, field)
  if redis.call('HINCRBY', g, field, -1) <= 0 then redis.call('HDEL', g, field) end
end

local DIMS = {'f', 't', 'h'}

local function dimvals(fp, topic, handler) return {f = fp, t = topic, h = handler} end

local function index_add(id, fat, st, fp, topic, handler)
  redis.call('ZADD', P .. 'all', fat, id)
  redis.call('ZADD', P .. 's:' .. st, fat, id)
  local vals = dimvals(fp, topic, handler)
  for _, d in ipairs(DIMS) do
    local k = vals[d]
    redis.call('ZADD', P .. 'i:' .. d .. ':' .. k, fat, id)
    if st == 'new' then redis.call('ZADD', P .. 'n:' .. d .. ':' .. k, fat, id) end
    local g = P .. 'g:' .. d .. ':' .. k
    redis.call('HINCRBY', g, 'c', 1)
    redis.call('HINCRBY', g, 's:' .. st, 1)
    redis.call('HINCRBY', g, 't:' .. topic, 1)
    redis.call('HINCRBY', g, 'h:' .. handler, 1)
    redis.call('SADD', P .. 'k:' .. d, k)
    redis.call('ZINCRBY', P .. 'o:c:' .. d, -1, k)
    redis.call('ZADD', P .. 'o:l:' .. d, 'LT', -tonumber(fat), k)
  end
end

local function index_del(id)
  local v = redis.call('HMGET', rk(id), 'fat', 'st', 'fp', 'topic', 'handler')
  if not v[1] then return 0 end
  local st, topic, handler = v[2], v[4], v[5]
  redis.call('ZREM', P .. 'all', id)
  redis.call('ZREM', P .. 's:' .. st, id)
  local vals = dimvals(v[3], topic, handler)
  for _, d in ipairs(DIMS) do
    local k = vals[d]
    redis.call('ZREM', P .. 'i:' .. d .. ':' .. k, id)
    if st == 'new' then redis.call('ZREM', P .. 'n:' .. d .. ':' .. k, id) end
    local g = P .. 'g:' .. d .. ':' .. k
    if redis.call('HINCRBY', g, 'c', -1) <= 0 then
      redis.call('DEL', g)
      redis.call('SREM', P .. 'k:' .. d, k)
      redis.call('ZREM', P .. 'o:c:' .. d, k)
      redis.call('ZREM', P .. 'o:l:' .. d, k)
    else
      redis.call('ZINCRBY', P .. 'o:c:' .. d, 1, k)
      local last = redis.call('ZRANGE', P .. 'i:' .. d .. ':' .. k, -1, -1, 'WITHSCORES')
      redis.call('ZADD', P .. 'o:l:' .. d, -tonumber(last[2]), k)
      hdecr(g, 's:' .. st)
      hdecr(g, 't:' .. topic)
      hdecr(g, 'h:' .. handler)
    end
  end
  redis.call('DEL', rk(id))
  redis.call('DEL', P .. 'e:' .. id)
  return 1
end

-- set_status moves a letter between the status indexes; v is
-- HMGET fat st fp topic handler.
local function set_status(id, v, new)
  local fat, old = v[1], v[2]
  if old == new then return end
  redis.call('ZREM', P .. 's:' .. old, id)
  redis.call('ZADD', P .. 's:' .. new, fat, id)
  local vals = dimvals(v[3], v[4], v[5])
  for _, d in ipairs(DIMS) do
    local k = vals[d]
    if old == 'new' then redis.call('ZREM', P .. 'n:' .. d .. ':' .. k, id) end
    if new == 'new' then redis.call('ZADD', P .. 'n:' .. d .. ':' .. k, fat, id) end
    local g = P .. 'g:' .. d .. ':' .. k
    hdecr(g, 's:' .. old)
    redis.call('HINCRBY', g, 's:' .. new, 1)
  end
  redis.call('HSET', rk(id), 'st', new)
end
`

// addScript records letters. ARGV: prefix, then per letter a field count
// n and n field/value pairs. A letter whose record exists is skipped.
// Returns how many were new.
var addScript = redis.NewScript(prelude + `
local i, added = 2, 0
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local f = {}
  local args = {}
  for j = 1, n do
    local name, value = ARGV[i + 2*j - 1], ARGV[i + 2*j]
    f[name] = value
    args[#args + 1] = name
    args[#args + 1] = value
  end
  i = i + 2*n + 1
  local key = rk(f['id'])
  if redis.call('EXISTS', key) == 0 then
    -- in chunks: unpack of more than about 8,000 values fails ("too many
    -- results to unpack"), which a letter of 4,000 metadata keys reached
    for j = 1, #args, 1000 do
      redis.call('HSET', key, unpack(args, j, math.min(j + 999, #args)))
    end
    index_add(f['id'], f['fat'], f['st'], f['fp'], f['topic'], f['handler'])
    added = added + 1
  end
end
return added
`)

// scanScript walks a sorted index in replay order (failed-at, then ID
// bytewise) and applies a filter and an action to each letter.
//
// ARGV: prefix, mode, source ("z": the index key in ARGV[4]; "l": an ID
// list in ARGV[19..]), key, min score, max score ("(x" exclusive), cursor
// score (empty: none), cursor ID, want (matches to stop at), budget
// (entries to scan at most), fingerprint, topic, handler, DLQ topic
// (empty: any), statuses (comma list, empty: any), then per mode: claim:
// owner, now, lease end; set: status; agg: dimension (f, t or h), window
// start (empty: none), option (empty; '#': slim rows).
//
// Modes: full (return records), agg (fold the letters into one partial
// group per key: {key, count, new, replayed, archived, in window, first,
// last, oldest new or empty, sample error, sample class, topics,
// handlers}; slim: {key, count, last}), claim (claim and return
// records), set (set status, return count).
//
// Returns {last score, last ID, done (1 when the index is exhausted),
// count, items...}.
var scanScript = redis.NewScript(prelude + `
local mode, src, key = ARGV[2], ARGV[3], ARGV[4]
local lo, hi = ARGV[5], ARGV[6]
local aS, aId = nil, ARGV[8]
if ARGV[7] ~= '' then aS = tonumber(ARGV[7]) end
local want, budget = tonumber(ARGV[9]), tonumber(ARGV[10])
local ffp, ftopic, fhandler, fdlqt = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local fst = nil
if ARGV[15] ~= '' then
  fst = {}
  for s in string.gmatch(ARGV[15], '[^,]+') do fst[s] = true end
end
local owner, now, till = ARGV[16], tonumber(ARGV[17]), ARGV[18]
local target = ARGV[16]
local adim, awin, aopt = ARGV[16], tonumber(ARGV[17]), ARGV[18]
local groups, gorder = {}, {}
-- agg option '#' folds each group's count and newest failure only
local slim = mode == 'agg' and aopt == '#'

local items, matched, scanned = {}, 0, 0
local lastS, lastId = ARGV[7], ARGV[8]

local function visit(id)
  local key = rk(id)
  local v = redis.call('HMGET', key, 'fat', 'st', 'fp', 'topic', 'handler', 'dlqt', 'co', 'cu', 'err', 'ecl')
  if not v[1] then return end
  if ffp ~= '' and v[3] ~= ffp then return end
  if ftopic ~= '' and v[4] ~= ftopic then return end
  if fhandler ~= '' and v[5] ~= fhandler then return end
  if fdlqt ~= '' and v[6] ~= fdlqt then return end
  if fst and not fst[v[2]] then return end
  if mode == 'full' then
    items[#items + 1] = redis.call('HGETALL', key)
  elseif mode == 'agg' then
    local k = v[3]
    if adim == 't' then k = v[4] elseif adim == 'h' then k = v[5] end
    local g = groups[k]
    if slim then
      if not g then
        g = {c = 0}
        groups[k] = g
        gorder[#gorder + 1] = k
      end
      g.c, g.last = g.c + 1, v[1]
      matched = matched + 1
      return
    end
    if not g then
      g = {c = 0, new = 0, replayed = 0, archived = 0, w = 0, first = v[1], oldest = '', topics = {}, handlers = {}}
      groups[k] = g
      gorder[#gorder + 1] = k
    end
    g.c = g.c + 1
    g[v[2]] = (g[v[2]] or 0) + 1
    if v[2] == 'new' and g.oldest == '' then g.oldest = v[1] end
    if awin and tonumber(v[1]) >= awin then g.w = g.w + 1 end
    g.last, g.err, g.ecl = v[1], v[9] or '', v[10] or ''
    g.topics[v[4]] = true
    g.handlers[v[5]] = true
  elseif mode == 'claim' then
    if v[7] and tonumber(v[8]) > now then return end
    redis.call('HSET', key, 'co', owner, 'cu', till)
    items[#items + 1] = redis.call('HGETALL', key)
  elseif mode == 'set' then
    if v[7] or v[2] == target then return end
    set_status(id, v, target)
  end
  matched = matched + 1
end

local done = 0
if src == 'l' then
  for i = 19, #ARGV do
    if matched >= want then break end
    visit(ARGV[i])
  end
  done = 1
else
  local min = lo
  if aS ~= nil and (lo == '-inf' or aS >= tonumber(lo)) then min = ARGV[7] end
  local off, size = 0, 8
  while matched < want and scanned < budget do
    -- pages grow from what is still wanted, so a small Limit reads a
    -- small page and a selective filter soon reads large ones
    size = math.min(256, math.max(size * 2, want - matched))
    local n = math.min(size, budget - scanned)
    local page = redis.call('ZRANGE', key, min, hi, 'BYSCORE', 'LIMIT', off, n, 'WITHSCORES')
    local got = #page / 2
    local stopped = false
    for i = 1, #page, 2 do
      local id, sc = page[i], page[i + 1]
      local s = tonumber(sc)
      if aS == nil or s > aS or (s == aS and bless(aId, id)) then
        scanned = scanned + 1
        lastS, lastId = sc, id
        visit(id)
        -- a status change can take the letter out of the index walked:
        -- the next page then starts one entry earlier
        if mode == 'set' and not redis.call('ZSCORE', key, id) then off = off - 1 end
        if matched >= want or scanned >= budget then
          stopped = i + 1 < #page
          break
        end
      end
    end
    off = off + got
    if got < n and not stopped then done = 1 break end
  end
end
local out = {lastS, lastId, done, matched}
if mode == 'set' then return out end
if slim then
  for _, k in ipairs(gorder) do out[#out + 1] = {k, groups[k].c, groups[k].last} end
  return out
end
if mode == 'agg' then
  for _, k in ipairs(gorder) do
    local g = groups[k]
    local topics, handlers = {}, {}
    for t in pairs(g.topics) do topics[#topics + 1] = t end
    for h in pairs(g.handlers) do handlers[#handlers + 1] = h end
    out[#out + 1] = {k, g.c, g.new, g.replayed, g.archived, g.w, g.first, g.last, g.oldest, g.err, g.ecl, topics, handlers}
  end
  return out
end
for _, it in ipairs(items) do out[#out + 1] = it end
return out
`)

// finishScript ends a claim. ARGV: prefix, op ('mark' or 'release'), ID,
// owner, then mark: replay UUID, replayed-at (µs); release: reason.
// Returns 'ok', 'notfound' or 'lost'. Repeating a completed call (a
// client retry after a lost reply) returns 'ok' again.
var finishScript = redis.NewScript(prelude + `
local op, id, owner = ARGV[2], ARGV[3], ARGV[4]
local key = rk(id)
local v = redis.call('HMGET', key, 'fat', 'st', 'fp', 'topic', 'handler', 'co', 'rpid', 'rsn')
if not v[1] then return 'notfound' end
if v[6] ~= owner then
  if not v[6] and op == 'mark' and v[2] == 'replayed' and v[7] == ARGV[5] then return 'ok' end
  if not v[6] and op == 'release' and v[8] == ARGV[5] then return 'ok' end
  return 'lost'
end
if op == 'mark' then
  set_status(id, v, 'replayed')
  redis.call('HSET', key, 'rpid', ARGV[5], 'rpat', ARGV[6], 'rsn', '')
else
  redis.call('HSET', key, 'rsn', ARGV[5])
end
redis.call('HDEL', key, 'co', 'cu')
return 'ok'
`)

// pruneScript deletes up to ARGV[4] letters. ARGV: prefix, op ('age' or
// 'count'), bound (age: delete failed-at < bound µs; count: keep this
// many), chunk. Returns how many it deleted.
var pruneScript = redis.NewScript(prelude + `
local op, bound, chunk = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ids
if op == 'age' then
  ids = redis.call('ZRANGE', P .. 'all', '-inf', '(' .. bound, 'BYSCORE', 'LIMIT', 0, chunk)
else
  local excess = redis.call('ZCARD', P .. 'all') - tonumber(bound)
  if excess <= 0 then return 0 end
  ids = redis.call('ZRANGE', P .. 'all', 0, math.min(excess, chunk) - 1)
end
local n = 0
for _, id in ipairs(ids) do n = n + index_del(id) end
return n
`)
