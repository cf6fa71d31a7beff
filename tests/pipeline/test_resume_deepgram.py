"""Resume against a Deepgram-speaking server: no window is paid for twice.

A run is interrupted (cancelled) after some windows were transcribed; running the same
``job_id`` again must send the server only the windows it has not seen, and produce
the same artifacts as a run that was never interrupted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import pytest

from audioflow import (
    JobStatus,
    JobStore,
    Pipeline,
    TranscriberUnavailableError,
    WindowTranscript,
)
from audioflow.testing import FakeDeepgramServer, Fault
from audioflow.transcribers import AudioWindow, WindowCallback
from audioflow.transcribers.deepgram import DeepgramTranscriber

pytestmark = pytest.mark.anyio
KEY = "resume-test-key"


@pytest.fixture
def server() -> Iterator[FakeDeepgramServer]:
    with FakeDeepgramServer(api_key=KEY) as fake:
        yield fake


def deepgram(server: FakeDeepgramServer) -> DeepgramTranscriber:
    return DeepgramTranscriber(KEY, base_url=server.url, max_window=2.0, max_batch=1)


class _StopAfter:
    """Delegates to a real transcriber, then holds every call after ``allow`` windows."""

    def __init__(self, inner: DeepgramTranscriber, allow: int) -> None:
        self.inner = inner
        self.name, self.max_window, self.max_batch = inner.name, inner.max_window, 1
        self.pack_gap = inner.pack_gap
        self.fingerprint = inner.fingerprint  # the same transcriber: the same checkpoints
        self.allow = allow
        self.sent = 0
        self.held = anyio.Event()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        if self.sent >= self.allow:
            self.held.set()
            await anyio.sleep_forever()
        self.sent += len(windows)
        return await self.inner.transcribe(windows, language=language, on_window=on_window)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_resumed_job_sends_only_missing_windows(
    store: JobStore,
    server: FakeDeepgramServer,
    burst_file: tuple[Path, list[tuple[int, float, float]]],
) -> None:
    path, _ = burst_file
    async with Pipeline(deepgram(server), concurrency=1) as pipeline:
        fresh = await pipeline.run(path)
    whole = list(server.requests)
    assert len(whole) >= 4
    seen = len(whole)

    gate = _StopAfter(deepgram(server), allow=2)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            # One call at a time, so no request is in flight when the run is cancelled
            # (one that is may have reached the server and will be sent again).
            async with Pipeline(gate, store=store, concurrency=1) as interrupted:
                tg.start_soon(functools.partial(interrupted.run, path, job_id="dg-1"))
                await gate.held.wait()
                tg.cancel_scope.cancel()
    job = await store.get("dg-1")
    assert job is not None and job.status is JobStatus.CANCELLED
    assert job.checkpoint is not None and len(job.checkpoint.windows) == 2
    assert len(server.requests) == seen + 2

    async with Pipeline(deepgram(server), store=store, concurrency=1) as pipeline:
        resumed = await pipeline.run(path, job_id="dg-1")
    # Both runs together sent each window exactly once: as many requests, as much audio.
    again = server.requests[seen:]
    assert len(again) == len(whole)
    assert [r.audio_seconds for r in again] == pytest.approx([r.audio_seconds for r in whole])
    assert resumed.artifacts == fresh.artifacts
    assert resumed.usage.billed_seconds == pytest.approx(sum(r.audio_seconds or 0 for r in whole))


class _Calls(DeepgramTranscriber):
    """Records how many windows each call carried."""

    sizes: list[int]

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        self.sizes = [*getattr(self, "sizes", []), len(windows)]
        return await super().transcribe(windows, language=language, on_window=on_window)


async def test_windows_answered_before_a_fault_in_their_batch_are_kept(
    store: JobStore,
    server: FakeDeepgramServer,
    burst_file: tuple[Path, list[tuple[int, float, float]]],
) -> None:
    # Deepgram's default batch (8 windows a call), one request at a time so that the
    # fault lands on a known window: the 4th answer (the second call's 3rd) is a 503.
    path, _ = burst_file

    def batched() -> _Calls:
        return _Calls(KEY, base_url=server.url, max_window=2.0, concurrency=1, max_retries=0)

    async with Pipeline(batched(), concurrency=1) as pipeline:
        fresh = await pipeline.run(path)
    whole = list(server.requests)
    assert len(whole) >= 5
    seen = len(whole)

    server.push(Fault(), Fault(), Fault(), Fault.unavailable())
    transcriber = batched()
    async with Pipeline(transcriber, store=store, concurrency=1) as failing:
        with pytest.raises(TranscriberUnavailableError):
            await failing.run(path, job_id="dg-batch")
    # The first window goes alone; the fault hit the 3rd window of the next batch.
    assert transcriber.sizes[0] == 1 and transcriber.sizes[1] >= 4
    failed_run = server.requests[seen:]
    assert [r.status for r in failed_run] == [200, 200, 200, 503]
    job = await store.get("dg-batch")
    assert job is not None and job.status is JobStatus.FAILED
    assert job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == [0, 1, 2]  # answered, so kept
    billed = sum(r.audio_seconds or 0 for r in failed_run if r.status == 200)
    assert job.usage.billed_seconds == pytest.approx(billed)  # and recorded as paid for

    async with Pipeline(batched(), store=store, concurrency=1) as pipeline:
        resumed = await pipeline.run(path, job_id="dg-batch")
    again = server.requests[seen + len(failed_run) :]
    # Only the windows never answered went out again: those after the third.
    assert [r.audio_seconds for r in again] == pytest.approx([r.audio_seconds for r in whole[3:]])
    assert resumed.artifacts == fresh.artifacts
    job = await store.get("dg-batch")
    assert job is not None and job.status is JobStatus.COMPLETED
    total = sum(r.audio_seconds or 0 for r in whole)
    assert job.usage.billed_seconds == pytest.approx(total)
