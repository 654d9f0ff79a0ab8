"""The Lua scripts of the snapshot store: the atomic flip and the one-call reads.

They read the byte layout of :mod:`bot.state.snapshot_format` (block offsets, the id hash, the
name index entries), which is the one place that defines it. Every key a script touches is
derived from ``KEYS[1]``'s book root, so all of them share the book's hash tag (one Redis
Cluster slot). Scripts use only ``string`` functions and Redis commands (no ``struct`` or
``cjson``), so the embedded store runs them too.
"""

from __future__ import annotations

from bot.state.snapshot_format import DIGITS, FENCE, HASH_MOD, NAME_BLOCK

#: Most accounts the export no longer lists that one `/churn` text reads (when no scored
#: account matches it).
UNLISTED_READ = 20

# Shared helpers. A snapshot's keys (S = <root>snap:<id>:): meta, shape ("B n M W nn": block
# size, accounts, id hashes, position width, name blocks), layout, top, k:<i>, d:<i>, i:<b>,
# nf (name block index) and n:<i>. The accounts its export no longer lists, when there are
# any, are a smaller book of the same layout under U = S .. 'u:' (no top lists; its layout is
# the export's newest date; a row's record is the date it was last listed).
_LIB = f"""
local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function shape_of(S)
  local t = redis.call('GET', S .. 'shape')
  if not t then return nil end
  local B, n, M, W, nn = string.match(t, '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
  return tonumber(B), tonumber(n), tonumber(M), tonumber(W), tonumber(nn)
end
local function data_keys(S, B, n, M, nn, unlisted)
  local keys = {{S .. 'shape', S .. 'layout'}}
  if not unlisted then keys[3] = S .. 'top' end
  for k = 0, math.ceil(n / B) - 1 do
    keys[#keys + 1] = S .. 'k:' .. k
    keys[#keys + 1] = S .. 'd:' .. k
  end
  for b = 0, M - 1 do keys[#keys + 1] = S .. 'i:' .. b end
  if nn > 0 then keys[#keys + 1] = S .. 'nf' end
  for k = 0, nn - 1 do keys[#keys + 1] = S .. 'n:' .. k end
  return keys
end
local function bucket(s, m)
  local h = 0
  for i = 1, #s do h = (h * 31 + string.byte(s, i)) % {HASH_MOD} end
  return h % m
end
local function position(S, M, aid)
  local p = redis.call('HGET', S .. 'i:' .. bucket(aid, M), aid)
  if p then return tonumber(p) end
  return nil
end
"""

# Makes a staged snapshot visible. Idempotent for the same id, so a retry after a lost reply
# neither pushes twice nor loses the ids to delete (they are recomputed from P:published).
FLIP = (
    _LIB
    + """
local history, latest, last_good, published = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base, id = ARGV[1], ARGV[2]
if not redis.call('LPOS', history, id) then
  local S = base .. id .. ':'
  local B, n, M, W, nn = shape_of(S)
  if not B then
    return redis.error_reply('STAGING_EXPIRED staged key ' .. S .. 'shape expired before the flip')
  end
  local staged = data_keys(S, B, n, M, nn, false)
  if ARGV[6] == '1' then
    local U = S .. 'u:'
    local uB, un, uM, _, unn = shape_of(U)
    if not uB then
      local lost = 'STAGING_EXPIRED staged key ' .. U .. 'shape'
      return redis.error_reply(lost .. ' expired before the flip')
    end
    for _, key in ipairs(data_keys(U, uB, un, uM, unn, true)) do
      staged[#staged + 1] = key
    end
  end
  for _, key in ipairs(staged) do
    if redis.call('EXISTS', key) == 0 then
      return redis.error_reply('STAGING_EXPIRED staged key ' .. key .. ' expired before the flip')
    end
  end
  for _, key in ipairs(staged) do redis.call('PERSIST', key) end
  redis.call('SET', S .. 'meta', ARGV[3])
  redis.call('SADD', published, id)
  redis.call('RPUSH', history, id)
  redis.call('SET', latest, id)
  if ARGV[4] == '1' then redis.call('SET', last_good, id) end
  local excess = redis.call('LLEN', history) - tonumber(ARGV[5])
  if excess > 0 then redis.call('LTRIM', history, excess, -1) end
end
local keep = {}
for _, kept in ipairs(redis.call('LRANGE', history, 0, -1)) do keep[kept] = true end
local good = redis.call('GET', last_good)
if good then keep[good] = true end
local dropped = {}
for _, old in ipairs(redis.call('SMEMBERS', published)) do
  if not keep[old] then table.insert(dropped, old) end
end
return dropped
"""
)

# Resolves a snapshot and reads from it in one atomic step.
# KEYS: latest, last_good, killswitch, history.
# ARGV: snap base, mode (latest | last_good | serving | id), snapshot id (mode id), the id whose
# layout the caller holds, op, op arguments...
# Reply: {switch record} if nothing is pointed to, {switch, id} if the snapshot is gone,
# else {switch, id, meta, layout or false, op results...}. A row is {risk, account id, data row}.
READ = (
    _LIB
    + f"""
local DIGITS = '{DIGITS}'
local VALUE = {{}}
for i = 1, #DIGITS do VALUE[string.byte(DIGITS, i)] = i - 1 end

local function row(S, B, n, pos)
  local k, j = math.floor(pos / B), pos % B
  local c = math.min(B, n - k * B)
  local kb, db = S .. 'k:' .. k, S .. 'd:' .. k
  local risk = redis.call('GETRANGE', kb, 4 + 8 * j, 11 + 8 * j)
  local o = redis.call('GETRANGE', kb, 4 + 8 * c + 4 * j, 11 + 8 * c + 4 * j)
  local ids = 8 + 12 * c
  local aid = redis.call('GETRANGE', kb, ids + u32(o, 1), ids + u32(o, 5) - 1)
  local d = redis.call('GETRANGE', db, 4 + 4 * j, 11 + 4 * j)
  local rows = 8 + 4 * c
  return {{risk, aid, redis.call('GETRANGE', db, rows + u32(d, 1), rows + u32(d, 5) - 1)}}
end

local function history(aid, count)
  local out = {{}}
  if count <= 0 then return out end
  for _, sid in ipairs(redis.call('LRANGE', KEYS[4], -count, -1)) do
    local T = ARGV[1] .. sid .. ':'
    local meta = redis.call('GET', T .. 'meta')
    if meta then
      local B, n, M = shape_of(T)
      local p = position(T, M, aid)
      if p then
        local k, j = math.floor(p / B), p % B
        out[#out + 1] = {{meta, redis.call('GETRANGE', T .. 'k:' .. k, 4 + 8 * j, 11 + 8 * j)}}
      end
    end
  end
  return out
end

-- Positions of names with a word starting with q (index entries are cut to the indexed
-- length, the caller checks the whole name). At most cap positions; true if more exist.
local function scan(S, W, q, cap, seen, found, exact)
  local limit = math.ceil(cap / {NAME_BLOCK}) + 2
  local blocks = redis.call('ZREVRANGEBYLEX', S .. 'nf', '(' .. q, '-', 'LIMIT', 0, 1)
  local after = redis.call('ZRANGEBYLEX', S .. 'nf', '[' .. q, '+', 'LIMIT', 0, limit)
  local more = false
  for i, m in ipairs(after) do
    if string.sub(m, 1, #q) ~= q then break end
    blocks[#blocks + 1] = m
    if i == limit then more = true end
  end
  local whole = q .. '\\30'
  for _, m in ipairs(blocks) do
    local text = redis.call('GET', S .. 'n:' .. string.match(m, '{FENCE}(%d+)$'))
    for e in string.gmatch(text, '[^\\n]+') do
      if string.sub(e, 1, #q) == q then
        local p = 0
        for i = #e - W + 1, #e do p = p * 64 + VALUE[string.byte(e, i)] end
        if exact and #e == #whole + W and string.sub(e, 1, #whole) == whole then
          exact[#exact + 1] = p
        end
        if not seen[p] then
          if #found >= cap then return true end
          seen[p] = true
          found[#found + 1] = p
        end
      end
    end
  end
  return more
end

local switch = {{}}
local mode, id = ARGV[2], ARGV[3]
if mode == 'serving' then
  switch = redis.call('HGETALL', KEYS[3])
  mode = (redis.call('HGET', KEYS[3], 'on') == '1') and 'last_good' or 'latest'
end
if mode == 'latest' then id = redis.call('GET', KEYS[1]) end
if mode == 'last_good' then id = redis.call('GET', KEYS[2]) end
if not id then return {{switch}} end
local S = ARGV[1] .. id .. ':'
local meta = redis.call('GET', S .. 'meta')
if not meta then return {{switch, id}} end
local layout = false
if ARGV[4] ~= id then layout = redis.call('GET', S .. 'layout') end
local reply = {{switch, id, meta, layout}}
local B, n, M, W = shape_of(S)
local op = ARGV[5]
if op == 'card' then
  local p = position(S, M, ARGV[6])
  reply[5] = p and row(S, B, n, p) or false
  reply[6] = p and history(ARGV[6], tonumber(ARGV[7])) or {{}}
elseif op == 'top' then
  -- ARGV[6]: rows wanted from each list; ARGV[7..]: the top lists, one reply entry each.
  local wanted = tonumber(ARGV[6])
  for f = 7, #ARGV do
    local rows = {{}}
    local packed = redis.call('HGET', S .. 'top', ARGV[f])
    if packed then
      for i = 1, math.min(#packed / 4, wanted) do
        rows[i] = row(S, B, n, u32(packed, 4 * i - 3))
      end
    end
    reply[f - 2] = rows
  end
elseif op == 'history' then
  reply[5] = history(ARGV[6], tonumber(ARGV[7]))
elseif op == 'find' then
  -- ARGV[6..]: variants count, the id variants, wanted (cut), cap, history count, probe cap,
  -- probes count, probes.
  local v = tonumber(ARGV[6])
  local at = 7 + v
  local wanted, cap, count = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local probe_cap, probes = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])
  local seen, found, exact = {{}}, {{}}, {{}}
  local by_id = false
  for i = 7, 6 + v do
    local p = position(S, M, ARGV[i])
    if p then
      by_id = row(S, B, n, p)
      seen[p] = true
      break
    end
  end
  local more = false
  if wanted ~= '' then more = scan(S, W, wanted, cap, seen, found, exact) end
  local rows, close = {{}}, {{}}
  for i, p in ipairs(found) do rows[i] = row(S, B, n, p) end
  -- Nothing scored matches: the accounts the export no longer lists, by id, else by name
  -- (only then, so a hit costs nothing more); the closest names when none of them matches.
  local gone, gone_by_id, newest = {{}}, 0, false
  if not by_id and #found == 0 then
    local U = S .. 'u:'
    local uB, un, uM, uW = shape_of(U)
    if uB then
      for i = 7, 6 + v do
        local p = position(U, uM, ARGV[i])
        if p then
          gone[1] = row(U, uB, un, p)
          gone_by_id = 1
          break
        end
      end
      if #gone == 0 and wanted ~= '' then
        local near = {{}}
        scan(U, uW, wanted, {UNLISTED_READ}, {{}}, near, nil)
        for i, p in ipairs(near) do gone[i] = row(U, uB, un, p) end
      end
      if #gone > 0 then newest = redis.call('GET', U .. 'layout') end
    end
    if #gone == 0 then
      for i = at + 5, at + 4 + probes do
        local near = {{}}
        scan(S, W, ARGV[i], probe_cap, seen, near, nil)
        for _, p in ipairs(near) do close[#close + 1] = row(S, B, n, p) end
      end
    end
  end
  -- The trend of the account the answer most likely shows: by id, else the one exact name,
  -- else the only match. The caller reads it again if it shows another.
  local target = false
  if by_id then
    target = by_id[2]
  elseif #exact == 1 then
    target = row(S, B, n, exact[1])[2]
  elseif #rows == 1 then
    target = rows[1][2]
  end
  reply[5] = by_id
  reply[6] = rows
  reply[7] = more and 1 or 0
  reply[8] = close
  reply[9] = target
  reply[10] = target and history(target, count) or {{}}
  reply[11] = gone
  reply[12] = gone_by_id
  reply[13] = newest
end
return reply
"""
)

# Writes a batch of a staged snapshot's id hashes, each with the staging TTL, atomically (so a
# hash never exists without its TTL). KEYS: the hashes (a leftover of an earlier attempt is
# dropped first); ARGV[1]: the TTL; ARGV[i + 1]: KEYS[i]'s entries as "id\31position\30"...
# A hash no account fell in gets a placeholder field (the flip checks every hash exists).
# Reply: how many fields were added (the distinct ids).
WRITE_IDS = """
local added = 0
for i, key in ipairs(KEYS) do
  redis.call('UNLINK', key)
  local fields = {}
  for id, pos in string.gmatch(ARGV[i + 1], '([^\\31]+)\\31(%d+)\\30') do
    fields[#fields + 1] = id
    fields[#fields + 1] = pos
    if #fields == 200 then
      added = added + redis.call('HSET', key, unpack(fields))
      fields = {}
    end
  end
  if #fields > 0 then
    added = added + redis.call('HSET', key, unpack(fields))
  elseif redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, '', '')
  end
  redis.call('EXPIRE', key, ARGV[1])
end
return added
"""
