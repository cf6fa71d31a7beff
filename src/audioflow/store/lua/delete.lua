-- Delete the job; its stream keeps a "deleted" event for a minute so watchers end.
local f = redis.call('HMGET', job, 'status', 'version')
if not f[1] then return 0 end
redis.call('DEL', job)
emit('deleted', f[2], f[1], {})
redis.call('PEXPIRE', events, 60000)
return 1
