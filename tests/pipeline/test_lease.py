"""Every run holds a lease on its job: renewed while it runs, fencing every write, and
lost (the run stops, writing nothing more) once another run may own the job."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import pytest

from audioflow import (
    InvalidTransitionError,
    Job,
    JobOptions,
    JobStatus,
    JobStore,
    Lease,
    LeaseLostError,
    MemoryJobStore,
    Pipeline,
    RedisJobStore,
)
from audioflow.testing import FakeClock, FaultyStore
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript
from support.redis_server import delete_prefix, redis_url

pytestmark = pytest.mark.anyio

Plan = tuple[Path, list[tuple[int, float, float]]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def clocked(
    request: pytest.FixtureRequest, anyio_backend: object, clock: FakeClock
) -> AsyncIterator[JobStore]:
    """A store whose lease expiry follows ``clock`` (moved by the test)."""
    if request.param == "memory":
        yield MemoryJobStore(clock=clock)
        return
    if (anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend) != "asyncio":
        pytest.skip("redis.asyncio runs on asyncio only")
    prefix = f"audioflow-test:{os.urandom(6).hex()}:"
    async with RedisJobStore(redis_url(), prefix=prefix, clock=clock) as store:
        yield store
    delete_prefix(redis_url(), prefix)


class _Held(BurstTranscriber):
    """Transcribes ``allow`` windows, then holds every call until ``release`` is set."""

    def __init__(self, allow: int) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.allow = allow
        self.reached = anyio.Event()
        self.release = anyio.Event()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        if len(self.seen) >= self.allow:
            self.reached.set()
            await self.release.wait()
        return await super().transcribe(windows, language=language, on_window=on_window)


class _Renewals(FaultyStore):
    """Counts renewals and lets a test wait for the n-th."""

    def __init__(self, inner: JobStore) -> None:
        super().__init__(inner, fail={})
        self.renewed = 0
        self._changed = anyio.Event()

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        lease = await super().renew(job_id, lease_token=lease_token, lease_seconds=lease_seconds)
        self.renewed += 1
        self._changed.set()
        self._changed = anyio.Event()
        return lease

    async def wait_renewed(self, n: int) -> None:
        while self.renewed < n:
            await self._changed.wait()


async def test_a_run_holds_a_lease_and_renews_it(clocked: JobStore, burst_file: Plan) -> None:
    store = _Renewals(clocked)
    held = _Held(allow=1)
    pipeline = Pipeline(held, store=store, concurrency=1, lease_seconds=0.3, owner="me")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(pipeline.run, burst_file[0], job_id="leased"))
            await held.reached.wait()
            await store.wait_renewed(2)  # every third of the lease, from one task
            job = await clocked.get("leased")
            assert job is not None and job.status is JobStatus.RUNNING
            assert job.lease is not None and job.lease.owner == "me"
            assert job.attempts == 1
            held.release.set()
    job = await clocked.get("leased")
    assert job is not None and job.status is JobStatus.COMPLETED and job.lease is None


async def test_a_run_that_lost_its_lease_stops_and_writes_nothing_more(
    clocked: JobStore, clock: FakeClock, burst_file: Plan
) -> None:
    held = _Held(allow=1)
    pipeline = Pipeline(held, store=clocked, concurrency=1, progress_interval=0.0)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                with pytest.raises(LeaseLostError):
                    await pipeline.run(burst_file[0], job_id="stolen")

            tg.start_soon(run)
            await held.reached.wait()
            # The run stalls past its lease (a GC pause, a partition): the job is
            # requeued and another worker claims it.
            clock.advance(pipeline.lease_seconds + 1)
            assert [j.id for j in await clocked.requeue_expired()] == ["stolen"]
            thief = await clocked.claim("stolen", owner="thief", lease_seconds=600)
            held.release.set()
    job = await clocked.get("stolen")
    assert job is not None and job.status is JobStatus.RUNNING
    assert job.lease == thief.lease
    assert job.version == thief.version  # not one write from the old run since
    assert job.attempts == 2


class _Hangs(FaultyStore):
    """A store that stops answering lease renewals (a hung server, a partition)."""

    def __init__(self, inner: JobStore) -> None:
        super().__init__(inner, fail={})
        self.hung = anyio.Event()

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        self.hung.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_a_store_that_stops_answering_costs_the_run_its_lease(
    clocked: JobStore, burst_file: Plan
) -> None:
    store = _Hangs(clocked)
    held = _Held(allow=1)  # never released: only losing the lease ends this run
    pipeline = Pipeline(held, store=store, concurrency=1, lease_seconds=0.6)
    with anyio.fail_after(30), pytest.raises(LeaseLostError, match="no renewal succeeded"):
        await pipeline.run(burst_file[0], job_id="hung")
    assert store.hung.is_set()
    job = await clocked.get("hung")
    assert job is not None and job.status is JobStatus.RUNNING  # nothing recorded its end


async def test_running_a_job_whose_run_died_takes_it_over(
    clocked: JobStore, clock: FakeClock, burst_file: Plan
) -> None:
    path, _ = burst_file
    first = _Held(allow=3)
    dead = Pipeline(first, store=clocked, concurrency=1)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def run_first() -> None:
                with pytest.raises(LeaseLostError):
                    await dead.run(path, job_id="taken")

            tg.start_soon(run_first)
            await first.reached.wait()
            with pytest.raises(InvalidTransitionError, match="holds its lease"):
                await Pipeline(BurstTranscriber(), store=clocked).run(path, job_id="taken")
            job = await clocked.get("taken")
            assert job is not None and job.checkpoint is not None
            saved = {w.index for w in job.checkpoint.windows}
            assert saved == {0, 1, 2}
            clock.advance(dead.lease_seconds)  # expired: now >= expires_at
            second = BurstTranscriber(max_window=2.0, max_batch=1)
            await Pipeline(second, store=clocked, concurrency=1).run(path, job_id="taken")
            first.release.set()
    assert not set(second.seen) & saved  # nothing checkpointed was transcribed again
    job = await clocked.get("taken")
    assert job is not None and job.status is JobStatus.COMPLETED and job.attempts == 2
    history = [e async for e in clocked.watch("taken", cursor="0")]
    assert [e.status for e in history].count(JobStatus.COMPLETED) == 1


async def test_a_job_id_names_one_source_and_one_set_of_options(
    clocked: JobStore, burst_file: Plan, tmp_path: Path
) -> None:
    path, _ = burst_file
    transcriber = BurstTranscriber(max_window=4.0)
    pipeline = Pipeline(transcriber, store=clocked)
    first = await pipeline.run(path, job_id="one")
    calls = transcriber.calls
    assert (await pipeline.run(path, job_id="one")).artifacts == first.artifacts
    assert transcriber.calls == calls  # the stored result, nothing run
    other = tmp_path / "other.flac"
    other.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="is the job of"):
        await pipeline.run(other, job_id="one")
    with pytest.raises(ValueError, match="other options"):
        await pipeline.run(path, job_id="one", options=JobOptions(formats=("srt",)))
    assert transcriber.calls == calls


async def test_resuming_a_cancelled_job_keeps_what_it_held(
    clocked: JobStore, burst_file: Plan
) -> None:
    path, _ = burst_file
    created = await clocked.create(Job(id="kept", source=str(path), meta={"team": "a"}))
    held = _Held(allow=2)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                functools.partial(
                    Pipeline(held, store=clocked, concurrency=1).run, path, job_id="kept"
                )
            )
            await held.reached.wait()
            tg.cancel_scope.cancel()
    job = await clocked.get("kept")
    assert job is not None and job.status is JobStatus.CANCELLED
    assert job.usage.requests == 2  # recorded on the way out: two windows paid for
    second = BurstTranscriber(max_window=2.0, max_batch=1)
    await Pipeline(second, store=clocked, concurrency=1).run(path, job_id="kept")
    job = await clocked.get("kept")
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.meta == {"team": "a"} and job.created_at == created.created_at
    assert job.attempts == 2
    assert job.usage.requests == 2 + len(second.seen)


def test_unusable_lease_lengths_are_refused() -> None:
    for seconds in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lease_seconds"):
            Pipeline(BurstTranscriber(), lease_seconds=seconds)
