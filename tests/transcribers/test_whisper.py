"""WhisperTranscriber on real speech: accuracy, word timing, batching and concurrency.

The speech fixtures are espeak-ng sentences with their reference text
(``tests/data/speech``); the model is the bundled Whisper-base, loaded once per session.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from audioflow.errors import ConfigurationError, MissingDependencyError
from audioflow.transcribers import AudioWindow, Transcriber, WindowTranscript
from audioflow.transcribers.whisper import WhisperTranscriber
from support.speech import RATE, SPEECH_DIR, decode_16k, reference, split_at_quiet, wer

pytestmark = pytest.mark.anyio

SHORT = ("weather", "library", "coffee")


def window_text(result: WindowTranscript) -> str:
    return " ".join(s.text for s in result.segments)


def short_windows() -> list[AudioWindow]:
    return [
        AudioWindow(samples=decode_16k(SPEECH_DIR / f"{name}.opus"), index=i)
        for i, name in enumerate(SHORT[:2])
    ]


@pytest.fixture
def transcriber(whisper_model: Any) -> WhisperTranscriber:
    return WhisperTranscriber(whisper_model, max_batch=4)


@pytest.fixture(scope="module")
def paragraph_windows() -> list[AudioWindow]:
    samples = decode_16k(SPEECH_DIR / "paragraph.opus")
    pieces = split_at_quiet(samples, max_seconds=30.0)
    assert len(pieces) >= 2  # the file is 49 s: the test must exercise several windows
    return [AudioWindow(samples=p, index=i) for i, p in enumerate(pieces)]


# ------------------------------------------------------------------------ WER helper


def test_wer_scores_substitutions_insertions_and_deletions() -> None:
    assert wer("the cat sat", "the cat sat") == 0.0
    assert wer("The cat, sat.", "the cat sat") == 0.0  # case and punctuation ignored
    assert wer("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert wer("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert wer("the cat sat", "the fat cat sat") == pytest.approx(1 / 3)
    assert wer("the cat sat", "") == 1.0


# ---------------------------------------------------------------------- accuracy


@pytest.mark.slow
async def test_paragraph_word_error_rate(
    transcriber: WhisperTranscriber, paragraph_windows: list[AudioWindow]
) -> None:
    results = await transcriber.transcribe(paragraph_windows)
    hypothesis = " ".join(window_text(r) for r in results)
    score = wer(reference("paragraph"), hypothesis)
    print(f"WER {score:.3f}: {hypothesis}")
    assert score <= 0.25
    assert [r.index for r in results] == [w.index for w in paragraph_windows]
    assert all(r.language == "en" for r in results)  # detected: no language was given
    assert sum(r.usage.audio_seconds for r in results) == pytest.approx(
        sum(w.duration for w in paragraph_windows)
    )


@pytest.mark.slow
async def test_word_times_are_window_relative_monotone_and_on_speech(
    transcriber: WhisperTranscriber, paragraph_windows: list[AudioWindow]
) -> None:
    results = await transcriber.transcribe(paragraph_windows, language="en")
    on_speech = total = 0
    for window, result in zip(paragraph_windows, results, strict=True):
        words = [w for s in result.segments for w in s.words]
        assert len(words) > 10
        starts = [w.start for w in words]
        assert starts == sorted(starts)
        for word in words:
            assert 0.0 <= word.start <= word.end <= window.duration
            assert word.confidence is not None and 0.0 <= word.confidence <= 1.0
        for seg in result.segments:
            assert seg.start == seg.words[0].start and seg.end == seg.words[-1].end
        # Relative, not absolute: each window's speech begins within its first seconds.
        assert words[0].start < 2.0
        # The words sit on audible audio: their span holds a loud 20 ms frame.
        frame = RATE // 50
        energy = window.samples[: len(window.samples) // frame * frame].reshape(-1, frame) ** 2
        loud = energy.mean(axis=1) > 1e-4
        for word in words:
            a, b = int(word.start * 50), max(int(word.end * 50), int(word.start * 50) + 1)
            on_speech += bool(loud[a:b].any())
            total += 1
    assert on_speech / total >= 0.95


# ------------------------------------------------------------- batching, concurrency


@pytest.mark.slow
async def test_batched_and_concurrent_calls_match_one_at_a_time(
    transcriber: WhisperTranscriber, whisper_model: Any
) -> None:
    windows = short_windows()
    sequential = [(await transcriber.transcribe([w], language="en"))[0] for w in windows]

    batched = await transcriber.transcribe(windows, language="en")

    concurrent: dict[int, WindowTranscript] = {}
    # Two limiter tokens: both calls are inside faster-whisper at once, in two threads
    # sharing one model, so per-call state that leaked between them would show here.
    parallel = WhisperTranscriber(whisper_model, limiter=anyio.CapacityLimiter(2))

    async def one(window: AudioWindow) -> None:
        # language detected here, given elsewhere: both must reach the same text
        [concurrent[window.index]] = await parallel.transcribe([window])

    async with anyio.create_task_group() as tg:
        for window in windows:
            tg.start_soon(one, window)

    for i, window in enumerate(windows):
        expected = sequential[i]
        assert window_text(expected)
        assert wer(reference(SHORT[i]), window_text(expected)) <= 0.35
        assert concurrent[window.index].language == "en"
        for other in (batched[i], concurrent[window.index]):
            assert other.index == window.index
            assert window_text(other) == window_text(expected)
            assert [(w.start, w.end) for s in other.segments for w in s.words] == [
                (w.start, w.end) for s in expected.segments for w in s.words
            ]


def words_of(result: WindowTranscript) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for s in result.segments for w in s.words]


@pytest.mark.slow
async def test_greedy_first_decoding_beams_exactly_the_unsure_windows(
    whisper_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audioflow.transcribers import _whisper_batch

    windows = [
        AudioWindow(samples=decode_16k(SPEECH_DIR / f"{name}.opus"), index=i)
        for i, name in enumerate(SHORT)
    ]
    beam = await WhisperTranscriber(whisper_model, beam_below=None).transcribe(
        windows, language="en"
    )
    greedy = await WhisperTranscriber(whisper_model, beam_size=1).transcribe(
        windows, language="en"
    )

    # Greedy everywhere (nothing is below -inf): the greedy pass's own scores are seen.
    scores: list[float] = []
    generate = _whisper_batch.WindowPipeline.generate_segment_batched

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        encoder_output, output = generate(self, *args, **kwargs)
        scores.extend(o["avg_logprob"] for o in output)
        return encoder_output, output

    monkeypatch.setattr(_whisper_batch.WindowPipeline, "generate_segment_batched", spy)
    never = WhisperTranscriber(whisper_model, beam_below=-math.inf)
    assert [words_of(r) for r in await never.transcribe(windows, language="en")] == [
        words_of(r) for r in greedy
    ]
    assert (never.beamed, never.windows) == (0, 3)
    monkeypatch.undo()

    always = WhisperTranscriber(whisper_model, beam_below=math.inf)
    assert [words_of(r) for r in await always.transcribe(windows, language="en")] == [
        words_of(r) for r in beam
    ]
    assert (always.beamed, always.windows) == (3, 3)

    # A threshold between the scores: the windows below it get the beam's answer, the
    # others keep the greedy one, each decoded beside the others in one batch.
    ranked = sorted(scores)
    assert len(set(ranked)) == 3
    threshold = (ranked[0] + ranked[1]) / 2
    mixed = WhisperTranscriber(whisper_model, beam_below=threshold)
    results = await mixed.transcribe(windows, language="en")
    assert mixed.beamed == 1
    for i, result in enumerate(results):
        expected = beam[i] if scores[i] < threshold else greedy[i]
        assert words_of(result) == words_of(expected)
        assert wer(reference(SHORT[i]), window_text(result)) <= 0.35


@pytest.mark.slow
async def test_encoding_a_few_windows_at_a_time_changes_no_word(whisper_model: Any) -> None:
    windows = [
        AudioWindow(samples=decode_16k(SPEECH_DIR / f"{name}.opus"), index=i)
        for i, name in enumerate(SHORT)
    ]
    whole = await WhisperTranscriber(whisper_model, encode_batch=4).transcribe(
        windows, language="en"
    )
    one_by_one = await WhisperTranscriber(whisper_model, encode_batch=1).transcribe(
        windows, language="en"
    )
    assert all(words_of(r) for r in whole)
    assert [words_of(r) for r in one_by_one] == [words_of(r) for r in whole]


@pytest.mark.slow
async def test_two_calls_run_at_once_each_encoding_a_window_at_a_time(
    whisper_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While one call is in the beam search (which leaves cores idle), the other is
    # encoded or searched too; the encoder's attention is the largest transient
    # buffer, so each pass takes one window (encode_batch=1): two at most at once.
    import threading

    from audioflow.transcribers import _whisper_batch

    both_in = threading.Barrier(2, timeout=60)
    lock = threading.Lock()
    encoding = 0
    most = 0
    sizes: list[int] = []
    generate = _whisper_batch.WindowPipeline.generate_segment_batched
    encode = type(whisper_model).encode

    def spy_generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        both_in.wait()  # breaks (and fails the test) unless both calls are in flight
        return generate(self, *args, **kwargs)

    def spy_encode(self: Any, features: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal encoding, most
        with lock:
            encoding += 1
            most = max(most, encoding)
            sizes.append(len(features))
        try:
            return encode(self, features, *args, **kwargs)
        finally:
            with lock:
                encoding -= 1

    monkeypatch.setattr(_whisper_batch.WindowPipeline, "generate_segment_batched", spy_generate)
    monkeypatch.setattr(type(whisper_model), "encode", spy_encode)
    transcriber = WhisperTranscriber(whisper_model, num_workers=2, max_batch=2)
    names = [*SHORT, SHORT[0]]
    windows = [
        AudioWindow(samples=decode_16k(SPEECH_DIR / f"{name}.opus"), index=i)
        for i, name in enumerate(names)
    ]
    results: dict[int, WindowTranscript] = {}

    async def two(pair: list[AudioWindow]) -> None:
        out = await transcriber.transcribe(pair, language="en")
        for window, result in zip(pair, out, strict=True):
            results[window.index] = result

    async with anyio.create_task_group() as tg:
        tg.start_soon(two, windows[:2])
        tg.start_soon(two, windows[2:4])
    assert sizes == [1, 1, 1, 1]  # four windows, one per encoder pass
    assert most <= 2
    for i, name in enumerate(names):
        assert wer(reference(name), window_text(results[i])) <= 0.35


@pytest.mark.slow
async def test_a_cancelled_call_returns_without_waiting_for_the_model(
    whisper_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    started, finished, release = threading.Event(), threading.Event(), threading.Event()
    transcriber = WhisperTranscriber(whisper_model)
    inner = transcriber._transcribe_sync

    def held(*args: Any) -> Any:
        started.set()
        release.wait(60)  # the model "runs" until the test lets it go
        try:
            return inner(*args)
        finally:
            finished.set()

    monkeypatch.setattr(transcriber, "_transcribe_sync", held)
    async with anyio.create_task_group() as tg:
        tg.start_soon(transcriber.transcribe, short_windows()[:1])
        await anyio.to_thread.run_sync(started.wait, 60)
        tg.cancel_scope.cancel()
    # The call is gone while its model call still runs; that thread ends on its own.
    assert not finished.is_set()
    release.set()
    await anyio.to_thread.run_sync(finished.wait, 60)


@pytest.mark.slow
async def test_translate_gives_english_and_its_own_checkpoints(whisper_model: Any) -> None:
    from audioflow import Pipeline

    spanish = AudioWindow(samples=decode_16k(SPEECH_DIR / "spanish.opus"), index=0)
    heard = await WhisperTranscriber(whisper_model).transcribe([spanish])
    translator = WhisperTranscriber(whisper_model, task="translate")
    [translated] = await translator.transcribe([spanish])
    assert wer(reference("spanish"), window_text(heard[0])) <= 0.35
    english = window_text(translated).lower().replace(",", " ").replace(".", " ").split()
    assert set(english) & {"the", "of", "and", "to", "in", "is", "a", "that"}
    spanish_words = set(reference("spanish").lower().split())
    assert len(set(english) & spanish_words) < len(set(english)) / 2
    # A run that translates does not reuse the windows of one that transcribed.
    keys = {
        Pipeline(t)._checkpoint_key(str(SPEECH_DIR / "spanish.opus"))
        for t in (WhisperTranscriber(whisper_model), translator)
    }
    assert len(keys) == 2
    with pytest.raises(ValueError, match="task"):
        WhisperTranscriber(whisper_model, task="summarize")


@pytest.mark.slow
async def test_language_is_detected_per_window(transcriber: WhisperTranscriber) -> None:
    spanish = AudioWindow(samples=decode_16k(SPEECH_DIR / "spanish.opus"), index=0)
    english = AudioWindow(samples=decode_16k(SPEECH_DIR / "library.opus"), index=1)
    mixed = await transcriber.transcribe([spanish, english])
    assert [r.language for r in mixed] == ["es", "en"]
    assert all(s.language == r.language for r in mixed for s in r.segments)
    # How sure the model was, per window, when it detected the language.
    assert all(r.language_probability is not None for r in mixed)
    assert all(0.5 < (r.language_probability or 0) <= 1.0 for r in mixed)
    assert wer(reference("spanish"), window_text(mixed[0])) <= 0.35
    assert wer(reference("library"), window_text(mixed[1])) <= 0.35
    # A language given is used as is, not detected.
    [forced] = await transcriber.transcribe([english], language="es")
    assert forced.language == "es"
    assert forced.language_probability is None  # given, not detected


@pytest.mark.slow
async def test_inference_does_not_block_the_event_loop(
    transcriber: WhisperTranscriber,
) -> None:
    windows = short_windows()
    await transcriber.transcribe(windows[:1], language="en")  # warm up
    gaps: list[float] = []
    done = anyio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        started = time.perf_counter()
        await transcriber.transcribe(windows, language="en")
        elapsed = time.perf_counter() - started
        done.set()
    # The loop kept ticking through a call lasting seconds: no gap near its length.
    assert elapsed > 0.5
    assert len(gaps) > 10
    assert max(gaps) < elapsed / 2


# ------------------------------------------------------------------ edge cases


async def test_empty_input_and_empty_window(transcriber: WhisperTranscriber) -> None:
    assert await transcriber.transcribe([]) == []
    [result] = await transcriber.transcribe(
        [AudioWindow(samples=np.zeros(0, dtype=np.float32), index=7)], language="en"
    )
    assert result.index == 7 and result.segments == ()


async def test_misuse_is_a_value_error(transcriber: WhisperTranscriber) -> None:
    window = AudioWindow(samples=np.zeros(RATE, dtype=np.float32))
    with pytest.raises(ValueError, match="max_batch"):
        await transcriber.transcribe([window] * 5)
    with pytest.raises(ValueError, match="max_window"):
        await transcriber.transcribe([AudioWindow(samples=np.zeros(31 * RATE, np.float32))])
    with pytest.raises(ValueError, match="16 kHz"):
        await transcriber.transcribe([AudioWindow(samples=window.samples, sample_rate=8000)])


def test_is_a_transcriber(transcriber: WhisperTranscriber) -> None:
    assert isinstance(transcriber, Transcriber)
    assert transcriber.name == "whisper"
    assert transcriber.max_window == 30.0
    assert transcriber.max_batch == 4


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        WhisperTranscriber(max_batch=0)
    with pytest.raises(ValueError, match="encode_batch"):
        WhisperTranscriber(encode_batch=0)
    with pytest.raises(TypeError, match="WhisperModel"):
        WhisperTranscriber(object())  # type: ignore[arg-type]


def test_missing_faster_whisper_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if not installed
    with pytest.raises(MissingDependencyError) as info:
        WhisperTranscriber()
    assert info.value.extra == "whisper"
    assert "audioflow[whisper]" in str(info.value)


@pytest.mark.slow
async def test_explicit_model_directory_loads_and_transcribes(whisper_model_dir: Path) -> None:
    async with WhisperTranscriber(whisper_model_dir, cpu_threads=2) as transcriber:
        await transcriber.load()
        [result] = await transcriber.transcribe(
            [AudioWindow(samples=decode_16k(SPEECH_DIR / "library.opus"))], language="en"
        )
    assert wer(reference("library"), window_text(result)) <= 0.35


async def test_unknown_language_is_a_value_error(transcriber: WhisperTranscriber) -> None:
    window = AudioWindow(samples=np.zeros(RATE, dtype=np.float32))
    with pytest.raises(ValueError, match="'xx'"):
        await transcriber.transcribe([window], language="xx")


async def test_a_model_that_does_not_load_is_a_configuration_error(
    tmp_path: Path, whisper_model_dir: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(whisper_model_dir / name, broken / name)
    (broken / "model.bin").write_bytes(b"\0" * 1024)  # present, so resolution accepts it
    transcriber = WhisperTranscriber(broken)
    with pytest.raises(ConfigurationError, match="could not load"):
        await transcriber.load()
    window = AudioWindow(samples=np.zeros(RATE, dtype=np.float32))
    with pytest.raises(ConfigurationError):
        await transcriber.transcribe([window])


async def test_a_background_load_returns_at_once_and_the_first_call_waits_for_it(
    whisper_model: Any, whisper_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import faster_whisper

    started, release = threading.Event(), threading.Event()
    made: list[str] = []

    def slow_model(path: str, **kwargs: Any) -> Any:
        made.append(path)
        started.set()
        assert release.wait(60)
        return whisper_model

    monkeypatch.setattr(faster_whisper, "WhisperModel", slow_model)
    transcriber = WhisperTranscriber(whisper_model_dir, num_workers=1)
    transcriber.load_in_background()
    assert started.wait(60)  # loading, in another thread, while this one goes on
    assert transcriber._model is None
    [window] = short_windows()[:1]
    async with anyio.create_task_group() as tg:
        results: list[WindowTranscript] = []

        async def call() -> None:
            results.extend(await transcriber.transcribe([window], language="en"))

        tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        assert not results  # the call waits for the load under way
        release.set()
    assert len(made) == 1  # loaded once, not again
    assert wer(reference(SHORT[0]), window_text(results[0])) <= 0.35
    transcriber.load_in_background()  # loaded: nothing to do
    assert len(made) == 1


async def test_a_background_load_that_fails_is_raised_by_the_first_call(
    tmp_path: Path, whisper_model_dir: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(whisper_model_dir / name, broken / name)
    (broken / "model.bin").write_bytes(b"\0" * 1024)
    transcriber = WhisperTranscriber(broken)
    transcriber.load_in_background()  # no error here: the thread keeps it quiet
    window = AudioWindow(samples=np.zeros(RATE, dtype=np.float32))
    with pytest.raises(ConfigurationError, match="could not load"):
        await transcriber.transcribe([window])


@pytest.mark.slow
async def test_silence_and_noise_give_no_words(
    transcriber: WhisperTranscriber, whisper_model: Any
) -> None:
    # Whisper-base "hears" words in silence ("you", "1-2-3"); the no-speech rule drops
    # them, as WhisperModel.transcribe does.
    noise = (np.random.default_rng(0).standard_normal(5 * RATE) * 0.01).astype(np.float32)
    windows = [
        AudioWindow(samples=np.zeros(3 * RATE, dtype=np.float32), index=0),
        AudioWindow(samples=noise, index=1),
    ]
    results = await transcriber.transcribe(windows)
    assert [r.segments for r in results] == [(), ()]
    # Without the rule the invented words come through: the rule is what removed them.
    keep_all = WhisperTranscriber(whisper_model, no_speech_threshold=None)
    assert any(r.segments for r in await keep_all.transcribe(windows))


def test_model_threads_default_to_the_cores_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from audioflow.transcribers import whisper

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(whisper.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    # Not CTranslate2's 4 on a 2-core machine; every worker gets them all (a call's
    # one-core parts leave cores the other call uses).
    assert whisper._default_threads() == 2
    assert WhisperTranscriber()._cpu_threads == 2
    monkeypatch.setattr(whisper.os, "sched_getaffinity", lambda _: set(range(32)))
    assert whisper._default_threads() == 4  # more threads per call stop paying
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert whisper._default_threads() == 0  # CTranslate2 then reads the operator's 3
    assert WhisperTranscriber(cpu_threads=0)._cpu_threads == 0
    with pytest.raises(ValueError, match="cpu_threads"):
        WhisperTranscriber(cpu_threads=-1)


def test_the_pipeline_finds_speech_with_the_transcribers_rules() -> None:
    from audioflow import Pipeline
    from audioflow.vad import SegmentRules

    whisper = WhisperTranscriber()
    assert Pipeline(whisper).speech_rules == WhisperTranscriber.speech_rules
    # Its speech detector too: the library's Pipeline and the command pick the same.
    assert Pipeline(whisper).vad == "silero"
    assert Pipeline(whisper, vad="webrtc").vad == "webrtc"
    assert whisper.pack_gap == 0.0
    own = SegmentRules(min_silence=1.0)
    pipeline = Pipeline(whisper, speech_rules=own)
    assert pipeline.speech_rules == own
    # Other rules make other windows: a checkpoint of one is not reused by the other.
    assert pipeline._checkpoint_key("x.wav") != Pipeline(whisper)._checkpoint_key("x.wav")
