"""The transcriber of the worker tests' real ``audioflow worker`` processes.

``audioflow worker --transcriber worker_transcriber:make`` (with this folder on
``PYTHONPATH``). Every window it is asked for is pushed to the Redis list
``AF_TEST_LOG_KEY`` as ``"<job id>:<window index>:<pid>"`` *before* it is answered, so a
test counts what each worker paid for, a killed one included. ``AF_TEST_PAUSE`` seconds
of waiting and ``AF_TEST_BURN`` seconds of pure-Python CPU work (holding the GIL, as a
model would hold a core) stand for a model's time per window; a job whose id starts
with ``slow-`` waits ``AF_TEST_SLOW_PAUSE`` (default 0.5) seconds a window instead, so a
test can catch it running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import anyio
import redis.asyncio as aioredis

from audioflow import current_job_id
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds  # this thread's CPU time: exact however many burn
    while time.thread_time() < end:
        pass


class CountingTranscriber(BurstTranscriber):
    def __init__(self) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.pause = float(os.environ.get("AF_TEST_PAUSE", "0"))
        self.slow_pause = float(os.environ.get("AF_TEST_SLOW_PAUSE", "0.5"))
        self.burn = float(os.environ.get("AF_TEST_BURN", "0"))
        self.log_key = os.environ.get("AF_TEST_LOG_KEY")
        self._log: aioredis.Redis | None = None

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        job = current_job_id()
        if self.log_key:
            if self._log is None:
                self._log = aioredis.Redis.from_url(os.environ["AF_TEST_LOG_URL"])
            entries = [f"{job}:{w.index}:{os.getpid()}" for w in windows]
            await self._log.rpush(self.log_key, *entries)
        pause = self.slow_pause if job and job.startswith("slow-") else self.pause
        if pause:
            await anyio.sleep(pause * len(windows))
        if self.burn:
            await anyio.to_thread.run_sync(_burn, self.burn * len(windows))
        return await super().transcribe(windows, language=language, on_window=on_window)

    async def aclose(self) -> None:
        if self._log is not None:
            await self._log.aclose()


def make() -> CountingTranscriber:
    return CountingTranscriber()
