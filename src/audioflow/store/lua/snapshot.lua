-- The job's fields and the id of its newest change event, read atomically.
local fields = redis.call('HGETALL', job)
local last = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
local cursor = '0-0'
if #last > 0 then cursor = last[1][1] end
return { fields, cursor }
