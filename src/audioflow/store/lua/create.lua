-- ARGV[7] "1" to replace an existing job; ARGV[8] lease token and ARGV[9] lease expiry
-- (epoch s) of a job created running, else ""; ARGV[10..] field/value pairs (every
-- field; the checkpoint as its key field plus one field per window).
local exists = redis.call('EXISTS', job) == 1
if exists then
  local again = replayed(state())
  if again == UNKNOWN then return UNKNOWN end
  if again then return { 'OK' } end
  if ARGV[7] ~= '1' then return { 'EXISTS' } end
end
local pairs = collect(10)
local total = 0
for i = 2, #pairs, 2 do total = total + #pairs[i] end
if total > max_bytes then return { 'TOOLARGE', total } end
if exists then
  redis.call('DEL', job)  -- replace: the history stays, so watchers see the new job
else
  redis.call('DEL', events)  -- a new job (maybe a deleted one's id) starts a new history
end
local all = { 'version', 1, '_bytes', total, op_field, op_seq .. ' ' }
for i = 1, #pairs do all[#all + 1] = pairs[i] end
if ARGV[8] ~= '' then
  all[#all + 1] = '_lease_token'
  all[#all + 1] = ARGV[8]
  all[#all + 1] = '_lease_expires'
  all[#all + 1] = ARGV[9]
end
redis.call('HSET', job, unpack(all))
emit('created', 1, redis.call('HGET', job, 'status'), pairs)
refresh()
return { 'OK' }
