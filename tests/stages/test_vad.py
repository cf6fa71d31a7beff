"""DetectSpeech and its backends on generated signals and a committed speech sample."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from audioflow.errors import MissingDependencyError
from audioflow.records import AudioChunk, SpeechSegment
from audioflow.stages._vad import to_16_bit
from audioflow.stages.base import run_stages
from audioflow.stages.decode import Decode
from audioflow.stages.vad import DetectSpeech, SpeechDetector
from audioflow.testing.media import noise, silence, tone
from audioflow.vad import EnergyVad, SegmentRules, VadBackend, make_backend

pytestmark = pytest.mark.anyio

RATE = 16_000
SPEECH = Path(__file__).parent.parent / "data" / "speech_en_16k.flac"
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.flac"


def _chunks(x: np.ndarray, seconds: float, start: float = 0.0) -> list[AudioChunk]:
    step = round(seconds * RATE)
    return [
        AudioChunk(samples=x[i : i + step].astype(np.float32), start=start + i / RATE)
        for i in range(0, len(x), step)
    ]


def _bursts() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Tone bursts in a constant noise bed; returns the signal and the burst spans."""
    layout = [
        (2.0, None),
        (1.5, 300),
        (2.0, None),
        (3.0, 500),
        (1.0, None),
        (0.8, 800),
        (2.5, None),
    ]
    parts, spans, t = [], [], 0.0
    for seconds, freq in layout:
        parts.append(tone(freq, seconds, RATE, 0.3) if freq else silence(seconds, RATE))
        if freq:
            spans.append((t, t + seconds))
        t += seconds
    x = np.concatenate(parts) + noise(t, RATE, 0.003, seed=11)
    return x.astype(np.float32), spans


def _assert_matches(
    segments: list[SpeechSegment], truth: list[tuple[float, float]], pad: float, slack: float
) -> None:
    assert len(segments) == len(truth), [(s.start, s.end) for s in segments]
    for segment, (start, end) in zip(segments, truth, strict=True):
        assert start - pad - slack <= segment.start <= start + slack
        assert end - slack <= segment.end <= end + pad + slack


async def test_energy_backend_finds_tone_bursts_in_noise() -> None:
    x, spans = _bursts()
    segments = await run_stages(_chunks(x, 2.5), DetectSpeech("energy", padding=0.2))
    _assert_matches(segments, spans, pad=0.2, slack=0.06)


async def test_segments_are_on_the_original_timeline_and_carry_their_audio() -> None:
    x, spans = _bursts()
    origin = 100.0
    segments = await run_stages(_chunks(x, 1.7, start=origin), DetectSpeech(padding=0.1))
    _assert_matches(segments, [(a + origin, b + origin) for a, b in spans], pad=0.1, slack=0.06)
    on_grid = to_16_bit(x.astype(np.float32))  # the levels Whisper's loaders give
    for segment in segments:
        a = round((segment.start - origin) * RATE)
        assert np.array_equal(segment.samples, on_grid[a : a + len(segment.samples)])
        assert len(segment.samples) == round((segment.end - segment.start) * RATE)


async def test_segments_know_where_the_speech_inside_their_padding_is() -> None:
    x, spans = _bursts()
    segments = await run_stages(_chunks(x, 2.5), DetectSpeech("energy", padding=0.2))
    for segment, (start, end) in zip(segments, spans, strict=True):
        assert segment.speech_start is not None and segment.speech_end is not None
        assert segment.start < segment.speech_start < segment.speech_end < segment.end
        # The bounds are the detected speech: the true burst to a frame or two.
        assert segment.speech_start == pytest.approx(start, abs=0.06)
        assert segment.speech_end == pytest.approx(end, abs=0.06)


async def test_chunk_size_does_not_change_segments() -> None:
    x, _ = _bursts()
    a = await run_stages(_chunks(x, 0.77), DetectSpeech())
    b = await run_stages(_chunks(x, 30.0), DetectSpeech())
    assert [(s.start, s.end) for s in a] == [(s.start, s.end) for s in b]


class _AlwaysSpeech:
    """A backend that calls everything speech (the VadBackend protocol, no base class)."""

    name = "always"
    frame_samples = 400

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        return np.ones(len(frames), dtype=np.float32)

    def reset(self) -> None:
        pass


def test_buffered_audio_stays_bounded_on_long_input() -> None:
    assert isinstance(_AlwaysSpeech(), VadBackend)
    detector = SpeechDetector(_AlwaysSpeech(), SegmentRules(max_segment=10.0))
    # 10 minutes of uninterrupted "speech": only max_segment plus a chunk is held.
    held = []
    for i in range(20):
        chunk = tone(440, 30.0, RATE, 0.3) + noise(30.0, RATE, 0.003, seed=i)
        detector.push(AudioChunk(samples=chunk.astype(np.float32), start=30.0 * i))
        held.append(detector.buffered_seconds)
    segments = detector.finish()
    assert max(held) <= 30.0 + 10.0 + 1.0
    assert detector.segments >= 60  # 600 s in pieces of at most 10 s
    assert segments[-1].end == pytest.approx(600.0)


async def _speech_scene() -> tuple[list[AudioChunk], list[tuple[float, float]]]:
    chunks = await run_stages([SPEECH], Decode())
    speech = np.concatenate([c.samples for c in chunks])
    seconds = len(speech) / RATE
    x = np.concatenate(
        [silence(3.0, RATE), speech, silence(4.0, RATE), speech, silence(2.0, RATE)]
    )
    x = x + noise(len(x) / RATE, RATE, 0.003, seed=5)
    truth = [(3.0, 3.0 + seconds), (7.0 + seconds, 7.0 + 2 * seconds)]
    return _chunks(x.astype(np.float32), 4.0), truth


@pytest.mark.parametrize("backend", ["energy", "webrtc", "silero"])
async def test_backends_find_real_speech(backend: str) -> None:
    if backend == "webrtc":
        pytest.importorskip("webrtcvad")
    if backend == "silero":
        pytest.importorskip("onnxruntime")
    chunks, truth = await _speech_scene()
    segments = await run_stages(chunks, DetectSpeech(backend, padding=0.2))
    _assert_matches(segments, truth, pad=0.2, slack=0.25)


async def test_silero_does_not_take_tones_for_speech() -> None:
    pytest.importorskip("onnxruntime")
    x, _ = _bursts()
    assert await run_stages(_chunks(x, 2.0), DetectSpeech("silero")) == []


async def test_long_speech_is_split_below_max_segment() -> None:
    chunks, _ = await _speech_scene()
    segments = await run_stages(chunks, DetectSpeech("energy", max_segment=2.0, padding=0.1))
    assert len(segments) >= 6
    assert all(s.end - s.start <= 2.0 + 1e-9 for s in segments)


def test_backends_satisfy_the_protocol() -> None:
    assert isinstance(EnergyVad(), VadBackend)
    with pytest.raises(ValueError, match="unknown VAD backend"):
        make_backend("nope")


@pytest.mark.parametrize(
    ("backend", "module", "package"),
    [("webrtc", "webrtcvad", "webrtcvad-wheels"), ("silero", "onnxruntime", "onnxruntime")],
)
def test_missing_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, backend: str, module: str, package: str
) -> None:
    # A None entry in sys.modules makes `import module` raise ImportError.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=r"audioflow\[vad\]") as info:
        DetectSpeech(backend)
    assert info.value.package == package
    assert isinstance(info.value, ImportError)


def test_silero_without_faster_whisper_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from audioflow.vad.silero import bundled_model_path

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # find_spec -> None
    with pytest.raises(MissingDependencyError, match=r"audioflow\[vad\]") as info:
        bundled_model_path()
    assert info.value.package == "faster-whisper"


def test_silero_model_comes_from_the_installed_wheel() -> None:
    pytest.importorskip("onnxruntime")
    from audioflow.vad.silero import SileroVad, bundled_model_path

    path = bundled_model_path()
    assert path.name == "silero_vad_v6.onnx"
    assert "faster_whisper" in path.parts
    assert SileroVad().model_path == path
    assert "torch" not in sys.modules


def test_the_silero_session_keeps_no_memory_arena_between_runs() -> None:
    # The arena would hold a run's largest buffers beside the Whisper model all job long.
    pytest.importorskip("onnxruntime")
    from audioflow.vad.silero import SileroVad

    vad = SileroVad()
    assert vad._session.get_session_options().enable_cpu_mem_arena is False


def _energy_reference(levels: np.ndarray, vad: EnergyVad) -> np.ndarray:
    """EnergyVad's probabilities, one frame at a time (the definition)."""
    floor = None
    out = []
    for level in levels:
        floor = level if floor is None else min(level, floor + vad._rise)
        z = (level - floor - vad.margin_db) / 2.0
        out.append(0.0 if level < vad.min_dbfs else 1.0 / (1.0 + np.exp(-z)))
    return np.array(out, dtype=np.float32)


def test_energy_floor_matches_the_frame_by_frame_definition() -> None:
    # Levels that fall and rise (the floor must follow down at once, up slowly), fed
    # in uneven pieces: the running minimum must equal the recursion across pieces.
    rng = np.random.default_rng(3)
    gains = np.repeat(10 ** rng.uniform(-4, -0.5, 60), 40)  # 60 steps of 40 frames
    frames = (rng.standard_normal((len(gains), 480)) * gains[:, None]).astype(np.float32)
    levels = 10 * np.log10(np.einsum("ij,ij->i", frames, frames).astype(np.float64) / 480 + 1e-12)
    vad = EnergyVad()
    got = np.concatenate(
        [vad.probabilities(frames[a:b]) for a, b in [(0, 1), (1, 700), (700, 701), (701, 2400)]]
    )
    want = _energy_reference(levels, EnergyVad())
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert 0.05 < float(np.mean(got > 0.5)) < 0.95  # both speech and non-speech frames


def test_audio_is_put_on_the_16_bit_grid_as_ffmpeg_converts_float_to_s16() -> None:
    x = np.array([0.0, 0.3, -0.3, 1 / 65536, 3 / 65536, 0.99999, 1.5, -1.0, -2.0], np.float32)
    got = to_16_bit(x)
    assert got.dtype == np.float32 and got is not x
    levels = got * 32768
    assert np.array_equal(levels, np.round(levels))  # every sample on a level
    # Half a step rounds to even (lrintf), overs clip to the highest level.
    assert levels.tolist() == [0, 9830, -9830, 0, 2, 32767, 32767, -32768, -32768]
    assert np.abs(got[:5] - x[:5]).max() <= 0.5 / 32768  # at most half a step away


async def test_segments_of_a_compressed_file_are_faster_whispers_to_the_sample(
    tmp_path: Path,
) -> None:
    # Decode + Silero + faster-whisper's batched settings: the same segments as
    # faster-whisper's own decode_audio + get_speech_timestamps, to the sample. MP3
    # decodes to float, off the 16-bit grid faster-whisper's decoder puts it on.
    pytest.importorskip("onnxruntime")
    fw_audio = pytest.importorskip("faster_whisper.audio")
    fw_vad = pytest.importorskip("faster_whisper.vad")
    from audioflow.testing.media import AudioTrack, write_media
    from audioflow.transcribers.whisper import WhisperTranscriber
    from support.speech import decode_16k

    mp3 = tmp_path / "speech.mp3"
    write_media(mp3, AudioTrack(decode_16k(SAMPLE), RATE))
    expected = [
        (t["start"], t["end"])
        for t in fw_vad.get_speech_timestamps(
            fw_audio.decode_audio(str(mp3), sampling_rate=RATE),
            fw_vad.VadOptions(max_speech_duration_s=30, min_silence_duration_ms=160),
        )
    ]
    r = WhisperTranscriber.speech_rules
    stage = DetectSpeech(
        "silero",
        threshold=r.threshold,
        min_speech=r.min_speech,
        min_silence=r.min_silence,
        padding=r.padding,
        max_segment=r.max_segment,
    )
    segments = await run_stages([mp3], Decode(), stage)
    assert len(expected) >= 3
    assert [(round(s.start * RATE), round(s.end * RATE)) for s in segments] == expected
