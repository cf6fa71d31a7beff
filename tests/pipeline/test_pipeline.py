"""End-to-end: Pipeline.run through the public API, on real media, with both stores."""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from burst_media import bursts, write_bursts

from audioflow import (
    DecodeError,
    JobStatus,
    JobStore,
    Pipeline,
    Progress,
    Transcript,
)
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript

pytestmark = pytest.mark.anyio


def words_of(transcript: Transcript | None) -> list[tuple[str, float, float]]:
    assert transcript is not None
    return [(w.text, w.start, w.end) for s in transcript.segments for w in s.words]


def assert_words_at(
    transcript: Transcript | None, plan: Sequence[tuple[int, float, float]]
) -> None:
    words = words_of(transcript)
    assert [w[0] for w in words] == [f"f{freq}" for freq, _, _ in plan]
    for (_, start, end), (_, ws, we) in zip(plan, words, strict=True):
        assert ws == pytest.approx(start, abs=0.02)
        assert we == pytest.approx(end, abs=0.02)


async def test_job_completes_with_result_artifacts_and_monotone_progress(
    store: JobStore, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    path, plan = burst_file
    seen: list[Progress] = []
    pipeline = Pipeline(BurstTranscriber(max_window=4.0), store=store, progress_interval=0.0)
    result = await pipeline.run(path, job_id="job-1", on_progress=seen.append)
    assert_words_at(result.transcript, plan)
    assert set(result.artifacts) == {"srt", "vtt", "json", "txt", "md"}
    assert "f400" in result.artifacts["srt"] and "WEBVTT" in result.artifacts["vtt"]
    assert result.media is not None and result.media.duration == pytest.approx(25.0, abs=0.05)
    assert result.quality is not None and result.usage.requests > 0
    job = await store.get("job-1")
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.artifacts == result.artifacts
    assert job.result is not None and job.result.transcript == result.transcript
    assert job.progress.fraction == 1.0 and job.error is None
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(fractions) >= 2
    history = [e async for e in store.watch("job-1", cursor="0")]
    stored = [e.changes.progress.fraction for e in history if e.changes.progress]  # type: ignore[union-attr]
    assert stored == sorted(stored) and stored[-1] == 1.0
    # A completed job_id is not run again: its stored result comes back.
    again = await pipeline.run(path, job_id="job-1")
    assert again.artifacts == result.artifacts


async def test_corrupt_file_fails_the_job_with_a_readable_error(
    store: JobStore, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(os.urandom(20_000))
    before = set(os.listdir(tempfile.gettempdir()))
    pipeline = Pipeline(BurstTranscriber(), store=store)
    with pytest.raises(DecodeError):
        await pipeline.run(bad, job_id="bad-1")
    job = await store.get("bad-1")
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.type in {"UnsupportedMediaError", "CorruptMediaError"}
    assert "broken.mp3" in job.error.message and job.error.stage == "decode"
    assert set(os.listdir(tempfile.gettempdir())) - before == set()


class _Gate(BurstTranscriber):
    """Transcribes ``allow`` windows, then holds every further call until cancelled."""

    def __init__(self, allow: int) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.allow = allow
        self.reached = anyio.Event()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        if len(self.seen) >= self.allow:
            self.reached.set()
            await anyio.sleep_forever()
        return await super().transcribe(windows, language=language, on_window=on_window)


def _own_threads() -> set[str]:
    pools = ("AnyIO worker thread", "Trio thread", "ThreadPoolExecutor", "asyncio_")
    return {t.name for t in threading.enumerate() if not t.name.startswith(pools)}


# 0: a write per window; 3600: only the first window is written while running, so the
# second one is in the checkpoint only if cancelling writes it on the way out.
@pytest.mark.parametrize("checkpoint_interval", [0.0, 3600.0])
async def test_cancelled_run_is_marked_cancelled_and_resumes_without_repeating_windows(
    store: JobStore,
    burst_file: tuple[Path, list[tuple[int, float, float]]],
    checkpoint_interval: float,
) -> None:
    path, plan = burst_file
    threads = _own_threads()
    gate = _Gate(allow=2)
    pipeline = Pipeline(gate, store=store, concurrency=1, checkpoint_interval=checkpoint_interval)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(pipeline.run, path, job_id="resume-1"))
            await gate.reached.wait()
            tg.cancel_scope.cancel()
    job = await store.get("resume-1")
    assert job is not None and job.status is JobStatus.CANCELLED
    assert job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == [0, 1]
    assert _own_threads() - threads == set()

    second = BurstTranscriber(max_window=2.0, max_batch=1)
    resumed = await Pipeline(second, store=store, concurrency=1).run(path, job_id="resume-1")
    assert second.seen == list(range(2, 2 + len(second.seen)))  # nothing sent again
    assert len(second.seen) >= 2
    fresh = await Pipeline(BurstTranscriber(max_window=2.0, max_batch=1)).run(path)
    assert resumed.artifacts == fresh.artifacts
    assert_words_at(resumed.transcript, plan)
    job = await store.get("resume-1")
    assert job is not None and job.status is JobStatus.COMPLETED


async def test_a_checkpoint_cut_another_way_is_not_reused(
    store: JobStore,
    burst_file: tuple[Path, list[tuple[int, float, float]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Windows kept under an earlier way of cutting them (an upgrade between the run and
    # its resume) would be mapped onto other windows: the resume transcribes afresh.
    import audioflow.pipeline

    path, plan = burst_file
    monkeypatch.setattr(audioflow.pipeline, "_WINDOWS_VERSION", 1)
    gate = _Gate(allow=2)
    pipeline = Pipeline(gate, store=store, concurrency=1)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(pipeline.run, path, job_id="resume-v1"))
            await gate.reached.wait()
            tg.cancel_scope.cancel()
    job = await store.get("resume-v1")
    assert job is not None and job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == [0, 1]

    monkeypatch.setattr(audioflow.pipeline, "_WINDOWS_VERSION", 2)
    second = BurstTranscriber(max_window=2.0, max_batch=1)
    resumed = await Pipeline(second, store=store, concurrency=1).run(path, job_id="resume-v1")
    assert second.seen[:2] == [0, 1]  # the kept windows were transcribed again
    assert second.seen == list(range(len(second.seen)))
    assert_words_at(resumed.transcript, plan)


async def test_progress_shows_the_furthest_stage_and_counts_windows_as_answered(
    store: JobStore, tmp_path: Path
) -> None:
    # Decoding and speech detection report until their end, after transcription began;
    # the job's progress must not fall back to them ("30 % vad" with windows done).
    path = write_bursts(tmp_path / "talk.flac", bursts(500, count=24, spacing=2.0), 50.0)
    seen: list[Progress] = []
    pipeline = Pipeline(
        BurstTranscriber(max_window=4.0), store=store, chunk_seconds=5.0, progress_interval=0.0
    )
    await pipeline.run(path, job_id="progress-1", on_progress=seen.append)
    order = ["decode", "vad", "transcribe", "render"]
    stages = [order.index(p.stage) for p in seen if p.stage is not None]
    assert stages == sorted(stages)  # never back to an earlier stage
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)
    counted = [p.message for p in seen if p.stage == "transcribe" and "window" in p.message]
    assert counted and counted[-1].endswith("window(s) transcribed")
    job = await store.get("progress-1")
    assert job is not None and job.progress.stage == "render"


async def test_cancelling_mid_decode_ends_the_job_within_a_second(
    store: JobStore, tmp_path: Path
) -> None:
    # Ten minutes in 30 s chunks: cancelled at the first decode progress, while the
    # decoder thread is still at work.
    path = write_bursts(tmp_path / "long.flac", bursts(500, count=100, spacing=5.9), 600.0)
    threads = _own_threads()
    decoding = anyio.Event()

    def seen(progress: Progress) -> None:
        if progress.stage == "decode":
            decoding.set()

    pipeline = Pipeline(BurstTranscriber(), store=store, chunk_seconds=30.0, progress_interval=0.0)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(pipeline.run, path, job_id="stop-1", on_progress=seen))
            await decoding.wait()
            cancelled_at = anyio.current_time()
            tg.cancel_scope.cancel()
    # The bound; it takes one chunk of decoding (milliseconds), so this margin
    # is not a timing race.
    assert anyio.current_time() - cancelled_at < 1.0
    job = await store.get("stop-1")
    assert job is not None and job.status is JobStatus.CANCELLED
    assert job.progress.fraction < 1.0
    assert _own_threads() - threads == set()


async def test_many_jobs_at_once_keep_their_own_records(store: JobStore, tmp_path: Path) -> None:
    plans = {f"many-{i}": bursts(300 + 180 * i, count=3) for i in range(20)}
    paths = {
        job_id: write_bursts(tmp_path / f"{job_id}.wav", p, 9.0) for job_id, p in plans.items()
    }
    pipeline = Pipeline(BurstTranscriber(max_window=4.0), store=store, progress_interval=0.0)
    results = {}

    async def one(job_id: str) -> None:
        results[job_id] = await pipeline.run(paths[job_id], job_id=job_id)

    async with anyio.create_task_group() as tg:
        for job_id in plans:
            tg.start_soon(one, job_id)
    for job_id, plan in plans.items():
        assert_words_at(results[job_id].transcript, plan)
        job = await store.get(job_id)
        assert job is not None and job.status is JobStatus.COMPLETED
        assert job.source == str(paths[job_id])
        assert job.result is not None and job.result.transcript == results[job_id].transcript


async def test_run_many_reports_each_failure_in_its_slot(
    store: JobStore, tmp_path: Path, burst_file: tuple[Path, list[tuple[int, float, float]]]
) -> None:
    path, plan = burst_file
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    pipeline = Pipeline(BurstTranscriber(max_window=4.0), store=store)
    progress: dict[int, list[float]] = {0: [], 1: [], 2: []}
    ended: list[tuple[int, object]] = []
    out = await pipeline.run_many(
        [path, bad, path],
        concurrency=2,
        on_progress=lambda i, p: progress[i].append(p.fraction),
        on_done=lambda i, result: ended.append((i, result)),
    )
    assert len(out) == 3
    assert isinstance(out[1], DecodeError)
    for ok in (out[0], out[2]):
        assert not isinstance(ok, Exception)
        assert_words_at(ok.transcript, plan)
    # Each source's progress under its own index, and each end reported once, with
    # what its slot holds.
    assert sorted(i for i, _ in ended) == [0, 1, 2]
    assert all(out[i] is result for i, result in ended)
    for i in (0, 2):
        assert progress[i] == sorted(progress[i]) and progress[i][-1] == 1.0


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        Pipeline(BurstTranscriber(), formats=["srt", "docx"])
