"""The store's Redis dies and comes back while workers run jobs.

The store is a ``redis-server`` this test starts on its own port (append-only file,
fsync on every write, so a SIGKILL loses nothing written); the broker is the shared
Redis, on a queue of the test's own. Killed while jobs run and restarted three seconds
later (longer than the workers' leases), every job still ends ``completed`` or ``failed``
with a typed error, none stays ``running``, and each finishes within its lease plus a
sweep plus its remaining work once the store is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from worker_procs import burst_media, cluster, wait_for

from audioflow import JobStatus, RedisJobStore
from audioflow.dramatiq import DramatiqQueue
from support.redis_server import DurableRedis

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LEASE = 2.0
SWEEP = 0.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DurableRedis]:
    folder = tmp_path / "store"
    folder.mkdir()
    s = DurableRedis(folder)
    try:
        yield s
    finally:
        s.stop()


async def test_jobs_recover_from_a_store_restart(server: DurableRedis, tmp_path: Path) -> None:
    media = burst_media(tmp_path / "long.flac", count=12)  # 6 windows: 3 s as a slow- job
    ids = [f"slow-r{i}" for i in range(6)]
    with cluster(
        tmp_path, "redis", store=server.url, lease_seconds=LEASE, sweep_interval=SWEEP
    ) as c:
        queue = DramatiqQueue(c.broker, queue_name=c.queue)
        try:
            async with RedisJobStore(server.url, prefix=c.prefix) as store:
                for job_id in ids:
                    await queue.submit(store, media, job_id=job_id)
                wait_for(lambda: len({j for j, _, _ in c.calls()}) >= 3, 30, "jobs to run")
                server.kill()
                await anyio.sleep(LEASE + 1.0)  # the outage outlasts every lease
                server.start()
                back = time.monotonic()
                stale: list[str] = []
                # Remaining work is at most one job's 3 s per slot; recovery adds a lease,
                # a sweep and the broker's redelivery backoff (a few seconds).
                with anyio.fail_after(60):
                    while True:
                        jobs = [await store.get(job_id) for job_id in ids]
                        now = time.time()  # the store's clock (RedisJobStore's default)
                        stale += [
                            j.id
                            for j in jobs
                            if j is not None
                            and j.lease is not None
                            and j.status is JobStatus.RUNNING
                            and j.lease.expires_at.timestamp() < now - SWEEP - 2.0
                        ]
                        if all(
                            j is not None and j.status.value in ("completed", "failed")
                            for j in jobs
                        ):
                            break
                        await anyio.sleep(0.2)
                recovered = time.monotonic() - back
                running = await store.list(status=JobStatus.RUNNING)
        finally:
            queue.close()
    assert running.jobs == ()
    for job in jobs:
        assert job is not None
        if job.status is JobStatus.FAILED:
            assert job.error is not None and job.error.type and job.error.message, job
    completed = [j for j in jobs if j is not None and j.status is JobStatus.COMPLETED]
    assert completed, "jobs complete once the store is back"
    assert recovered < 60
    assert stale == [], "a job stayed running past its lease plus a sweep"
