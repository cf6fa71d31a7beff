"""Transcribe: packing, batching, order, and words landing on the original timeline.

Real audio (tone bursts at known times) goes through real packing, real VAD and the
model-free ``BurstTranscriber``, which names each burst by its frequency, so every word
can be checked against the time it was played.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import numpy as np
import pytest
from anyio.abc import ObjectSendStream

from audioflow import AudioChunk, SpeechSegment, TranscriberAuthError, TranscriptionError
from audioflow.records import TranscriptSegment
from audioflow.stages.base import StageContext, run_stages
from audioflow.stages.transcribe import Transcribe, WindowPacker
from audioflow.stages.vad import DetectSpeech
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, WindowCallback, WindowTranscript

pytestmark = pytest.mark.anyio
RATE = 16_000

# (frequency Hz, start s, end s): bursts spread over a minute, several per window.
BURSTS = [(300 + 100 * i, 2.0 + 4.7 * i, 2.0 + 4.7 * i + 0.3 + 0.05 * (i % 4)) for i in range(12)]


def scene() -> np.ndarray:
    audio = np.zeros(int(62 * RATE), dtype=np.float32)
    for freq, start, end in BURSTS:
        t = np.arange(round((end - start) * RATE)) / RATE
        a = round(start * RATE)
        audio[a : a + len(t)] = 0.5 * np.sin(2 * np.pi * freq * t)
    return audio


def segments_around_bursts(audio: np.ndarray, pad: float = 0.2) -> list[SpeechSegment]:
    out = []
    for _, start, end in BURSTS:
        a, b = round((start - pad) * RATE), round((end + pad) * RATE)
        out.append(SpeechSegment(start=a / RATE, end=b / RATE, samples=audio[a:b]))
    return out


def assert_words_at_burst_times(segments: Sequence[object], tolerance: float = 0.015) -> None:
    words = [w for s in segments for w in s.words]  # type: ignore[attr-defined]
    assert [w.text for w in words] == [f"f{freq}" for freq, _, _ in BURSTS]
    for word, (_, start, end) in zip(words, BURSTS, strict=True):
        assert word.start == pytest.approx(start, abs=tolerance)
        assert word.end == pytest.approx(end, abs=tolerance)


def test_packer_fills_windows_without_exceeding_them() -> None:
    packer = WindowPacker(2.0, gap=0.1)
    segs = segments_around_bursts(scene())
    windows = [w for s in segs for w in packer.push(s)] + packer.finish()
    assert [w.window.index for w in windows] == list(range(len(windows)))
    assert all(w.window.duration <= 2.0 for w in windows)
    assert len(windows) < len(segs)  # several segments share a window
    spans = [
        t for w in windows for p in w.timeline.pieces for t in (p.original_start, p.original_end)
    ]
    assert spans == pytest.approx([t for s in segs for t in (s.start, s.end)])
    for w in windows:
        assert w.timeline.packed_duration == pytest.approx(w.window.duration)


def test_packer_takes_segments_that_touch_or_overlap() -> None:
    # Padded segments that meet in the middle of a short pause touch; in seconds they
    # can overlap by a rounding error (this failed a job with padding=0.4). A real
    # overlap loses the later segment's head: spans stay ordered and disjoint.
    audio = np.arange(3 * RATE, dtype=np.float32)
    first = SpeechSegment(start=0.1 + 0.2, end=1.0, samples=audio[4800:16000])
    touching = SpeechSegment(start=1.0 - 1e-12, end=1.5, samples=audio[16000:24000])
    overlapping = SpeechSegment(start=1.4, end=2.0, samples=audio[22400:32000])
    packer = WindowPacker(30.0, gap=0.0)
    for segment in (first, touching, overlapping):
        assert packer.push(segment) == []
    (window,) = packer.finish()
    pieces = window.timeline.pieces
    edges = [t for p in pieces for t in (p.original_start, p.original_end)]
    assert edges == pytest.approx([0.3, 1.0, 1.0, 1.5, 1.5, 2.0])
    # The overlapping head (1.4-1.5 s) was dropped, not transcribed twice.
    assert np.array_equal(window.window.samples, audio[4800:32000])


def test_packer_cuts_a_segment_longer_than_a_window() -> None:
    long = SpeechSegment(start=10.0, end=22.0, samples=np.ones(12 * RATE, dtype=np.float32))
    packer = WindowPacker(5.0)
    windows = packer.push(long) + packer.finish()
    assert [w.window.duration for w in windows] == pytest.approx([5.0, 5.0, 2.0])
    assert [w.timeline.pieces[0].original_start for w in windows] == pytest.approx([10, 15, 20])


def test_packer_keeps_the_detected_speech_bounds_of_every_piece() -> None:
    # Padded 10-22 s, speech heard 10.4-21.6 s, cut into 5 s windows.
    long = SpeechSegment(
        start=10.0,
        end=22.0,
        samples=np.ones(12 * RATE, dtype=np.float32),
        speech_start=10.4,
        speech_end=21.6,
    )
    packer = WindowPacker(5.0)
    windows = packer.push(long) + packer.finish()
    bounds = [(p.speech_start, p.speech_end) for w in windows for p in w.timeline.pieces]
    assert bounds == [(pytest.approx(10.4), None), (None, None), (None, pytest.approx(21.6))]
    # A word in the leading padding starts where speech was heard.
    assert windows[0].timeline.map_span(0.0, 0.6) == pytest.approx((10.4, 10.6))


class _Gated(BurstTranscriber):
    """Holds every call until ``gate`` opens, so that windows queue up meanwhile."""

    def __init__(self) -> None:
        super().__init__(max_window=2.0, max_batch=2)
        self.gate = anyio.Event()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        await self.gate.wait()
        return await super().transcribe(windows, language=language, on_window=on_window)


async def test_words_land_on_the_original_timeline_across_packed_windows() -> None:
    transcriber = _Gated()
    stage = Transcribe(transcriber, concurrency=2)
    out: list[object] = []

    async def run() -> None:
        out.extend(await run_stages(segments_around_bursts(scene()), stage))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()  # two calls held, the next windows queued
        transcriber.gate.set()
    assert_words_at_burst_times(out)
    assert stage.windows > 3
    assert sorted(transcriber.seen) == list(range(stage.windows))
    assert transcriber.calls < stage.windows  # queued windows went out as batches
    assert stage.usage.requests == stage.windows
    assert stage.language == "tones"


class _Recording(BurstTranscriber):
    """Records which windows each call held."""

    def __init__(self) -> None:
        super().__init__(max_window=2.0, max_batch=3)
        self.batches: list[list[int]] = []

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        self.batches.append([w.index for w in windows])
        return await super().transcribe(windows, language=language, on_window=on_window)


async def _trickle(segments: list[SpeechSegment], send: ObjectSendStream[SpeechSegment]) -> None:
    # Each segment is sent only once the stage has nothing left to do: every batch
    # that could go out early, with what it has, would.
    async with send:
        for segment in segments:
            await anyio.wait_all_tasks_blocked()
            await send.send(segment)


async def test_the_first_window_goes_alone_then_consecutive_batches_whatever_the_timing() -> None:
    transcriber = _Recording()
    stage = Transcribe(transcriber, concurrency=2)
    send, receive = anyio.create_memory_object_stream[SpeechSegment]()
    out_send, out_receive = anyio.create_memory_object_stream[TranscriptSegment](100)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_trickle, segments_around_bursts(scene()), send)
        tg.start_soon(stage.run, receive, out_send, StageContext(job_id="j"))
    async with out_receive:
        assert_words_at_burst_times([s async for s in out_receive])
    n = stage.windows
    assert n > 4
    # Window 0 alone (its call starts at once, and a short file makes two calls), then
    # threes: which windows share a call never depends on when they came.
    assert transcriber.batches == [[0]] + [list(range(i, min(i + 3, n))) for i in range(1, n, 3)]


async def test_batch_wait_sends_what_has_come_after_that_long() -> None:
    transcriber = _Recording()
    stage = Transcribe(transcriber, batch_wait=0.0)
    send, receive = anyio.create_memory_object_stream[SpeechSegment]()
    out_send, out_receive = anyio.create_memory_object_stream[TranscriptSegment](100)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_trickle, segments_around_bursts(scene()), send)
        tg.start_soon(stage.run, receive, out_send, StageContext(job_id="j"))
    async with out_receive:
        assert_words_at_burst_times([s async for s in out_receive])
    assert [i for b in transcriber.batches for i in b] == list(range(stage.windows))
    assert len(transcriber.batches) == stage.windows  # nothing waited for a second window


async def test_chain_with_real_speech_detection() -> None:
    audio = scene()
    chunks = [
        AudioChunk(samples=audio[i : i + 10 * RATE], start=i / RATE)
        for i in range(0, len(audio), 10 * RATE)
    ]
    out = await run_stages(
        chunks,
        DetectSpeech("energy", padding=0.2),
        Transcribe(BurstTranscriber(max_window=8.0, max_batch=3)),
    )
    assert_words_at_burst_times(out)


class _ReversedCalls(BurstTranscriber):
    """Finishes the call holding window 0 only after the call holding window 1."""

    def __init__(self) -> None:
        super().__init__(max_window=5.0, max_batch=1)
        self.window1_done = anyio.Event()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        if windows[0].index == 0:
            await self.window1_done.wait()
        out = await super().transcribe(windows, language=language, on_window=on_window)
        if windows[0].index == 1:
            self.window1_done.set()
        return out


async def test_segments_come_out_in_window_order_whatever_finishes_first() -> None:
    transcriber = _ReversedCalls()
    with anyio.fail_after(30):
        out = await run_stages(
            segments_around_bursts(scene()), Transcribe(transcriber, concurrency=2)
        )
    assert transcriber.seen[:2] == [1, 0]
    assert_words_at_burst_times(out)


async def test_done_windows_are_not_transcribed_again() -> None:
    first = BurstTranscriber(max_window=5.0, max_batch=1)
    finished: list[WindowTranscript] = []
    keep = finished.append

    full = await run_stages(segments_around_bursts(scene()), Transcribe(first, on_window=keep))
    assert sorted(r.index for r in finished) == list(range(len(finished)))
    finished.sort(key=lambda r: r.index)
    again = BurstTranscriber(max_window=5.0, max_batch=1)
    done = {r.index: r for r in finished[:3]}
    resumed = await run_stages(
        segments_around_bursts(scene()), Transcribe(again, done=done, on_window=keep)
    )
    assert 0 not in again.seen and 1 not in again.seen and 2 not in again.seen
    assert sorted(again.seen) == list(range(3, len(finished)))
    assert resumed == full


class _Failing(BurstTranscriber):
    def __init__(self, exc: Exception) -> None:
        super().__init__(max_window=5.0)
        self.exc = exc

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        raise self.exc


async def test_backend_errors_become_transcription_errors() -> None:
    with pytest.raises(TranscriptionError, match="bursts transcriber failed") as info:
        await run_stages(segments_around_bursts(scene()), Transcribe(_Failing(OSError("x"))))
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(TranscriberAuthError):
        await run_stages(
            segments_around_bursts(scene()),
            Transcribe(_Failing(TranscriberAuthError("bad key"))),
        )


async def test_no_speech_gives_no_segments() -> None:
    transcriber = BurstTranscriber()
    assert await run_stages([], Transcribe(transcriber)) == []
    assert transcriber.calls == 0


class _Loading(BurstTranscriber):
    """Has a model to load; records whether ``load`` ran before the first transcribe."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(max_window=5.0)
        self.events: list[str] = []
        self.fail = fail
        self.loading = anyio.Event()

    async def load(self) -> None:
        self.events.append("load")
        self.loading.set()
        if self.fail:
            raise TranscriptionError("model file is damaged")

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        self.events.append("transcribe")
        return await super().transcribe(windows, language=language, on_window=on_window)


async def test_the_model_loads_while_speech_is_still_coming() -> None:
    transcriber = _Loading()
    send, inbox = anyio.create_memory_object_stream[SpeechSegment](10)
    outbox, receive = anyio.create_memory_object_stream[TranscriptSegment](100)
    async with anyio.create_task_group() as tg:
        tg.start_soon(Transcribe(transcriber).run, inbox, outbox, StageContext())
        with anyio.fail_after(5):
            await transcriber.loading.wait()  # before any speech was sent
        async with send:
            for segment in segments_around_bursts(scene()):
                await send.send(segment)
        async with receive:
            out = [segment async for segment in receive]
    assert transcriber.events[0] == "load"
    assert "transcribe" in transcriber.events
    assert_words_at_burst_times(out)


async def test_a_failed_load_is_left_to_the_first_call() -> None:
    # No speech: nothing to transcribe, so a model that would not load is no error.
    assert await run_stages([], Transcribe(_Loading(fail=True))) == []
    # With speech, the job still gets transcripts when transcribe itself works (here
    # the fake's transcribe does not need the model; WhisperTranscriber's first call
    # would raise the load error again, wrapped with the job's context).
    transcriber = _Loading(fail=True)
    out = await run_stages(segments_around_bursts(scene()), Transcribe(transcriber))
    assert transcriber.events[0] == "load"
    assert_words_at_burst_times(out)


def test_pack_gap_has_one_default_for_the_stage_and_the_checkpoint_key() -> None:
    from audioflow import Pipeline
    from audioflow.transcribers.base import DEFAULT_PACK_GAP, pack_gap

    plain = BurstTranscriber(max_window=2.0, max_batch=1)  # declares no pack_gap
    assert not hasattr(plain, "pack_gap")
    assert Transcribe(plain).gap == pack_gap(plain) == DEFAULT_PACK_GAP
    declared = BurstTranscriber(max_window=2.0, max_batch=1)
    declared.pack_gap = DEFAULT_PACK_GAP  # type: ignore[attr-defined]
    # Declaring the default is the same as leaving it out: same windows, same key.
    assert Pipeline(plain)._checkpoint_key("x.wav") == Pipeline(declared)._checkpoint_key("x.wav")
    declared.pack_gap = 0.0  # type: ignore[attr-defined]
    assert Transcribe(declared).gap == 0.0
    assert Pipeline(plain)._checkpoint_key("x.wav") != Pipeline(declared)._checkpoint_key("x.wav")


def test_a_transcriber_without_a_vad_gets_energy_detection() -> None:
    from audioflow import Pipeline
    from audioflow.transcribers.base import DEFAULT_VAD, default_vad

    plain = BurstTranscriber(max_window=2.0, max_batch=1)
    assert default_vad(plain) == DEFAULT_VAD == "energy"
    assert Pipeline(plain).vad == "energy"
    plain.vad = "webrtc"  # type: ignore[attr-defined]
    assert Pipeline(plain).vad == "webrtc"
