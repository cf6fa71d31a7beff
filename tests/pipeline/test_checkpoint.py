"""Checkpoint writes: coalesced while a job runs, complete on every way out."""

from __future__ import annotations

import functools
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest
from test_pipeline import _Gate

from audioflow import JobStatus, JobStore, Pipeline
from audioflow.testing.transcribers import BurstTranscriber

pytestmark = pytest.mark.anyio


async def test_checkpoint_writes_are_coalesced(
    store: JobStore, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    path, _ = burst_file
    transcriber = BurstTranscriber(max_window=2.0, max_batch=1)
    pipeline = Pipeline(transcriber, store=store, concurrency=1, checkpoint_interval=3600)
    await pipeline.run(path, job_id="coalesced")
    history = [e async for e in store.watch("coalesced", cursor="0")]
    writes = [e.changes.checkpoint for e in history if e.changes.checkpoint]
    windows = len(transcriber.seen)
    assert windows >= 4
    # One write when the first window finished, one with the rest at the end: not one
    # per window (each write holds every window so far).
    assert 1 <= len(writes) <= 2
    job = await store.get("coalesced")
    assert job is not None and job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == list(range(windows))


async def test_finished_windows_reach_the_store_while_the_job_runs(
    store: JobStore, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    # What a crash would leave: the checkpoint as written during the run, without the
    # final write that every orderly way out makes.
    path, _ = burst_file
    gate = _Gate(allow=2)
    pipeline = Pipeline(gate, store=store, concurrency=1, checkpoint_interval=0.05)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(pipeline.run, path, job_id="running"))
            await gate.reached.wait()
            async with aclosing(store.watch("running", cursor="0")) as events:
                async for event in events:
                    checkpoint = event.changes.checkpoint
                    if checkpoint and len(checkpoint.windows) == 2:
                        assert event.status is JobStatus.RUNNING
                        break
            tg.cancel_scope.cancel()


def test_negative_checkpoint_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_interval"):
        Pipeline(BurstTranscriber(), checkpoint_interval=-1)
