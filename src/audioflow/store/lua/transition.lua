-- ARGV[4] target status (JSON); ARGV[5] allowed current statuses (JSON, space-separated)
-- ARGV[6] caller's lease token or ""
-- ARGV[7] lease mode: "keep", "drop", or "claim" (new lease, one more attempt)
-- ARGV[8] new lease token, ARGV[9] new lease expiry (epoch s), ARGV[10] new lease JSON
-- ARGV[11..] field/value pairs
local status = redis.call('HGET', job, 'status')
if not status then return { 'NOTFOUND' } end
local to, mode = ARGV[4], ARGV[7]
local allowed = false
for s in string.gmatch(ARGV[5], '%S+') do
  if s == status then allowed = true end
end
if not allowed then return { 'CONFLICT', status, '' } end
if ARGV[6] ~= '' then
  local problem = lease_problem(ARGV[6])
  if problem then return { 'LEASE', problem } end
elseif status == '"running"' and to == '"queued"' then
  local expires = redis.call('HGET', job, '_lease_expires')
  if expires and tonumber(expires) > now then
    return { 'CONFLICT', status, 'another worker holds a live lease' }
  end
end
local dropped = 0
local pairs = collect(11)
table.insert(pairs, 1, to)
table.insert(pairs, 1, 'status')
if mode == 'claim' then
  local attempts = redis.call('HINCRBY', job, 'attempts', 1)
  redis.call('HSET', job, '_lease_token', ARGV[8], '_lease_expires', ARGV[9])
  pairs[#pairs + 1] = 'lease'
  pairs[#pairs + 1] = ARGV[10]
  pairs[#pairs + 1] = 'attempts'
  pairs[#pairs + 1] = tostring(attempts)
elseif mode == 'drop' then
  dropped = redis.call('HDEL', job, '_lease_token', '_lease_expires') > 0 and 1 or 0
  pairs[#pairs + 1] = 'lease'
  pairs[#pairs + 1] = 'null'
end
redis.call('HSET', job, unpack(pairs))
local version = redis.call('HINCRBY', job, 'version', 1)
table.remove(pairs, 1)
table.remove(pairs, 1)
emit('transitioned', version, to, pairs)
refresh()
return { 'OK', status, redis.call('HGETALL', job), dropped }
