"""Auto-pipelining: concurrent store calls on one event loop share a round trip.

Each ``RedisJobStore`` operation is one or a few commands. Fifty tasks updating jobs at
once would otherwise pay redis-py's per-command overhead (connection checkout, send,
wake-up) fifty times; here the calls that arrive while a batch is being sent queue up
and go out together as one non-transactional pipeline, the way ioredis's
``enableAutoPipelining`` does. Each call's commands stay contiguous and in order, and
each per-job script is atomic on the server, so batching changes no semantics.

The flusher is a short-lived task that exists only while calls are queued; callers wait
on futures, and a cancelled caller's result is simply dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

__all__ = ["CommandBatcher"]

Command = Sequence[Any]


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
    """

    def __init__(
        self,
        redis: aioredis.Redis | RedisCluster,
        scripts: dict[str, str],
        max_batch: int = 256,
    ) -> None:
        self._redis = redis
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
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._send(batch)
        finally:
            self._flusher = None
            pending, self._queue = self._queue, []
            for call in pending:  # non-empty only if this task itself was cancelled
                call.future.cancel()

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
        except BaseException as exc:
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


def _no_script(replies: list[Any]) -> bool:
    return any(isinstance(r, redis_errors.NoScriptError) for r in replies)
