-- Requeue (or fail) one job whose lease expired.
-- ARGV[7] max attempts; ARGV[8] now (JSON datetime)
local f = redis.call('HMGET', job, 'status', '_lease_expires', 'attempts')
if not f[1] then return { 'GONE' } end
local again = replayed()
if again == UNKNOWN then return UNKNOWN end
if again then return { 'OK', f[1], redis.call('HGETALL', job) } end
if f[1] ~= '"running"' or not f[2] then return { 'GONE' } end
if tonumber(f[2]) > now then return { 'LIVE', f[2] } end
local attempts = tonumber(f[3]) or 0
local to, pairs
if attempts >= tonumber(ARGV[7]) then
  to = '"failed"'
  -- the same message as audioflow.store._rules.lease_expired_error
  local err = cjson.encode({
    type = 'LeaseExpired',
    message = "the job's lease expired on attempt " .. attempts .. ' of ' .. ARGV[7]
      .. ': its worker stopped renewing it (crashed, killed or stalled), '
      .. 'so it is not retried again',
  })
  pairs = { 'error', err, 'finished_at', ARGV[8], 'lease', 'null' }
else
  to = '"queued"'
  pairs = { 'finished_at', 'null', 'lease', 'null' }
end
local written = { 'status', to }
for i = 1, #pairs do written[#written + 1] = pairs[i] end
write(written)  -- a few bytes: within any limit a job already met
redis.call('HDEL', job, '_lease_token', '_lease_expires')
local version = redis.call('HINCRBY', job, 'version', 1)
record('')
emit('transitioned', version, to, pairs)
refresh()
return { 'OK', to, redis.call('HGETALL', job) }
