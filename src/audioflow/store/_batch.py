"""Auto-pipelining: concurrent store calls on one event loop share a round trip.

Each ``RedisJobStore`` operation is one or a few commands. Fifty tasks updating jobs at
once would otherwise pay redis-py's per-command overhead (connection checkout, send,
wake-up) fifty times; here the calls that arrive while a batch is being sent queue up
and go out together as one non-transactional pipeline, the way ioredis's
``enableAutoPipelining`` does. Each call's commands stay contiguous and in order, and
each per-job script is atomic on the server, so batching changes no semantics.

The flusher is a short-lived task that exists only while calls are queued; callers wait
on futures, and a cancelled caller's result is simply dropped.

**Two writes to one job never share a batch.** redis-py sends a whole pipeline again
when its replies are lost, and each job remembers only the newest operation id of each
client (``_op:<client>``, see ``redis.py``). Were two writes of this store to one job in
the lost pipeline, the older one, sent again, would find the newer one's id and could
not tell its own outcome (it may have been refused). So a batch ends before a call that
writes a job an earlier call of the batch writes; that call leads the next batch, one
round trip later. Calls to different jobs still share round trips.

**Redis Cluster.** redis-py's ``ClusterPipeline`` splits a pipeline by node and sends
the parts concurrently, so two commands of one call on different slots (``create``'s
index ``ZADD`` and its job script) could run in either order, and a redirected command
(``MOVED``/``ASK``/``TRYAGAIN``) is sent again on its own after the rest. To keep each
call's order, a call is cut into *stages* wherever its next command goes to another
slot, and stage *n+1* of every call in the batch goes out only after stage *n* of all
of them has replied: one round trip for single-slot calls, one more per slot change.
Runs of per-job scripts are not cut (each touches only its own job, so there is no
order between them to keep: ``requeue_expired`` stays one round trip). A call whose
stage failed sends no later stage; its remaining replies carry that error. Errors that
mean the cluster cannot serve the command (no reachable node, a slot no node serves,
redirections that never settle) come back as ``redis.exceptions.ConnectionError``, the
way an unreachable single server does. ``SCRIPT LOAD`` reaches every primary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

__all__ = ["CLUSTER_UNAVAILABLE", "CommandBatcher"]

Command = Sequence[Any]

# Raised or returned by redis-py's cluster client when the cluster cannot serve a
# command: no startup node reachable or slots uncovered at (re)initialisation
# (RedisClusterException), a slot missing from the map (SlotNotCoveredError, a
# subclass), redirections that never settle ("TTL exhausted", ClusterError). Every
# command sent here names keys of one slot, so none of these can mean a malformed
# command. ClusterDownError, a ClusterError too, is mapped alike (the store treats
# both as unavailability).
CLUSTER_UNAVAILABLE = (redis_errors.RedisClusterException, redis_errors.ClusterError)


class _Call:
    __slots__ = ("commands", "future")

    def __init__(self, commands: Sequence[Command], future: asyncio.Future[list[Any]]) -> None:
        self.commands = commands
        self.future = future


class CommandBatcher:
    """Runs command groups through shared pipelines.

    Args:
        redis: the client whose pool the pipelines use.
        scripts: Lua sources by SHA1, loaded again if the server lost them (restart,
            ``SCRIPT FLUSH``, failover) before the affected calls are retried once.
        max_batch: most calls one pipeline carries.
        writes: the job a command writes (its key), or ``None``; calls writing the same
            job go out in separate batches (see the module docstring).
    """

    def __init__(
        self,
        redis: aioredis.Redis | RedisCluster,
        scripts: dict[str, str],
        max_batch: int = 256,
        writes: Callable[[Command], str | None] | None = None,
    ) -> None:
        self._redis = redis
        self._writes = writes
        self._cluster = redis if isinstance(redis, RedisCluster) else None
        self._scripts = scripts
        self._max_batch = max_batch
        self._queue: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None

    async def execute(self, *commands: Command) -> list[Any]:
        """Run ``commands`` back to back; their replies (errors as exception objects)."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Call(commands, future))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                # One scheduling round first, so every task that is ready can enqueue.
                await asyncio.sleep(0)
                await self._send(self._take())
        finally:
            self._flusher = None
            pending, self._queue = self._queue, []
            for call in pending:  # non-empty only if this task itself was cancelled
                call.future.cancel()

    def _take(self) -> list[_Call]:
        """The next batch: queued calls in order, at most ``max_batch``, ending before a
        call that writes a job an earlier call of the batch writes."""
        count, written = 0, set[str]()
        for call in self._queue[: self._max_batch]:
            if self._writes is not None:
                jobs = {job for c in call.commands if (job := self._writes(c)) is not None}
                if jobs & written:
                    break
                written |= jobs
            count += 1
        batch = self._queue[:count]
        del self._queue[:count]
        return batch

    async def _send(self, batch: list[_Call]) -> None:
        live = [c for c in batch if not c.future.done()]
        try:
            replies = await self._pipeline(live)
            stale = [i for i, r in enumerate(replies) if _no_script(r)]
            if stale:
                for sha, source in self._scripts.items():
                    if await self._redis.script_load(source) != sha:  # pragma: no cover
                        raise RuntimeError("script SHA mismatch")
                again = await self._pipeline([live[i] for i in stale])
                for i, reply in zip(stale, again, strict=True):
                    replies[i] = reply
        except BaseException as raised:
            exc = _unavailable(raised) if isinstance(raised, CLUSTER_UNAVAILABLE) else raised
            for call in live:
                if call.future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    call.future.cancel()
                else:
                    call.future.set_exception(exc)
            if isinstance(exc, Exception):
                return  # delivered to every caller; the next batch may fare better
            raise
        for call, reply in zip(live, replies, strict=True):
            if not call.future.done():
                call.future.set_result(reply)

    async def _pipeline(self, calls: list[_Call]) -> list[list[Any]]:
        if self._cluster is not None:
            return await self._cluster_pipeline(self._cluster, calls)
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                for command in call.commands:
                    pipe.execute_command(*command)
            flat = await pipe.execute(raise_on_error=False)
        out, i = [], 0
        for call in calls:
            out.append(flat[i : i + len(call.commands)])
            i += len(call.commands)
        return out

    async def _cluster_pipeline(self, redis: RedisCluster, calls: list[_Call]) -> list[list[Any]]:
        staged = [_stages(redis, call.commands) for call in calls]
        out: list[list[Any]] = [[] for _ in calls]
        todo = [i for i, stages in enumerate(staged) if stages]
        step = 0
        while todo:
            async with redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    for command in staged[i][step]:
                        pipe.execute_command(*command)
                flat = await pipe.execute(raise_on_error=False)
            at, step, later = 0, step + 1, []
            for i in todo:
                size = len(staged[i][step - 1])
                replies = [_reply(r) for r in flat[at : at + size]]
                at += size
                out[i] += replies
                failed = next((r for r in replies if isinstance(r, Exception)), None)
                if failed is not None:  # later stages are not sent; they share the error
                    out[i] += [failed] * (len(calls[i].commands) - len(out[i]))
                elif step < len(staged[i]):
                    later.append(i)
            todo = later
        return out


def _stages(redis: RedisCluster, commands: Sequence[Command]) -> list[list[Command]]:
    """``commands`` cut where the next one goes to another slot (see the module doc)."""
    stages: list[list[Command]] = []
    previous: tuple[bool, int | None] | None = None
    for command in commands:
        script = str(command[0]).upper() == "EVALSHA"
        slot = _slot(redis, command)
        if previous is None or (previous[1] != slot and not (script and previous[0])):
            stages.append([])
        stages[-1].append(command)
        previous = (script, slot)
    return stages


def _slot(redis: RedisCluster, command: Command) -> int | None:
    """The slot of a command sent here: its first key (``None``: a script with no keys).

    Every command the store batches names its key first (``EVALSHA`` after the SHA and
    key count), so this needs none of redis-py's ``COMMAND`` lookups.
    """
    if str(command[0]).upper() == "EVALSHA":
        return redis.keyslot(command[3]) if int(command[2]) else None
    return redis.keyslot(command[1])


def _reply(reply: Any) -> Any:
    return _unavailable(reply) if isinstance(reply, CLUSTER_UNAVAILABLE) else reply


def _unavailable(exc: BaseException) -> redis_errors.ConnectionError:
    mapped = redis_errors.ConnectionError(f"redis cluster cannot serve the command: {exc}")
    mapped.__cause__ = exc
    return mapped


def _no_script(replies: list[Any]) -> bool:
    return any(isinstance(r, redis_errors.NoScriptError) for r in replies)
