"""Store faults during a run: each surfaces from ``run`` as itself, and leaves the job in
the state docs/pipeline.md promises ("When the store fails")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from audioflow import (
    JobResult,
    JobStatus,
    JobStore,
    Pipeline,
    StoreUnavailableError,
)
from audioflow.testing import FaultyStore
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript

pytestmark = pytest.mark.anyio

Plan = tuple[Path, list[tuple[int, float, float]]]


def _pipeline(store: JobStore, transcriber: BurstTranscriber | None = None) -> Pipeline:
    transcriber = transcriber or BurstTranscriber(max_window=2.0, max_batch=1)
    return Pipeline(transcriber, store=store, concurrency=1, progress_interval=0.0)


async def _fails(pipeline: Pipeline, path: Path, job_id: str) -> StoreUnavailableError:
    with anyio.fail_after(30), pytest.raises(StoreUnavailableError) as info:
        await pipeline.run(path, job_id=job_id)
    assert "injected fault" in str(info.value)
    return info.value


@pytest.mark.parametrize("method", ["get", "create"])
async def test_fault_before_the_job_exists_leaves_no_job(
    store: JobStore, burst_file: Plan, method: str
) -> None:
    faulty = FaultyStore(store, fail={method: 1})
    await _fails(_pipeline(faulty), burst_file[0], "f-admit")
    assert await store.get("f-admit") is None


async def test_fault_in_claim_leaves_the_job_queued(store: JobStore, burst_file: Plan) -> None:
    faulty = FaultyStore(store, fail={"claim": 1})
    await _fails(_pipeline(faulty), burst_file[0], "f-claim")
    job = await store.get("f-claim")
    assert job is not None and job.status is JobStatus.QUEUED and job.attempts == 0


class _Stepped(BurstTranscriber):
    """Transcribes window k only once k checkpoint writes were attempted: one window
    per ``add_windows`` call, so "the 4th checkpoint write" is a fixed point of the run."""

    def __init__(self, faulty: FaultyStore) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.faulty = faulty

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        while self.faulty.calls["add_windows"] < len(self.seen):
            await anyio.lowlevel.checkpoint()  # let the saver task write
        return await super().transcribe(windows, language=language, on_window=on_window)


# The first and a later progress write, the first and a later checkpoint write, the
# completing transition: the run fails with the store's error, the job is recorded
# failed with it, and every window transcribed before the fault is in the checkpoint.
@pytest.mark.parametrize(
    ("method", "n"),
    [
        ("update", 1),
        ("update", 3),
        ("add_windows", 1),
        ("add_windows", 4),
        ("transition", 1),
    ],
)
async def test_fault_mid_run_fails_the_job_and_keeps_every_window(
    store: JobStore, burst_file: Plan, method: str, n: int
) -> None:
    faulty = FaultyStore(store, fail={method: n})
    transcriber = _Stepped(faulty)
    await _fails(_pipeline(faulty, transcriber), burst_file[0], "f-mid")
    assert faulty.faults == [(method, n)]
    job = await store.get("f-mid")
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None and job.error.type == "StoreUnavailableError"
    assert "injected fault" in job.error.message
    assert job.lease is None
    saved = [w.index for w in job.checkpoint.windows] if job.checkpoint else []
    assert saved == sorted(transcriber.seen)  # every window paid for is kept
    assert job.usage.requests == len(transcriber.seen)
    # A retry of the failed job transcribes only what the checkpoint lacks.
    again = BurstTranscriber(max_window=2.0, max_batch=1)
    result = await _pipeline(store, again).run(burst_file[0], job_id="f-mid")
    assert not set(again.seen) & set(saved)
    assert result.transcript is not None
    job = await store.get("f-mid")
    assert job is not None and job.status is JobStatus.COMPLETED and job.attempts == 2


class _UntilFault(BurstTranscriber):
    """Transcribes one window, then holds until the store's fault has fired."""

    def __init__(self, faulty: FaultyStore) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.faulty = faulty

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        if self.seen:
            await self.faulty.fired.wait()
            await anyio.sleep_forever()  # the run is being torn down
        return await super().transcribe(windows, language=language, on_window=on_window)


async def test_fault_in_a_lease_renewal_fails_the_job(store: JobStore, burst_file: Plan) -> None:
    faulty = FaultyStore(store, fail={"renew": 1})
    transcriber = _UntilFault(faulty)
    pipeline = Pipeline(transcriber, store=faulty, concurrency=1, lease_seconds=0.3)
    await _fails(pipeline, burst_file[0], "f-renew")
    job = await store.get("f-renew")
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None and "renew" in job.error.message
    assert job.checkpoint is not None and [w.index for w in job.checkpoint.windows] == [0]


async def test_when_the_failure_cannot_be_recorded_the_job_waits_for_its_lease(
    store: JobStore, burst_file: Plan
) -> None:
    # The completing transition fails, and so does the one recording the failure: the
    # job stays running under the dead run's lease, with every window saved, until the
    # lease expires and requeue_expired (or run of the same id) takes it over.
    transcriber = BurstTranscriber(max_window=2.0, max_batch=1)
    faulty = FaultyStore(store, fail={"transition": [1, 2]})
    await _fails(_pipeline(faulty, transcriber), burst_file[0], "f-twice")
    job = await store.get("f-twice")
    assert job is not None and job.status is JobStatus.RUNNING and job.lease is not None
    assert job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == sorted(transcriber.seen)


async def test_completion_whose_answer_was_lost_is_completed(
    store: JobStore, burst_file: Plan
) -> None:
    # The outcome-unknown case: the completing write took effect but its answer never
    # came. run() raises (it cannot know), the job is completed, and reading it back
    # says so; the attempt to record a failure is refused by the store.
    faulty = FaultyStore(store, fail={"transition": 1}, applied=True)
    error = await _fails(_pipeline(faulty), burst_file[0], "f-lost")
    assert error.outcome_unknown
    job = await store.get("f-lost")
    assert job is not None and job.status is JobStatus.COMPLETED and job.error is None


async def test_run_many_puts_a_store_fault_in_its_jobs_slot(
    store: JobStore, burst_file: Plan
) -> None:
    path = burst_file[0]
    faulty = FaultyStore(store, fail={"add_windows": 1})
    pipeline = Pipeline(BurstTranscriber(max_window=4.0), store=faulty)
    with anyio.fail_after(60):
        out = await pipeline.run_many([path, path, path], concurrency=3)
    assert len(out) == 3
    errors = [r for r in out if isinstance(r, StoreUnavailableError)]
    assert len(errors) == 1
    assert sum(isinstance(r, JobResult) for r in out) == 2
    page = await store.list(limit=10)
    assert sorted(j.status for j in page.jobs) == sorted(
        [JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.FAILED]
    )
