"""A run killed with SIGKILL mid-transcription is finished by another process.

The first process runs ``Pipeline.run`` on real Redis and is killed once a few windows
are checkpointed. A second process waits for the dead run's lease to expire, requeues
the job (``requeue_expired``) and runs it: the job completes exactly once, no window
that was checkpointed is transcribed again, and the dead run's lease token is fenced off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis

from audioflow import EventKind, Job, JobStatus, LeaseLostError, RedisJobStore
from support.redis_server import delete_prefix, redis_url

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("_crash_run.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is bound to asyncio


def _spawn(role: str, prefix: str, job_id: str, path: Path, log_key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent), *sys.path])}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), role, redis_url(), prefix, job_id, str(path), log_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


async def test_killed_run_is_requeued_and_finished_by_another_process(
    burst_file: tuple[Path, list[tuple[int, float, float]]],
) -> None:
    path, plan = burst_file
    prefix = f"audioflow-test:{os.urandom(6).hex()}:"
    log_key = f"{prefix}transcribed"
    job_id = "crash-1"
    log = aioredis.Redis.from_url(redis_url())
    try:
        async with RedisJobStore(redis_url(), prefix=prefix) as store:
            # The job exists before the first process starts, so the test can watch it
            # from its first event.
            await store.create(Job(id=job_id, source=str(path)))
            first = _spawn("first", prefix, job_id, path, log_key)
            try:
                saved: set[int] = set()
                with anyio.fail_after(60):
                    async with aclosing(store.watch(job_id, cursor="0")) as events:
                        async for event in events:
                            checkpoint = event.changes.checkpoint
                            if event.kind is EventKind.CHECKPOINTED and checkpoint:
                                saved.update(w.index for w in checkpoint.windows)
                            if len(saved) >= 3:
                                break
                first.send_signal(signal.SIGKILL)
            finally:
                first.kill()
                first.communicate(timeout=30)
            assert first.returncode == -signal.SIGKILL
            dead = await store.get(job_id)
            assert dead is not None and dead.status is JobStatus.RUNNING
            assert dead.lease is not None and dead.lease.owner == "first"
            assert dead.checkpoint is not None
            at_kill = {w.index for w in dead.checkpoint.windows}
            assert at_kill >= saved

            second = _spawn("second", prefix, job_id, path, log_key)
            out, err = second.communicate(timeout=120)
            assert second.returncode == 0, err
            assert out.strip() == "done"

            job = await store.get(job_id)
            assert job is not None and job.status is JobStatus.COMPLETED
            assert job.attempts == 2
            with pytest.raises(LeaseLostError):  # the dead run's token is fenced off
                await store.update(job_id, lease_token=dead.lease.token, meta={"late": "1"})
            history = [e async for e in store.watch(job_id, cursor="0")]
            assert [e.status for e in history].count(JobStatus.COMPLETED) == 1

            entries = [e.decode() for e in await log.lrange(log_key, 0, -1)]
            by_first = {int(e.split(":")[1]) for e in entries if e.startswith("first:")}
            by_second = [int(e.split(":")[1]) for e in entries if e.startswith("second:")]
            assert not set(by_second) & at_kill  # nothing checkpointed was paid for twice
            assert len(by_second) == len(set(by_second))
            assert at_kill <= by_first
            assert job.checkpoint is not None
            every = {w.index for w in job.checkpoint.windows}
            assert every == at_kill | set(by_second)
            assert job.result is not None and job.result.transcript is not None
            words = [w.text for s in job.result.transcript.segments for w in s.words]
            assert words == [f"f{freq}" for freq, _, _ in plan]
    finally:
        await log.aclose()
        delete_prefix(redis_url(), prefix)
