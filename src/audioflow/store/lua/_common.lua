-- Shared prelude of every per-job script (prepended when the script is loaded).
-- Every per-job script touches only its own job's keys, which share the hash tag
-- {<id>}, so it runs unchanged on Redis Cluster.
--   KEYS[1] the job hash (one JSON value per record field, one per checkpoint window,
--           plus private "_" fields)
--   KEYS[2] the job's capped change stream
--   ARGV[1] now, epoch seconds (the client's clock; leases compare against it)
--   ARGV[2] TTL in milliseconds, or "" to keep the job forever
--   ARGV[3] approximate cap of the change stream
--   ARGV[4] operation id "<client>:<seq>": a client's writes carry rising seqs, so a
--           write the client sends again (its reply was lost) is recognised, not redone
--   ARGV[5] most bytes the job's public fields may hold together
--   ARGV[6] fields (space-separated) whose values are too large to copy into the event
-- Script-specific arguments start at ARGV[7].
local job, events = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local ttl = ARGV[2]
local maxlen = ARGV[3]
local op_client, op_seq = string.match(ARGV[4], '^(.*):(%d+)$')
op_seq = tonumber(op_seq) or 0
local op_field = '_op:' .. (op_client or '')
local max_bytes = tonumber(ARGV[5])
local omit = {}
for name in string.gmatch(ARGV[6], '%S+') do omit[name] = true end
local TERMINAL = { ['"completed"'] = true, ['"cancelled"'] = true }
local WINDOW = 'checkpoint:'

local function refresh()
  if ttl == '' then
    redis.call('PERSIST', job)
    redis.call('PERSIST', events)
  else
    redis.call('PEXPIRE', job, ttl)
    redis.call('PEXPIRE', events, ttl)
  end
end

-- What the checks of a write need, in one read; status is false when there is no job.
local function state()
  local f = redis.call(
    'HMGET', job, 'status', 'version', '_bytes', op_field, '_lease_token', '_lease_expires'
  )
  return {
    status = f[1], version = tonumber(f[2]) or 0, bytes = f[3], op = f[4],
    token = f[5], expires = f[6],
  }
end

-- The reply this client's operation got the first time, if it already ran: a retried
-- write reports what happened instead of running again. UNKNOWN when a later write of
-- the same client is recorded: this one was processed before it, but whether it was
-- applied or refused is gone (the client keeps two writes to one job out of one
-- pipeline, so a retry should never meet this).
local UNKNOWN = { 'UNKNOWN' }
local function replayed(st)
  if not st.op then return nil end
  local seq, reply = string.match(st.op, '^(%d+) ?(.*)$')
  seq = tonumber(seq)
  if seq == op_seq then return reply end
  if seq > op_seq then return UNKNOWN end
  return nil
end

-- nil when `token` holds the job's live lease, else why not.
local function lease_problem(st, token)
  if st.status ~= '"running"' or not st.token then return 'the job holds no lease' end
  if st.token ~= token then return 'another worker holds the lease' end
  if tonumber(st.expires) <= now then return 'the lease expired' end
  return nil
end

local function is_window(name) return string.sub(name, 1, #WINDOW) == WINDOW end

local function public(name)
  return string.sub(name, 1, 1) ~= '_' and name ~= 'version'
end

-- Bytes the job's public fields hold (kept in _bytes; counted once for older jobs).
local function size_now(st)
  if st.bytes then return tonumber(st.bytes) end
  local total = 0
  for _, name in ipairs(redis.call('HKEYS', job)) do
    if public(name) then total = total + redis.call('HSTRLEN', job, name) end
  end
  return total
end

-- The stored window fields (only when a whole checkpoint replaces them).
local function window_fields()
  local out = {}
  for _, name in ipairs(redis.call('HKEYS', job)) do
    if is_window(name) then out[#out + 1] = name end
  end
  return out
end

-- The pairs a write of a whole checkpoint deletes first: every stored window.
local function dels_for(pairs)
  for i = 1, #pairs, 2 do
    if pairs[i] == 'checkpoint' then return window_fields() end
  end
  return {}
end

-- Apply one write: delete the public fields `dels` and the private ones `forget`,
-- then set the public `pairs` and the `private` pairs (version, lease fields) in one
-- HSET, with _bytes and this operation's record (`reply`, what a retry gets). Nothing
-- is written when the job would pass max_bytes: returns the size it would have had.
local function commit(st, pairs, dels, private, reply, forget)
  local total = size_now(st)
  local gone = {}
  for _, name in ipairs(dels) do
    total = total - redis.call('HSTRLEN', job, name)
    gone[name] = true
  end
  for i = 1, #pairs, 2 do
    local old = 0
    if not gone[pairs[i]] then old = redis.call('HSTRLEN', job, pairs[i]) end
    total = total + #pairs[i + 1] - old
  end
  if total > max_bytes then return total end
  for _, name in ipairs(forget or {}) do dels[#dels + 1] = name end
  if #dels > 0 then redis.call('HDEL', job, unpack(dels)) end
  local all = { '_bytes', total, op_field, op_seq .. ' ' .. reply }
  for i = 1, #pairs do all[#all + 1] = pairs[i] end
  for i = 1, #private do all[#all + 1] = private[i] end
  redis.call('HSET', job, unpack(all))
  return nil
end

-- Append one change event: kind, version, status, then the written field/value pairs
-- (values too large to copy are named in "omitted" instead).
local function emit(kind, version, status, pairs, extra)
  local entry = { 'kind', kind, 'version', version, 'status', status }
  local omitted = {}
  for i = 1, #pairs, 2 do
    local name = pairs[i]
    local base = name
    if is_window(name) then base = 'checkpoint' end
    if omit[base] then
      if name == base then omitted[#omitted + 1] = name end
    else
      entry[#entry + 1] = name
      entry[#entry + 1] = pairs[i + 1]
    end
  end
  if #omitted > 0 then
    entry[#entry + 1] = '_omitted'
    entry[#entry + 1] = table.concat(omitted, ' ')
  end
  for i = 1, #(extra or {}) do entry[#entry + 1] = extra[i] end
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', unpack(entry))
end

local function collect(first)
  local pairs = {}
  for i = first, #ARGV do pairs[#pairs + 1] = ARGV[i] end
  return pairs
end

-- The checks a write of fields (update, add_windows) makes first, in order: the job
-- exists; a retry gets its first outcome (the new version); a lease token must hold
-- the live lease (so a writer whose token no longer holds the job learns that first);
-- a terminal job takes no writes. Returns the reply to give, or nil.
local function writable(st, token)
  if not st.status then return { 'NOTFOUND' } end
  local again = replayed(st)
  if again == UNKNOWN then return UNKNOWN end
  if again then return { 'OK', tonumber(again) or st.version } end
  if token ~= '' then
    local problem = lease_problem(st, token)
    if problem then return { 'LEASE', problem } end
  end
  if TERMINAL[st.status] then return { 'TERMINAL', st.status } end
  return nil
end
