-- Shared prelude of every per-job script (prepended when the script is loaded).
-- Every per-job script touches only its own job's keys, which share the hash tag
-- {<id>}, so it runs unchanged on Redis Cluster.
--   KEYS[1] the job hash (one JSON value per record field, plus private "_" fields)
--   KEYS[2] the job's capped change stream
--   ARGV[1] now, epoch seconds (the client's clock; leases compare against it)
--   ARGV[2] TTL in milliseconds, or "" to keep the job forever
--   ARGV[3] approximate cap of the change stream
local job, events = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local ttl = ARGV[2]
local maxlen = ARGV[3]
local TERMINAL = { ['"completed"'] = true, ['"cancelled"'] = true }

local function refresh()
  if ttl == '' then
    redis.call('PERSIST', job)
    redis.call('PERSIST', events)
  else
    redis.call('PEXPIRE', job, ttl)
    redis.call('PEXPIRE', events, ttl)
  end
end

-- Append one change event: kind, version, status, then the written field/value pairs.
local function emit(kind, version, status, pairs)
  local entry = { 'kind', kind, 'version', version, 'status', status }
  for i = 1, #pairs do entry[#entry + 1] = pairs[i] end
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', unpack(entry))
end

-- nil when `token` holds the job's live lease, else why not.
local function lease_problem(token)
  local f = redis.call('HMGET', job, 'status', '_lease_token', '_lease_expires')
  if f[1] ~= '"running"' or not f[2] then return 'the job holds no lease' end
  if f[2] ~= token then return 'another worker holds the lease' end
  if tonumber(f[3]) <= now then return 'the lease expired' end
  return nil
end

local function collect(first)
  local pairs = {}
  for i = first, #ARGV do pairs[#pairs + 1] = ARGV[i] end
  return pairs
end
