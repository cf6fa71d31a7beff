"""Real ``audioflow worker`` processes on a real broker (Redis, then RabbitMQ) and store.

Two workers take 20 jobs and complete each exactly once; duplicate submits and
duplicate messages run a job once; ``audioflow cancel`` stops a running job within a
second; a worker killed with SIGKILL mid-job leaves it to the other worker once its lease
expires, with no checkpointed window paid for twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

import anyio
import pytest
from worker_procs import Cluster, burst_media, cluster, wait_for

from audioflow import EventKind, Job, JobEvent, JobStatus, RedisJobStore
from audioflow.dramatiq import DramatiqQueue
from audioflow.worker import submit

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is bound to asyncio


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two workers (two jobs at once each) shared by the tests of one broker."""
    with cluster(tmp_path_factory.mktemp("workers"), request.param) as c:
        yield c


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("media")
    return [burst_media(folder / f"m{i}.flac", base=300 + 200 * i) for i in range(4)]


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 bursts: 8 windows, about 4 s for a ``slow-`` job."""
    return burst_media(tmp_path_factory.mktemp("long") / "long.flac", count=16)


@asynccontextmanager
async def client(c: Cluster) -> AsyncIterator[tuple[RedisJobStore, DramatiqQueue]]:
    queue = DramatiqQueue(c.broker, queue_name=c.queue)
    try:
        async with RedisJobStore(c.store, prefix=c.prefix) as store:
            yield store, queue
    finally:
        queue.close()


async def ended(store: RedisJobStore, job_id: str) -> Job:
    """Wait (on the store's watch, a minute at most) until the job finished; returns it."""
    with anyio.fail_after(60):
        async with aclosing(store.watch(job_id)) as events:
            async for _ in events:
                pass
    job = await store.get(job_id)
    assert job is not None
    return job


def windows_of(job: Job) -> list[int]:
    assert job.checkpoint is not None
    return sorted(w.index for w in job.checkpoint.windows)


async def test_two_workers_complete_twenty_jobs_exactly_once(
    workers: Cluster, files: list[Path]
) -> None:
    ids = [f"batch-{i}" for i in range(20)]
    held: list[str] = []

    async def hold(job_id: str) -> None:  # create every job first, send them all later
        held.append(job_id)

    events: dict[str, list[JobEvent]] = {job_id: [] for job_id in ids}
    async with client(workers) as (store, queue):
        for i, job_id in enumerate(ids):
            await submit(store, files[i % len(files)], hold, job_id=job_id)
        watching = anyio.Semaphore(0)

        async def follow(job_id: str) -> None:
            async with aclosing(store.watch(job_id)) as stream:
                async for event in stream:
                    if event.kind is EventKind.SNAPSHOT and not events[job_id]:
                        watching.release()
                    events[job_id].append(event)

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for job_id in ids:
                    tg.start_soon(follow, job_id)
                for _ in ids:  # every watcher is in place before any job can move
                    await watching.acquire()
                for job_id in held:
                    await queue.enqueue(job_id)
        jobs = [await store.get(job_id) for job_id in ids]

    calls = workers.calls()
    per_window = Counter((job, index) for job, index, _ in calls)
    for job_id, job in zip(ids, jobs, strict=True):
        assert job is not None and job.status is JobStatus.COMPLETED, job
        assert job.attempts == 1
        ends = [e for e in events[job_id] if e.status in (JobStatus.COMPLETED, JobStatus.FAILED)]
        assert [(e.kind, e.status) for e in ends] == [
            (EventKind.TRANSITIONED, JobStatus.COMPLETED)
        ], f"{job_id}: one completed event, nothing else final"
        # The transcriber was sent each of the job's windows exactly once.
        sent = sorted(index for (job, index) in per_window if job == job_id)
        assert sent == windows_of(job) and len(sent) >= 2
        assert all(per_window[(job_id, i)] == 1 for i in sent)
    assert len(calls) == sum(len(windows_of(j)) for j in jobs if j is not None)
    assert len({pid for _, _, pid in calls}) == 2, "both workers took jobs"


async def test_a_job_submitted_twice_and_delivered_twice_runs_once(
    workers: Cluster, files: list[Path]
) -> None:
    sent = 0
    async with client(workers) as (store, queue):

        async def enqueue(job_id: str) -> None:
            nonlocal sent
            sent += 1
            await queue.enqueue(job_id)

        await submit(store, files[0], enqueue, job_id="twice")
        await submit(store, files[0], enqueue, job_id="twice")  # the same id again
        queue.send("twice")  # and the broker delivering one message twice
        sent += 1
        job = await ended(store, "twice")
    assert job.status is JobStatus.COMPLETED and job.attempts == 1
    # Every message was delivered, and all but one did nothing.
    wait_for(lambda: len(workers.log_lines("twice")) == sent, 30, "every delivery")
    lines = workers.log_lines("twice")
    outcomes = sorted(line.split("job twice: ")[1].split()[0] for line in lines)
    assert outcomes == ["completed"] + ["skipped"] * (sent - 1)
    assert sent >= 2
    calls = [index for job_id, index, _ in workers.calls() if job_id == "twice"]
    assert sorted(calls) == windows_of(job)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
async def test_cancel_stops_the_running_job_within_a_second(
    broker: str, tmp_path: Path, long_file: Path, files: list[Path]
) -> None:
    # One worker with one thread: the next job can only run once the cancelled one let go.
    with cluster(tmp_path, broker, count=1, threads=1) as c:
        async with client(c) as (store, queue):
            await queue.submit(store, long_file, job_id="slow-cancel")
            wait_for(
                lambda: any(j == "slow-cancel" for j, _, _ in c.calls()), 30, "the job to run"
            )
            done = c.cli("cancel", "slow-cancel", "--prefix", c.prefix)
            returned = time.monotonic()
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "slow-cancel: cancelled"
            wait_for(
                lambda: any("cancelled" in line for line in c.log_lines("slow-cancel")),
                5,
                "the worker to stop the job",
                interval=0.01,
            )
            assert time.monotonic() - returned < 1.0
            job = await store.get("slow-cancel")
            assert job is not None and job.status is JobStatus.CANCELLED and job.lease is None
            paid = len([j for j, _, _ in c.calls() if j == "slow-cancel"])
            assert 1 <= paid < 8
            # The worker's one thread is free again: the next job runs to the end.
            await queue.submit(store, files[1], job_id="after-cancel")
            after = await ended(store, "after-cancel")
            assert after.status is JobStatus.COMPLETED
            assert len([j for j, _, _ in c.calls() if j == "slow-cancel"]) == paid


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
async def test_a_worker_killed_mid_job_leaves_it_to_the_other(
    broker: str, tmp_path: Path, long_file: Path
) -> None:
    with cluster(tmp_path, broker, lease_seconds=1.5, sweep_interval=0.5) as c:
        async with client(c) as (store, queue):
            await queue.submit(store, long_file, job_id="slow-crash")

            async def checkpointed() -> Job:
                while True:
                    job = await store.get("slow-crash")
                    assert job is not None
                    if job.checkpoint is not None and len(job.checkpoint.windows) >= 2:
                        return job
                    await anyio.sleep(0.05)

            with anyio.fail_after(30):
                running = await checkpointed()
            assert running.lease is not None
            pid = int(running.lease.owner.split(":")[1])
            victim = next(w for w in c.workers if pid in w.pids())
            victim.kill()
            dead = await store.get("slow-crash")
            assert dead is not None and dead.checkpoint is not None
            kept = {w.index for w in dead.checkpoint.windows}
            job = await ended(store, "slow-crash")
            assert job.status is JobStatus.COMPLETED and job.attempts == 2
            assert await store.list(status=JobStatus.RUNNING) == await store.list(
                status=JobStatus.RUNNING, limit=1
            )
            assert (await store.list(status=JobStatus.RUNNING)).jobs == ()
        calls = Counter(index for job_id, index, _ in c.calls() if job_id == "slow-crash")
        assert sorted(calls) == windows_of(job) == list(range(8))
        # No window the dead worker had checkpointed was transcribed again.
        assert all(calls[i] == 1 for i in kept), (kept, calls)
        survivor_pids = set().union(*(w.pids() for w in c.workers if w is not victim))
        assert any(p in survivor_pids for j, _, p in c.calls() if j == "slow-crash")
