"""Generate test media with PyAV's encoders: tones, noise, multi-track and video files.

Tests (ours and a third party's) use these to get real files in every container Decode
supports without shipping binaries. Everything is deterministic: noise comes from a
seeded generator.

Example::

    samples = stereo(silence(2.0, 44_100), tone(1000, 2.0, 44_100))   # sine right only
    write_media(tmp_path / "right.mp3", AudioTrack(samples, 44_100))
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_CODECS",
    "AudioTrack",
    "VideoTrack",
    "clock",
    "measure_tone",
    "noise",
    "png_bytes",
    "silence",
    "stereo",
    "tone",
    "write_media",
]

Samples = npt.NDArray[np.float32]

#: The audio codec :func:`write_media` uses for each file extension.
DEFAULT_CODECS: dict[str, str] = {
    ".wav": "pcm_s16le",
    ".mp3": "libmp3lame",
    ".m4a": "aac",
    ".aac": "aac",  # raw ADTS: no duration in any header
    ".mp4": "aac",
    ".mov": "aac",
    ".mkv": "aac",
    ".flac": "flac",
    ".ogg": "vorbis",  # FFmpeg's own (experimental) Vorbis encoder; wheels lack libvorbis
    ".opus": "libopus",
    ".webm": "libopus",
}
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
_PIPE_FORMATS = {".mkv": "matroska", ".webm": "webm", ".ogg": "ogg", ".mp3": "mp3"}
_BLOCK = 0.1  # seconds of each track muxed per step, so tracks stay interleaved


def tone(
    freq: float, seconds: float, rate: int, amplitude: float = 0.5, phase: float = 0.0
) -> Samples:
    """A sine of ``freq`` Hz, ``amplitude`` peak (1.0 = full scale), mono."""
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def clock(
    seconds: int, rate: int, *, base: float = 200.0, step: float = 10.0, amplitude: float = 0.3
) -> Samples:
    """A tone whose frequency names the second it is in: ``base + step * k`` in second k.

    Timeline tests decode it and check, second by second, that each frequency is still
    where it was written (so a lost or shifted stretch shows up).
    """
    return np.concatenate(
        [tone(base + step * k, 1.0, rate, amplitude) for k in range(seconds)]
    ).astype(np.float32)


def noise(seconds: float, rate: int, rms: float = 0.1, seed: int = 0) -> Samples:
    """White Gaussian noise of the given RMS, from a seeded generator."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(round(seconds * rate)) * rms).astype(np.float32)


def silence(seconds: float, rate: int) -> Samples:
    """Digital silence."""
    return np.zeros(round(seconds * rate), dtype=np.float32)


def stereo(left: Samples, right: Samples) -> Samples:
    """Two mono signals as a ``(2, n)`` array."""
    return np.stack([left, right]).astype(np.float32)


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream to write.

    Args:
        samples: ``(n,)`` mono or ``(channels, n)`` float samples in [-1, 1].
        sample_rate: the stream's sample rate.
        codec: encoder name; ``None`` = :data:`DEFAULT_CODECS` for the extension.
        bit_rate: encoder bit rate, when the codec has one.
        default: set the stream's ``default`` disposition flag (``None`` = leave it).
    """

    samples: Samples
    sample_rate: int
    codec: str | None = None
    bit_rate: int | None = None
    default: bool | None = None

    @property
    def channels(self) -> Samples:
        """The samples as ``(channels, n)``."""
        return self.samples[np.newaxis, :] if self.samples.ndim == 1 else self.samples


@dataclass(frozen=True)
class VideoTrack:
    """A small H.264 video track (grey frames) of ``seconds`` at ``fps``."""

    seconds: float
    fps: int = 10
    width: int = 64
    height: int = 64
    codec: str = "libx264"


def write_media(
    path: str | Path,
    audio: AudioTrack | Sequence[AudioTrack] = (),
    *,
    video: VideoTrack | None = None,
    container_options: dict[str, str] | None = None,
    seekable: bool = True,
) -> Path:
    """Encode ``audio`` tracks (and an optional ``video`` track) into ``path``.

    The container is chosen from the extension; streams are interleaved in 100 ms steps.
    ``seekable=False`` writes the file the way a muxer writes into a pipe: a Matroska
    file written so announces no duration (for "duration unknown" tests).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    tracks = [audio] if isinstance(audio, AudioTrack) else list(audio)
    ext = path.suffix.lower()
    with contextlib.ExitStack() as stack:
        if seekable:
            target: Any = str(path)
            fmt = None
        else:
            target = _Unseekable(stack.enter_context(path.open("wb")))
            fmt = _PIPE_FORMATS[ext]
        out = stack.enter_context(
            av.open(target, "w", format=fmt, container_options=container_options or {})
        )
        # Stream types are a union in PyAV's stubs; these are audio/video by construction.
        streams: list[Any] = []
        for track in tracks:
            codec = track.codec or DEFAULT_CODECS[ext]
            # "strict=experimental" lets FFmpeg's native Vorbis encoder run.
            stream: Any = out.add_stream(
                codec, rate=track.sample_rate, options={"strict": "experimental"}
            )
            stream.codec_context.layout = _LAYOUTS[track.channels.shape[0]]
            if track.bit_rate:
                stream.codec_context.bit_rate = track.bit_rate
            if track.default is not None:
                stream.disposition = av.stream.Disposition.default if track.default else 0
            streams.append(stream)
        vstream: Any = None
        if video is not None:
            vstream = out.add_stream(video.codec, rate=video.fps, options={"preset": "ultrafast"})
            vstream.width, vstream.height, vstream.pix_fmt = video.width, video.height, "yuv420p"
        longest = max(
            [t.channels.shape[1] / t.sample_rate for t in tracks]
            + ([video.seconds] if video else [0.0])
        )
        steps = int(np.ceil(longest / _BLOCK))
        vframes_done = 0
        for step in range(steps):
            for track, stream in zip(tracks, streams, strict=True):
                _mux_audio(out, stream, track, step)
            if video is not None and vstream is not None:
                until = min(
                    round((step + 1) * _BLOCK * video.fps), round(video.seconds * video.fps)
                )
                for i in range(vframes_done, until):
                    out.mux(vstream.encode(_video_frame(video, i)))
                vframes_done = max(vframes_done, until)
        for stream in [*streams, *([vstream] if vstream is not None else [])]:
            out.mux(stream.encode(None))
    return path


class _Unseekable(io.RawIOBase):
    """A write-only file that says it cannot seek, as a pipe would."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        return self._file.write(data)


def _mux_audio(
    out: av.container.OutputContainer, stream: av.AudioStream, track: AudioTrack, step: int
) -> None:
    rate = track.sample_rate
    data = track.channels
    lo, hi = round(step * _BLOCK * rate), round((step + 1) * _BLOCK * rate)
    block = np.ascontiguousarray(data[:, lo:hi], dtype=np.float32)
    if block.shape[1] == 0:
        return
    frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=_LAYOUTS[data.shape[0]])
    frame.sample_rate = rate
    frame.pts = lo
    frame.time_base = Fraction(1, rate)
    out.mux(stream.encode(frame))


def _video_frame(video: VideoTrack, index: int) -> av.VideoFrame:
    shade = (index * 7) % 256
    pixels = np.full((video.height, video.width, 3), shade, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    frame.pts = index
    frame.time_base = Fraction(1, video.fps)
    return frame


def measure_tone(samples: Samples, rate: int) -> tuple[float, float]:
    """The dominant frequency (Hz) and its peak amplitude in ``samples``.

    The frequency comes from the spectrum peak refined by parabolic interpolation; the
    amplitude from projecting the signal on a sine of that frequency (no window
    scalloping), so a pure tone of amplitude A measures A to within a fraction of a dB.
    """
    x = samples.astype(np.float64)
    n = len(x)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(n)))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    freq = (k + shift) * rate / n
    t = np.arange(n) / rate
    amplitude = 2 * abs(np.dot(x, np.exp(-2j * np.pi * freq * t))) / n
    return float(freq), float(amplitude)


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    """A small, valid grey PNG image (for "an image renamed .mp3" tests)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([128] * width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
