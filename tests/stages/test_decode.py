"""Decode: real PyAV decoding of media the tests generate with PyAV's encoders."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import anyio
import numpy as np
import pytest

from audioflow.errors import (
    CorruptMediaError,
    DecodeError,
    MediaTooLongError,
    NoAudioStreamError,
    UnsupportedMediaError,
)
from audioflow.records import AudioChunk
from audioflow.stages.base import StageContext, function_stage, run_stages
from audioflow.stages.decode import Decode
from audioflow.testing.media import (
    AudioTrack,
    VideoTrack,
    clock,
    measure_tone,
    png_bytes,
    silence,
    stereo,
    tone,
    write_media,
)

pytestmark = pytest.mark.anyio

SECONDS = 3.0
RATE = 16_000

# (file name, source sample rate, channels, with an H.264 video track)
FORMATS = [
    ("s16_8k_mono.wav", 8_000, 1, False),
    ("s16_44k_stereo.wav", 44_100, 2, False),
    ("s16_48k_5.1.wav", 48_000, 6, False),
    ("stereo.mp3", 44_100, 2, False),
    ("aac.m4a", 48_000, 2, False),
    ("stereo.flac", 44_100, 2, False),
    ("vorbis.ogg", 44_100, 2, False),
    ("opus.opus", 48_000, 2, False),
    ("opus.webm", 48_000, 1, False),
    ("h264_aac.mp4", 48_000, 2, True),
    ("h264_aac.mkv", 44_100, 2, True),
]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def _sine_file(media_dir: Path, name: str, rate: int, channels: int, video: bool) -> Path:
    path = media_dir / name
    if not path.exists():
        samples = np.tile(tone(1000, SECONDS, rate, amplitude=0.5), (channels, 1))
        write_media(path, AudioTrack(samples, rate), video=VideoTrack(SECONDS) if video else None)
    return path


async def _decode(path: Path, decoder: Decode | None = None) -> tuple[np.ndarray, Decode]:
    decoder = decoder or Decode(chunk_seconds=1.0)
    chunks = await run_stages([path], decoder)
    # Chunks are contiguous and fixed length except the last.
    for before, after in itertools.pairwise(chunks):
        assert math.isclose(after.start, before.end, abs_tol=1e-9)
    assert all(len(c.samples) == decoder.chunk_samples for c in chunks[:-1])
    assert all(c.samples.dtype == np.float32 and c.sample_rate == RATE for c in chunks)
    return np.concatenate([c.samples for c in chunks]), decoder


@pytest.mark.parametrize(("name", "rate", "channels", "video"), FORMATS)
async def test_formats_decode_to_16k_mono_sine(
    media_dir: Path, name: str, rate: int, channels: int, video: bool, no_leaks: None
) -> None:
    path = _sine_file(media_dir, name, rate, channels, video)
    samples, decoder = await _decode(path)
    assert abs(len(samples) / RATE - SECONDS) <= 0.030
    # Skip the edges: codec priming and resampler ramps are not the steady tone.
    freq, amplitude = measure_tone(samples[RATE // 4 : -RATE // 4], RATE)
    assert freq == pytest.approx(1000, abs=1.0)
    assert abs(20 * math.log10(amplitude / 0.5)) <= 1.0
    info = decoder.info
    assert info is not None
    assert (info.channels, info.sample_rate) == (channels, rate)
    assert info.has_video is video
    assert info.decoded_duration == pytest.approx(len(samples) / RATE)
    assert info.warnings == ()


@pytest.mark.parametrize("name", ["right.wav", "right.mp3"])
async def test_stereo_is_downmixed_not_one_channel_dropped(
    media_dir: Path, name: str, no_leaks: None
) -> None:
    rate = 44_100
    path = write_media(
        media_dir / name,
        AudioTrack(stereo(silence(SECONDS, rate), tone(1000, SECONDS, rate, 0.5)), rate),
    )
    samples, _ = await _decode(path)
    freq, amplitude = measure_tone(samples[RATE // 4 : -RATE // 4], RATE)
    assert freq == pytest.approx(1000, abs=1.0)
    # Channels are averaged: the right channel's sine comes out at half amplitude.
    assert abs(20 * math.log10(amplitude / 0.25)) <= 1.0


async def test_two_audio_tracks_default_choice_and_caller_choice(
    media_dir: Path, no_leaks: None
) -> None:
    rate = 48_000
    path = write_media(
        media_dir / "two_tracks.mkv",
        [
            AudioTrack(tone(500, SECONDS, rate), rate),  # mono
            AudioTrack(np.tile(tone(1500, SECONDS, rate), (2, 1)), rate),  # stereo
        ],
    )
    # Documented rule: neither is flagged default, so the one with more channels wins.
    samples, decoder = await _decode(path)
    assert measure_tone(samples, RATE)[0] == pytest.approx(1500, abs=1.0)
    assert decoder.info is not None
    assert (decoder.info.audio_streams, decoder.info.stream_index) == (2, 1)
    samples, decoder = await _decode(path, Decode(audio_stream=0))
    assert measure_tone(samples, RATE)[0] == pytest.approx(500, abs=1.0)
    assert decoder.info is not None
    assert decoder.info.stream_index == 0
    with pytest.raises(ValueError, match="audio_stream=2"):
        await _decode(path, Decode(audio_stream=2))


async def test_a_default_flagged_track_wins(media_dir: Path, no_leaks: None) -> None:
    rate = 48_000
    path = write_media(
        media_dir / "flagged.mkv",
        [
            AudioTrack(tone(500, SECONDS, rate), rate, default=False),
            AudioTrack(tone(700, SECONDS, rate), rate, default=True),  # mono, but default
            AudioTrack(np.tile(tone(1500, SECONDS, rate), (2, 1)), rate, default=False),
        ],
    )
    samples, decoder = await _decode(path)
    assert measure_tone(samples, RATE)[0] == pytest.approx(700, abs=1.0)
    assert decoder.info is not None
    assert decoder.info.stream_index == 1


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, type[DecodeError]]]:
    (tmp / "directory.wav").mkdir()
    (tmp / "empty.wav").write_bytes(b"")
    rng = np.random.default_rng(0)
    (tmp / "random.mp3").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    (tmp / "picture.mp3").write_bytes(png_bytes())
    (tmp / "text.wav").write_text("not audio at all\n" * 500)
    write_media(tmp / "video_only.mp4", [], video=VideoTrack(1.0))
    return {
        "missing": (tmp / "missing.wav", DecodeError),
        "directory": (tmp / "directory.wav", UnsupportedMediaError),
        "empty": (tmp / "empty.wav", UnsupportedMediaError),
        "random": (tmp / "random.mp3", UnsupportedMediaError),
        "png": (tmp / "picture.mp3", UnsupportedMediaError),
        "text": (tmp / "text.wav", UnsupportedMediaError),
        "no_audio": (tmp / "video_only.mp4", NoAudioStreamError),
    }


@pytest.mark.parametrize(
    "case", ["missing", "directory", "empty", "random", "png", "text", "no_audio"]
)
async def test_bad_input_raises_typed_error_naming_the_file(
    tmp_path: Path, case: str, no_leaks: None
) -> None:
    path, error = _bad_inputs(tmp_path)[case]
    ctx = StageContext(job_id="job-7")
    with pytest.raises(error) as info:
        await run_stages([path], Decode(), ctx=ctx)
    assert type(info.value) is error  # exactly this type, not just a DecodeError
    assert str(path) in str(info.value)
    assert (info.value.stage, info.value.job_id) == ("decode", "job-7")


async def test_missing_file_keeps_the_os_error_as_cause(tmp_path: Path) -> None:
    with pytest.raises(DecodeError) as info:
        await Decode().probe(tmp_path / "nope.mp3")
    assert isinstance(info.value.__cause__, FileNotFoundError)


async def test_unopenable_file_keeps_the_pyav_error_as_cause(tmp_path: Path) -> None:
    path = tmp_path / "text.wav"
    path.write_text("plain text\n" * 100)
    with pytest.raises(UnsupportedMediaError) as info:
        await Decode().probe(path)
    assert type(info.value.__cause__).__module__.startswith("av")


async def test_too_long_is_refused_before_decoding(media_dir: Path, no_leaks: None) -> None:
    path = _sine_file(media_dir, "stereo.mp3", 44_100, 2, False)
    decoder = Decode(max_duration=1.0)
    with pytest.raises(MediaTooLongError, match="over the 1 s limit") as info:
        await run_stages([path], decoder)
    assert str(path) in str(info.value)
    assert decoder.info is None  # refused at the probe: nothing decoded


async def test_too_many_bytes_is_refused_before_opening(media_dir: Path, no_leaks: None) -> None:
    path = _sine_file(media_dir, "stereo.mp3", 44_100, 2, False)
    with pytest.raises(MediaTooLongError, match="bytes"):
        await Decode(max_bytes=1000).probe(path)


async def test_unknown_duration_stops_as_soon_as_it_passes_the_limit(
    tmp_path: Path, no_leaks: None
) -> None:
    # Matroska written to a pipe announces no duration: the limit applies while decoding.
    path = write_media(
        tmp_path / "live.mkv",
        AudioTrack(tone(440, 20.0, 16_000), 16_000, codec="flac"),
        seekable=False,
    )
    decoder = Decode(chunk_seconds=1.0, max_duration=3.0)
    starts: list[float] = []

    async def record(chunk: AudioChunk) -> AudioChunk:
        starts.append(chunk.start)
        return chunk

    with pytest.raises(MediaTooLongError, match="over the 3 s limit") as info:
        await run_stages([path], decoder, function_stage(record))
    assert str(path) in str(info.value)
    assert decoder.info is not None
    assert decoder.info.duration is None
    # Stopped right after the limit, not at the end of the 20 s file.
    assert starts == [0.0, 1.0, 2.0]


async def test_truncated_mp3_gives_partial_audio_and_a_warning(
    media_dir: Path, tmp_path: Path, no_leaks: None
) -> None:
    rate = 44_100
    full = write_media(media_dir / "ten.mp3", AudioTrack(tone(1000, 10.0, rate), rate))
    cut = tmp_path / "cut.mp3"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    samples, decoder = await _decode(cut)
    assert 4.0 < len(samples) / RATE < 6.0
    assert decoder.info is not None
    assert any(w.startswith("truncated") for w in decoder.info.warnings)


async def test_mp3_cut_inside_its_header_is_not_media(tmp_path: Path, no_leaks: None) -> None:
    rate = 44_100
    full = write_media(tmp_path / "full.mp3", AudioTrack(tone(1000, 2.0, rate), rate))
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(full.read_bytes()[:300])  # inside the ID3/Xing header
    with pytest.raises(UnsupportedMediaError) as info:
        await _decode(stub)
    assert str(stub) in str(info.value)


async def test_header_without_audio_is_corrupt(tmp_path: Path, no_leaks: None) -> None:
    rate = 44_100
    full = write_media(tmp_path / "full.wav", AudioTrack(tone(1000, 2.0, rate), rate))
    data = full.read_bytes()
    stub = tmp_path / "header_only.wav"
    stub.write_bytes(data[: data.find(b"data") + 8])  # announces 2 s, holds none
    with pytest.raises(CorruptMediaError, match="no audio could be decoded") as info:
        await _decode(stub)
    assert str(stub) in str(info.value)


def _damage(path: Path, at: float, nbytes: int = 20_480) -> Path:
    """A copy of ``path`` with ``nbytes`` random bytes written at fraction ``at``."""
    data = bytearray(path.read_bytes())
    offset = int(len(data) * at)
    junk = np.random.default_rng(3).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    data[offset : offset + nbytes] = junk
    damaged = path.with_name("damaged_" + path.name)
    damaged.write_bytes(bytes(data))
    return damaged


def _misplaced_seconds(samples: np.ndarray, seconds: int) -> list[int]:
    """Seconds of a decoded :func:`clock` whose frequency is not the one written there."""
    wrong = []
    for k in range(seconds):
        # The middle half of second k: a shift under 0.25 s still reads k's frequency.
        window = samples[int((k + 0.25) * RATE) : int((k + 0.75) * RATE)]
        if len(window) == 0 or abs(measure_tone(window, RATE)[0] - (200 + 10 * k)) > 2.0:
            wrong.append(k)
    return wrong


@pytest.mark.slow
async def test_mid_file_damage_in_an_mp3_is_skipped_and_reported(
    tmp_path: Path, no_leaks: None
) -> None:
    rate, seconds = 22_050, 303
    path = write_media(
        tmp_path / "long.mp3", AudioTrack(clock(seconds, rate), rate, bit_rate=64_000)
    )
    samples, decoder = await _decode(_damage(path, 1 / 3), Decode())
    info = decoder.info
    assert info is not None
    # 20 KB at 64 kbit/s is ~2.6 s; everything after the damage is decoded, at its
    # original time: silence fills the hole, so later audio is not shifted earlier.
    assert abs(len(samples) / RATE - seconds) < 0.1
    assert 20_480 <= info.skipped_bytes < 30_000
    assert 2.0 < info.skipped_seconds < 4.0
    (warning,) = info.warnings
    assert "skipped damaged data" in warning
    at = float(warning.split(" at ")[1].removesuffix(" s"))
    assert abs(at - seconds / 3) < 3.0
    wrong = _misplaced_seconds(samples, seconds)
    assert len(wrong) <= 5  # only the damaged stretch
    assert all(at - 1 <= k <= at + info.skipped_seconds + 1 for k in wrong)


@pytest.mark.parametrize(
    ("name", "codec"),
    [("aac.mkv", "aac"), ("flac.mkv", "flac"), ("aac.mp4", "aac"), ("opus.ogg", "libopus")],
)
async def test_mid_file_damage_in_other_containers_keeps_the_timeline(
    tmp_path: Path, name: str, codec: str, no_leaks: None
) -> None:
    rate, seconds = 48_000, 60
    path = write_media(tmp_path / name, AudioTrack(clock(seconds, rate), rate, codec=codec))
    samples, decoder = await _decode(_damage(path, 1 / 3), Decode())
    info = decoder.info
    assert info is not None
    assert abs(len(samples) / RATE - seconds) <= 0.030
    assert 0.1 < info.skipped_seconds < 8.0
    assert any(w.startswith("skipped damaged data") for w in info.warnings)
    # Seconds before and after the damage are all where they were written.
    wrong = _misplaced_seconds(samples, seconds)
    assert 0 < len(wrong) <= 8
    assert max(wrong) - min(wrong) < 8
    assert 15 <= min(wrong) <= 25


async def test_cancellation_closes_the_container(media_dir: Path, no_leaks: None) -> None:
    path = _sine_file(media_dir, "stereo.mp3", 44_100, 2, False)
    got: list[AudioChunk] = []

    async def consumer(
        receive: anyio.abc.ObjectReceiveStream[AudioChunk], scope: anyio.CancelScope
    ) -> None:
        async with receive:
            async for chunk in receive:
                got.append(chunk)
                scope.cancel()  # cancel while the decoder is mid-file

    with anyio.CancelScope() as scope:
        send, receive = anyio.create_memory_object_stream[AudioChunk](0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer, receive, scope)
            inbox_send, inbox = anyio.create_memory_object_stream[Path](1)
            await inbox_send.send(path)
            inbox_send.close()
            await Decode(chunk_seconds=0.5).run(inbox, send, StageContext())
    assert scope.cancelled_caught
    assert len(got) == 1
    # no_leaks checks the file is closed


async def test_event_loop_keeps_running_during_a_long_decode(tmp_path: Path) -> None:
    rate = 48_000
    path = write_media(
        tmp_path / "long.wav", AudioTrack(np.tile(tone(300, 60.0, rate), (2, 1)), rate)
    )
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        chunks = await run_stages([path], Decode(chunk_seconds=10.0))
        done.set()
    assert len(chunks) == 6
    # Were decoding done on the event loop, the ticker would only get a turn between
    # chunks (a handful of ticks); in a worker thread it runs throughout.
    assert ticks > 20 * len(chunks)
