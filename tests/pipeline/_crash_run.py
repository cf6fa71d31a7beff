"""One process of the crash test: runs, or requeues and finishes, a job on real Redis.

Usage: python _crash_run.py first|second REDIS_URL PREFIX JOB_ID PATH LOG_KEY

Every window the transcriber is asked for is pushed to the Redis list LOG_KEY as
"<role>:<index>" before it is answered, so the test can count what each process paid
for, even for the process it kills. ``first`` runs the job slowly (it is killed
mid-transcription); ``second`` waits for the dead run's lease to expire, requeues the
job with ``requeue_expired`` and runs it to the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import anyio
import redis.asyncio as aioredis

from audioflow import Pipeline, RedisJobStore
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript

LEASE_SECONDS = 1.0


class LoggedTranscriber(BurstTranscriber):
    def __init__(self, role: str, log: aioredis.Redis, log_key: str, pause: float) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.role, self.log, self.log_key, self.pause = role, log, log_key, pause

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        for window in windows:
            await self.log.rpush(self.log_key, f"{self.role}:{window.index}")
        await anyio.sleep(self.pause)  # a model's time per window
        return await super().transcribe(windows, language=language, on_window=on_window)


async def main(role: str, url: str, prefix: str, job_id: str, path: str, log_key: str) -> None:
    log = aioredis.Redis.from_url(url)
    async with RedisJobStore(url, prefix=prefix) as store:
        transcriber = LoggedTranscriber(role, log, log_key, 0.15 if role == "first" else 0.0)
        pipeline = Pipeline(
            transcriber, store=store, concurrency=1, lease_seconds=LEASE_SECONDS, owner=role
        )
        if role == "second":
            job = await store.get(job_id)
            assert job is not None and job.lease is not None
            # The dead run's lease runs out at a known time: wait for it, then requeue.
            await anyio.sleep(max(0.0, job.lease.expires_at.timestamp() - time.time()) + 0.05)
            requeued = await store.requeue_expired()
            assert [j.id for j in requeued] == [job_id], requeued
        await pipeline.run(path, job_id=job_id)
    await log.aclose()
    print("done", flush=True)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:7])
