-- ARGV[7] target status (JSON); ARGV[8] allowed current statuses (JSON, space-separated)
-- ARGV[9] caller's lease token or ""
-- ARGV[10] lease mode: "keep", "drop", or "claim" (new lease, one more attempt)
-- ARGV[11] new lease token, ARGV[12] new lease expiry (epoch s), ARGV[13] new lease JSON
-- ARGV[14..] field/value pairs
local status = redis.call('HGET', job, 'status')
if not status then return { 'NOTFOUND' } end
local again = replayed()
if again == UNKNOWN then return UNKNOWN end
if again then
  local prev, dropped = string.match(again, '^(%S*) ?(%d*)$')
  if prev == nil or prev == '' then prev = status end
  return { 'OK', prev, redis.call('HGETALL', job), tonumber(dropped) or 0 }
end
local to, mode = ARGV[7], ARGV[10]
if ARGV[9] ~= '' then  -- first: a stale token is the writer's real news
  local problem = lease_problem(ARGV[9])
  if problem then return { 'LEASE', problem } end
end
local allowed = false
for s in string.gmatch(ARGV[8], '%S+') do
  if s == status then allowed = true end
end
if not allowed then return { 'CONFLICT', status, '' } end
if ARGV[9] == '' and status == '"running"' and to == '"queued"' then
  local expires = redis.call('HGET', job, '_lease_expires')
  if expires and tonumber(expires) > now then
    return { 'CONFLICT', status, 'another worker holds a live lease' }
  end
end
local pairs = collect(14)
if mode == 'claim' then
  local attempts = tonumber(redis.call('HGET', job, 'attempts')) or 0
  pairs[#pairs + 1] = 'lease'
  pairs[#pairs + 1] = ARGV[13]
  pairs[#pairs + 1] = 'attempts'
  pairs[#pairs + 1] = tostring(attempts + 1)
elseif mode == 'drop' then
  pairs[#pairs + 1] = 'lease'
  pairs[#pairs + 1] = 'null'
end
local written = { 'status', to }
for i = 1, #pairs do written[#written + 1] = pairs[i] end
local too = write(written, dels_for(pairs))
if too then return { 'TOOLARGE', too } end
local dropped = 0
if mode == 'claim' then
  redis.call('HSET', job, '_lease_token', ARGV[11], '_lease_expires', ARGV[12])
elseif mode == 'drop' then
  dropped = redis.call('HDEL', job, '_lease_token', '_lease_expires') > 0 and 1 or 0
end
local version = redis.call('HINCRBY', job, 'version', 1)
record(status .. ' ' .. dropped)
emit('transitioned', version, to, pairs)
refresh()
return { 'OK', status, redis.call('HGETALL', job), dropped }
