"""Checkpoint writes: one add_windows per batch of new windows, each window written once."""

from __future__ import annotations

import functools
from contextlib import aclosing
from pathlib import Path

import anyio
import msgspec
import pytest
from test_pipeline import _Gate

from audioflow import EventKind, JobStatus, JobStore, Pipeline
from audioflow.testing.transcribers import BurstTranscriber

pytestmark = pytest.mark.anyio


async def test_each_window_is_written_once_in_its_own_size(
    store: JobStore, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    path, _ = burst_file
    transcriber = BurstTranscriber(max_window=2.0, max_batch=1)
    pipeline = Pipeline(transcriber, store=store, concurrency=1)
    await pipeline.run(path, job_id="per-window")
    history = [e async for e in store.watch("per-window", cursor="0")]
    writes = [e.changes.checkpoint for e in history if e.kind is EventKind.CHECKPOINTED]
    windows = len(transcriber.seen)
    assert windows >= 4
    assert all(w is not msgspec.UNSET and w is not None for w in writes)
    written = [w.index for cp in writes for w in cp.windows]  # type: ignore[union-attr]
    # Every window went out once, in a write of its own size: none was written again.
    assert sorted(written) == list(range(windows))
    job = await store.get("per-window")
    assert job is not None and job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == list(range(windows))
    assert job.usage.requests == windows  # what the run consumed, on the job


async def test_coalesced_writes_still_write_each_window_once(
    store: JobStore, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    path, _ = burst_file
    transcriber = BurstTranscriber(max_window=2.0, max_batch=1)
    pipeline = Pipeline(transcriber, store=store, concurrency=1, checkpoint_interval=3600)
    await pipeline.run(path, job_id="coalesced")
    history = [e async for e in store.watch("coalesced", cursor="0")]
    writes = [e.changes.checkpoint for e in history if e.kind is EventKind.CHECKPOINTED]
    # One write when the first window finished, one with the rest before completing.
    assert len(writes) == 2
    written = [w.index for cp in writes for w in cp.windows]  # type: ignore[union-attr]
    assert sorted(written) == list(range(len(transcriber.seen)))


async def test_finished_windows_reach_the_store_while_the_job_runs(
    store: JobStore, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    # What a crash would leave: the checkpoint as written during the run, without the
    # final write that every orderly way out makes.
    path, _ = burst_file
    gate = _Gate(allow=2)
    pipeline = Pipeline(gate, store=store, concurrency=1)
    saved: set[int] = set()
    statuses: list[JobStatus] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(pipeline.run, path, job_id="running"))
            await gate.reached.wait()
            async with aclosing(store.watch("running", cursor="0")) as events:
                async for event in events:
                    checkpoint = event.changes.checkpoint
                    if event.kind is EventKind.CHECKPOINTED and checkpoint:
                        saved.update(w.index for w in checkpoint.windows)
                        statuses.append(event.status)
                    if saved == {0, 1}:
                        break
            tg.cancel_scope.cancel()
    assert saved == {0, 1}
    assert set(statuses) == {JobStatus.RUNNING}


def test_negative_checkpoint_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_interval"):
        Pipeline(BurstTranscriber(), checkpoint_interval=-1)
