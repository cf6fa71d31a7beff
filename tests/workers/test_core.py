"""The engine-agnostic worker core: what each delivery of a job id does.

``run_job``, ``submit``, ``cancel`` and ``sweep`` against the in-memory and the Redis
store, in one process. The real worker processes and brokers are in test_dramatiq.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from audioflow import (
    DecodeError,
    InvalidTransitionError,
    Job,
    JobOptions,
    JobStatus,
    JobStore,
    MemoryJobStore,
    Pipeline,
    StoreUnavailableError,
    current_job_id,
)
from audioflow.testing import FakeClock, FaultyStore
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript
from audioflow.worker import Outcome, cancel, run_job, submit, sweep

pytestmark = pytest.mark.anyio

WINDOWS = 3  # windows of the ``media`` fixture (two bursts a 2 s window)


class Counting(BurstTranscriber):
    """One window a call; records ``(job id, window index)`` of every window it is sent;
    waits ``pause`` seconds a window, or until ``gate`` is set when there is one."""

    def __init__(self, pause: float = 0.0) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.pause = pause
        self.sent: list[tuple[str | None, int]] = []
        self.started = anyio.Event()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        self.sent += [(current_job_id(), w.index) for w in windows]
        self.started.set()
        await anyio.sleep(self.pause)
        return await super().transcribe(windows, language=language, on_window=on_window)


class Enqueued:
    """A queue that only records what was sent to it."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, job_id: str) -> None:
        self.ids.append(job_id)


def pipeline_for(store: JobStore, transcriber: Counting, **kwargs: object) -> Pipeline:
    return Pipeline(transcriber, store=store, concurrency=1, **kwargs)  # type: ignore[arg-type]


async def test_a_delivery_runs_the_queued_job_to_completed(store: JobStore, media: Path) -> None:
    transcriber = Counting()
    queue = Enqueued()
    job = await submit(store, media, queue, job_id="one")
    assert job.status is JobStatus.QUEUED and queue.ids == ["one"]
    report = await run_job(pipeline_for(store, transcriber), "one")
    assert report.outcome is Outcome.COMPLETED
    done = await store.get("one")
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 1
    assert "f400" in (done.artifacts["txt"])
    # Every window was sent once, and the transcriber knew whose it was.
    assert sorted(transcriber.sent) == [("one", i) for i in range(WINDOWS)]
    assert current_job_id() is None  # the job's id does not leak into the caller


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "running", "missing"])
async def test_a_delivery_for_a_job_not_queued_does_nothing(
    store: JobStore, media: Path, status: str
) -> None:
    transcriber = Counting()
    pipeline = pipeline_for(store, transcriber)
    if status != "missing":
        await store.create(Job(id="j", source=str(media)))
        if status != "cancelled":
            lease = await store.claim("j", owner="elsewhere", lease_seconds=60)
        if status in ("completed", "failed"):
            await store.transition("j", JobStatus(status), lease_token=lease.lease.token)
        elif status == "cancelled":
            await store.transition("j", JobStatus.CANCELLED)
    before = await store.get("j")
    report = await run_job(pipeline, "j")
    assert report.outcome is Outcome.SKIPPED, report
    assert report.reason
    assert await store.get("j") == before  # not a single write
    assert transcriber.sent == []


async def test_two_deliveries_of_one_job_at_once_run_it_once(store: JobStore, media: Path) -> None:
    transcriber = Counting(pause=0.01)
    pipeline = pipeline_for(store, transcriber)
    await submit(store, media, Enqueued(), job_id="dup")
    reports = []

    async def deliver() -> None:
        reports.append(await run_job(pipeline, "dup"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        tg.start_soon(deliver)
    assert sorted(r.outcome for r in reports) == [Outcome.COMPLETED, Outcome.SKIPPED]
    assert len(transcriber.sent) == WINDOWS
    job = await store.get("dup")
    assert job is not None and job.status is JobStatus.COMPLETED and job.attempts == 1


async def test_submitting_an_id_again_runs_it_at_most_once_more(
    store: JobStore, media: Path, tmp_path: Path
) -> None:
    queue = Enqueued()
    transcriber = Counting()
    pipeline = pipeline_for(store, transcriber)
    await submit(store, media, queue, job_id="s")
    again = await submit(store, media, queue, job_id="s")  # still queued: enqueued again
    assert again.status is JobStatus.QUEUED and queue.ids == ["s", "s"]
    outcomes = [(await run_job(pipeline, job_id)).outcome for job_id in queue.ids]
    assert outcomes == [Outcome.COMPLETED, Outcome.SKIPPED]
    done = await submit(store, media, queue, job_id="s")  # completed: nothing to send
    assert done.status is JobStatus.COMPLETED and queue.ids == ["s", "s"]
    assert len(transcriber.sent) == WINDOWS
    with pytest.raises(ValueError, match="another id"):
        await submit(store, tmp_path / "other.flac", queue, job_id="s")
    with pytest.raises(ValueError, match="other options"):
        await submit(store, media, queue, job_id="s", options=JobOptions(language="fr"))


async def test_cancel_from_elsewhere_stops_the_run_within_a_second(
    store: JobStore, media: Path
) -> None:
    transcriber = Counting(pause=0.3)
    pipeline = pipeline_for(store, transcriber)
    await submit(store, media, Enqueued(), job_id="c")
    outcome = []
    ended = anyio.Event()

    async def deliver() -> None:
        outcome.append(await run_job(pipeline, "c"))
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        await transcriber.started.wait()
        cancelled = await cancel(store, "c")
        stopped_at = anyio.current_time()
        with anyio.fail_after(1.0):  # the run notices and ends well within a second
            await ended.wait()
        took = anyio.current_time() - stopped_at
    assert outcome[0].outcome is Outcome.CANCELLED, outcome
    assert took < 1.0
    sent = len(transcriber.sent)
    await anyio.sleep(0.4)  # nothing more is transcribed after the run ended
    assert len(transcriber.sent) == sent < WINDOWS
    job = await store.get("c")
    assert job is not None and job.status is JobStatus.CANCELLED == cancelled.status
    assert job.lease is None
    with pytest.raises(InvalidTransitionError):
        await cancel(store, "c")  # already finished


async def test_cancelling_a_queued_job_makes_its_delivery_a_no_op(
    store: JobStore, media: Path
) -> None:
    transcriber = Counting()
    await submit(store, media, Enqueued(), job_id="q")
    await cancel(store, "q")
    report = await run_job(pipeline_for(store, transcriber), "q")
    assert report.outcome is Outcome.SKIPPED and transcriber.sent == []


async def test_a_source_the_worker_cannot_read_fails_the_job_once(
    store: JobStore, tmp_path: Path
) -> None:
    transcriber = Counting()
    pipeline = pipeline_for(store, transcriber)
    queue = Enqueued()
    await submit(store, tmp_path / "not-on-this-worker.flac", queue, job_id="gone")
    report = await run_job(pipeline, "gone")
    assert report.outcome is Outcome.FAILED
    assert report.error is not None and report.error.type == "DecodeError"
    job = await store.get("gone")
    assert job is not None and job.status is JobStatus.FAILED and job.attempts == 1
    assert job.error is not None and "no such file" in job.error.message
    assert job.error.type == DecodeError.__name__
    # Not a retry loop: a second delivery does nothing, and a sweep leaves it alone.
    assert (await run_job(pipeline, "gone")).outcome is Outcome.SKIPPED
    assert await sweep(store, queue) == [] and queue.ids == ["gone"]


async def test_a_store_error_before_the_claim_is_raised_for_redelivery(
    media: Path,
) -> None:
    inner = MemoryJobStore()
    await inner.create(Job(id="x", source=str(media)))
    faulty = FaultyStore(inner, fail={"get": 1})
    with pytest.raises(StoreUnavailableError):
        await run_job(pipeline_for(faulty, Counting()), "x")  # type: ignore[arg-type]
    job = await inner.get("x")
    assert job is not None and job.status is JobStatus.QUEUED and job.attempts == 0
    report = await run_job(pipeline_for(faulty, Counting()), "x")  # type: ignore[arg-type]
    assert report.outcome is Outcome.COMPLETED


async def test_the_sweep_requeues_expired_leases_and_enqueues_them_once(media: Path) -> None:
    clock = FakeClock()
    store = MemoryJobStore(clock=clock)
    queue = Enqueued()
    for job_id in ("dead", "live", "tired"):
        await store.create(Job(id=job_id, source=str(media)))
    await store.claim("dead", owner="w1", lease_seconds=5)
    await store.claim("live", owner="w2", lease_seconds=60)
    await store.claim("tired", owner="w3", lease_seconds=5)
    await store.update("tired", attempts=3)
    clock.advance(10)
    changed = await sweep(store, queue, max_attempts=3)
    assert sorted(j.id for j in changed) == ["dead", "tired"]
    assert queue.ids == ["dead"]  # requeued and sent again; "tired" failed instead
    dead, live, tired = [await store.get(i) for i in ("dead", "live", "tired")]
    assert dead is not None and dead.status is JobStatus.QUEUED
    assert live is not None and live.status is JobStatus.RUNNING
    assert tired is not None and tired.status is JobStatus.FAILED and tired.error is not None
    # Sweeping again (another worker's sweep) finds nothing more to do.
    assert await sweep(store, queue, max_attempts=3) == [] and queue.ids == ["dead"]
    report = await run_job(pipeline_for(store, Counting()), "dead")
    assert report.outcome is Outcome.COMPLETED


async def test_detach_lets_go_of_the_job_for_the_sweep_to_recover(media: Path) -> None:
    clock = FakeClock()
    store = MemoryJobStore(clock=clock)
    queue = Enqueued()
    first = Counting(pause=0.2)
    await submit(store, media, queue, job_id="d")
    detach = anyio.Event()
    reports = []

    async def deliver() -> None:
        reports.append(await run_job(pipeline_for(store, first), "d", detach=detach))

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        await first.started.wait()
        detach.set()  # the process shuts down
    assert reports[0].outcome is Outcome.DETACHED
    job = await store.get("d")
    assert job is not None and job.status is JobStatus.RUNNING and job.lease is not None
    kept = {w.index for w in job.checkpoint.windows} if job.checkpoint else set()
    clock.advance(61)  # the lease (60 s) runs out; the sweep requeues and enqueues it
    assert [j.id for j in await sweep(store, queue)] == ["d"] and queue.ids == ["d", "d"]
    second = Counting()
    assert (await run_job(pipeline_for(store, second), "d")).outcome is Outcome.COMPLETED
    assert not kept & {index for _, index in second.sent}  # saved windows not sent again
    done = await store.get("d")
    assert done is not None and done.status is JobStatus.COMPLETED and done.attempts == 2


async def test_a_cancel_while_the_watch_is_down_still_stops_the_run(media: Path) -> None:
    # The run's watch fails and is resumed a second later; meanwhile the cancel dropped
    # the lease, so the run's next write is refused (LOST) if the resumed watch has not
    # stopped it first (CANCELLED). Either way it stops at once and writes nothing.
    inner = MemoryJobStore()
    store = FaultyStore(inner, fail={"watch": 1})  # the run's first watch fails
    transcriber = Counting(pause=0.3)
    await submit(store, media, Enqueued(), job_id="w")  # type: ignore[arg-type]
    reports = []
    ended = anyio.Event()

    async def deliver() -> None:
        reports.append(await run_job(pipeline_for(store, transcriber), "w"))  # type: ignore[arg-type]
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        await transcriber.started.wait()
        await cancel(inner, "w")
        with anyio.fail_after(2):
            await ended.wait()
    assert store.faults == [("watch", 1)]
    assert reports[0].outcome in (Outcome.CANCELLED, Outcome.LOST)
    sent = len(transcriber.sent)
    await anyio.sleep(0.4)
    assert len(transcriber.sent) == sent < WINDOWS
    job = await inner.get("w")
    assert job is not None and job.status is JobStatus.CANCELLED
