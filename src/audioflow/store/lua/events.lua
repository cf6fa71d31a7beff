-- What a watcher at a cursor gets next (read-only).
-- ARGV[7] the cursor (a stream id, or "0"); ARGV[8] the version of the event at the
-- cursor, or "" when the watcher does not know it; ARGV[9] most entries to return.
-- Returns { 'OK', entries after the cursor, the job's status or false }, or, when
-- events after the cursor may have been trimmed away, { 'RESYNC', the job's fields,
-- the newest event id }.
--
-- The stream is trimmed from its old end, so a watcher misses nothing while its cursor
-- is at or after the oldest event kept. Before that, the oldest event kept must follow
-- the cursor's event directly (version + 1) or start a job's history ("created");
-- otherwise events in between are gone and the watcher gets the job's whole state, or,
-- when the job is gone too (deleted: its stream outlives it for a minute), no entries
-- and no status, so that the watch ends as MemoryJobStore's does, instead of going on
-- past the gap as if nothing were missing.
local cursor, known = ARGV[7], tonumber(ARGV[8])
local status = redis.call('HGET', job, 'status')

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-?(%d*)$')
  return tonumber(ms) or 0, tonumber(seq) or 0
end

local function before(a, b)  -- stream id a < b
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local first = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
if #first > 0 and before(cursor, first[1][1]) then
  local fields = first[1][2]
  local kind, version = nil, nil
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'kind' then kind = fields[i + 1] end
    if fields[i] == 'version' then version = tonumber(fields[i + 1]) end
  end
  -- (a "deleted" event repeats the version of the write before it)
  local follows = known ~= nil
    and (version == known + 1 or (kind == 'deleted' and version == known))
  if kind ~= 'created' and not follows then
    if not status then return { 'OK', {}, false } end
    local last = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
    return { 'RESYNC', redis.call('HGETALL', job), last[1][1] }
  end
end
local entries = redis.call('XRANGE', events, '(' .. cursor, '+', 'COUNT', tonumber(ARGV[9]))
return { 'OK', entries, status }
