package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts run atomically in Redis: no other command interleaves
// with one, so an append, its index entries and its retention are one step
// that every node observes at once, and the XADD is what wakes every
// node's XREAD BLOCK.
//
// Every script gets the same KEYS (see keys.list) and the same first five
// ARGV:
//
//	ARGV[1] prefix of the per-topic list keys ("{tag}:t:")
//	ARGV[2] a fresh random epoch, used if the script must start a new one
//	ARGV[3] the epoch of the caller's high-water mark
//	ARGV[4] the caller's high-water mark: the highest seq it has seen in that epoch
//	ARGV[5] the caller's clock, Unix milliseconds (for age retention)
//
// The per-topic list keys are derived from ARGV[1] and a topic; they share
// the hash tag of KEYS, so they live in the same Cluster slot.
const prelude = `
local meta, log, ids, dup, ret, tb, tlim, texp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local tprefix = ARGV[1]
local now = tonumber(ARGV[5])
local budget = 1000

local function seqstr(n) return string.format('%d', n) end

-- reset empties the log and every index: a new epoch starts empty.
local function reset(epoch, seq)
  for _, t in ipairs(redis.call('HKEYS', tlim)) do redis.call('DEL', tprefix .. t) end
  redis.call('DEL', meta, log, ids, dup, ret, tb, tlim, texp)
  redis.call('HSET', meta, 'epoch', epoch, 'seq', seq, 'bytes', 0)
end

-- current returns the epoch, starting a new one (with an empty log) when
-- there is none (the data was lost) or when the caller has seen a seq of
-- the current epoch that the counter no longer reaches (the data was
-- rolled back, e.g. restored from an older snapshot).
local function current()
  local ep = redis.call('HGET', meta, 'epoch')
  if not ep then
    reset(ARGV[2], 0)
    return ARGV[2]
  end
  if ep == ARGV[3] and tonumber(redis.call('HGET', meta, 'seq') or '0') < tonumber(ARGV[4]) then
    reset(ARGV[2], ARGV[4])
    return ARGV[2]
  end
  return ep
end

-- fields returns the ID, size, time (Unix ms) and topics of a log entry.
local function fields(entry)
  local f = entry[2]
  local id, size, ms = '', 0, 0
  local topics = {}
  for i = 1, #f, 2 do
    local k = f[i]
    if k == 'i' then id = f[i + 1]
    elseif k == 'n' then size = tonumber(f[i + 1])
    elseif k == 'm' then ms = tonumber(f[i + 1]) / 1e6
    elseif string.sub(k, 1, 1) == 't' then topics[#topics + 1] = f[i + 1]
    end
  end
  return id, size, ms, topics
end

-- index records that seq ss carries id: ids maps the id to "first last"
-- (the earliest and latest retained seq with it); dup links the seqs of a
-- reused id both ways ("n<seq>" next, "p<seq>" previous).
local function index(ss, id)
  local v = redis.call('HGET', ids, id)
  if not v then
    redis.call('HSET', ids, id, ss .. ' ' .. ss)
    return
  end
  local first, last = string.match(v, '^(%d+) (%d+)$')
  redis.call('HSET', dup, 'n' .. last, ss, 'p' .. ss, last)
  redis.call('HSET', ids, id, first .. ' ' .. ss)
end

-- unindex forgets that seq ss carries id, unlinking it wherever it is.
local function unindex(ss, id)
  local v = redis.call('HGET', ids, id)
  if not v then return end
  local first, last = string.match(v, '^(%d+) (%d+)$')
  local prev = redis.call('HGET', dup, 'p' .. ss)
  local nxt = redis.call('HGET', dup, 'n' .. ss)
  if prev then
    if nxt then redis.call('HSET', dup, 'n' .. prev, nxt) else redis.call('HDEL', dup, 'n' .. prev) end
  end
  if nxt then
    if prev then redis.call('HSET', dup, 'p' .. nxt, prev) else redis.call('HDEL', dup, 'p' .. nxt) end
  end
  if prev or nxt then redis.call('HDEL', dup, 'p' .. ss, 'n' .. ss) end
  if first == ss then first = nxt end
  if last == ss then last = prev end
  if first then
    redis.call('HSET', ids, id, first .. ' ' .. last)
  else
    redis.call('HDEL', ids, id)
  end
end

-- remove deletes a log entry and its index entries.
local function remove(entry)
  local ss = string.match(entry[1], '^(%d+)')
  local id, size, ms, topics = fields(entry)
  redis.call('XDEL', log, entry[1])
  redis.call('HINCRBY', meta, 'bytes', -size)
  unindex(ss, id)
  redis.call('HDEL', ret, ss)
  return ss, topics
end

-- settle updates the bookkeeping of topic t's list after it changed: its
-- head's expiry in texp, or no trace at all once the list is empty.
local function settle(t)
  local head = redis.call('LINDEX', tprefix .. t, 0)
  if not head then
    redis.call('HDEL', tb, t)
    redis.call('HDEL', tlim, t)
    redis.call('ZREM', texp, t)
    return
  end
  local maxAge = tonumber(string.match(redis.call('HGET', tlim, t) or '0 0 0', ' (%d+)$'))
  if maxAge > 0 then
    redis.call('ZADD', texp, tonumber(string.match(head, ' (%-?%d+)$')) + maxAge, t)
  else
    redis.call('ZREM', texp, t)
  end
end

-- trimTopic drops the oldest updates of topic t's list while the list
-- exceeds the topic's limits. A dropped update that no other topic
-- retains is deleted. keepLast keeps the newest even when too old (an
-- append never discards what it appends).
local function trimTopic(t, maxU, maxB, maxAge, keepLast)
  local key = tprefix .. t
  while budget > 0 do
    local n = redis.call('LLEN', key)
    if n == 0 or (keepLast and n == 1) then break end
    local head = redis.call('LINDEX', key, 0)
    local hs, hz, ht = string.match(head, '^(%d+) (%d+) (%-?%d+)$')
    local over = maxAge > 0 and now - tonumber(ht) > maxAge
    if not over and n > 1 then
      over = (maxU > 0 and n > maxU) or (maxB > 0 and tonumber(redis.call('HGET', tb, t) or '0') > maxB)
    end
    if not over then break end
    budget = budget - 1
    redis.call('LPOP', key)
    redis.call('HINCRBY', tb, t, -tonumber(hz))
    local r = redis.call('HGET', ret, hs)
    if r then
      if tonumber(r) <= 1 then
        local e = redis.call('XRANGE', log, hs .. '-0', hs .. '-0')
        if e[1] then remove(e[1]) else redis.call('HDEL', ret, hs) end
      else
        redis.call('HINCRBY', ret, hs, -1)
      end
    end
  end
  settle(t)
end

-- trimGlobal deletes the oldest updates while the log exceeds the global
-- limits. The lists of topic rules hold only retained updates, so a
-- deleted update is at the head of each list it is in.
local function trimGlobal(maxU, maxB, maxAge, keepLast)
  while budget > 0 do
    local n = redis.call('XLEN', log)
    if n == 0 or (keepLast and n == 1) then break end
    local over = (maxU > 0 and n > maxU) or (maxB > 0 and n > 1 and tonumber(redis.call('HGET', meta, 'bytes') or '0') > maxB)
    local e = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    if not over and maxAge > 0 then
      local _, _, ms = fields(e)
      over = now - ms > maxAge
    end
    if not over then break end
    budget = budget - 1
    local ss, topics = remove(e)
    for _, t in ipairs(topics) do
      local key = tprefix .. t
      local head = redis.call('LINDEX', key, 0)
      if head then
        local hs, hz = string.match(head, '^(%d+) (%d+)')
        if hs == ss then
          redis.call('LPOP', key)
          redis.call('HINCRBY', tb, t, -tonumber(hz))
          settle(t)
        end
      end
    end
  end
end
`

// appendScript appends one update. After the five common ARGV:
//
//	ARGV[6..8]  global MaxUpdates, MaxBytes, MaxAge (ms); 0 = no limit
//	ARGV[9]     the update's ID
//	ARGV[10]    its size (data, ID, type and topics, in bytes)
//	ARGV[11]    its time, Unix ms
//	ARGV[12]    F, the number of stream field pairs that follow
//	...         F field-value pairs (without "e", which the script adds)
//	then        "1" if a topic without a rule retains the update, else "0"
//	then        R, the number of distinct topics with a rule
//	...         R groups: topic, MaxUpdates, MaxBytes, MaxAge (ms)
//
// It returns {epoch, seq}.
var appendScript = redis.NewScript(prelude + `
local ep = current()
local ss = seqstr(tonumber(redis.call('HGET', meta, 'seq')) + 1)
local id, size, ms = ARGV[9], ARGV[10], ARGV[11]
local nf = tonumber(ARGV[12])
local args = {'XADD', log, ss .. '-0', 'e', ep}
for i = 13, 12 + 2 * nf do args[#args + 1] = ARGV[i] end
-- The XADD is the first write (unless current() started an epoch): if it
-- fails, nothing has changed.
redis.call(unpack(args))
redis.call('HSET', meta, 'seq', ss)
redis.call('HINCRBY', meta, 'bytes', size)
index(ss, id)
local k = 13 + 2 * nf
local pinned = ARGV[k] == '1'
local nr = tonumber(ARGV[k + 1])
k = k + 2
if nr > 0 and not pinned then redis.call('HSET', ret, ss, nr) end
for _ = 1, nr do
  local t, mu, mb, ma = ARGV[k], ARGV[k + 1], ARGV[k + 2], ARGV[k + 3]
  k = k + 4
  redis.call('RPUSH', tprefix .. t, ss .. ' ' .. size .. ' ' .. ms)
  redis.call('HINCRBY', tb, t, size)
  redis.call('HSET', tlim, t, mu .. ' ' .. mb .. ' ' .. ma)
  trimTopic(t, tonumber(mu), tonumber(mb), tonumber(ma), true)
end
trimGlobal(tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), true)
return {ep, ss}
`)

// sweepScript enforces the age limits while no updates arrive: the global
// limits (ARGV[6..8], as for appendScript) on the whole log, and each
// topic rule's limits, as recorded by the last append to the topic, on the
// topics whose oldest update has expired. It returns the epoch.
var sweepScript = redis.NewScript(prelude + `
local ep = current()
trimGlobal(tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), false)
for _, t in ipairs(redis.call('ZRANGEBYSCORE', texp, '-inf', now, 'LIMIT', 0, 100)) do
  local mu, mb, ma = string.match(redis.call('HGET', tlim, t) or '0 0 0', '^(%d+) (%d+) (%d+)$')
  trimTopic(t, tonumber(mu), tonumber(mb), tonumber(ma), false)
end
return ep
`)

// stateScript returns {epoch, last assigned seq, oldest retained seq,
// newest retained seq}, the last two "0" when the log is empty. Like every
// script it starts a new epoch when the data was lost or rolled back.
var stateScript = redis.NewScript(prelude + `
local ep = current()
local seq = redis.call('HGET', meta, 'seq') or '0'
local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
local function seqof(e) if e then return string.match(e[1], '^(%d+)') end return '0' end
return {ep, seq, seqof(first), seqof(last)}
`)
