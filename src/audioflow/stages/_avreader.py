"""The blocking half of ``Decode``: PyAV probing, stream choice and chunked decoding.

Everything here blocks and runs in a worker thread (one call at a time; PyAV objects
have no thread affinity). The chain is faster-whisper's, bounded: demux packets of one
stream (re-syncing after demuxer errors) → decode (skipping packets the decoder rejects,
filling holes with silence) → batch in an ``AudioFifo`` → resample to mono float32 at
the target rate into large frames → copy into a preallocated chunk buffer. Nothing
grows with the file's length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import msgspec
import numpy as np
import numpy.typing as npt

from ..errors import (
    CorruptMediaError,
    DecodeError,
    MediaTooLongError,
    NoAudioStreamError,
    UnsupportedMediaError,
)
from ..records import MediaInfo

# Video "streams" that are really a single picture: a PNG renamed .mp3 opens as one of
# these, and "no audio stream" would be the wrong diagnosis for it.
_IMAGE_CODECS = frozenset({"png", "mjpeg", "bmp", "gif", "tiff", "webp", "jpeg2000", "qoi"})
# Raw elementary-stream formats whose packets are contiguous in the file.
_CONTIGUOUS_FORMATS = frozenset({"mp3", "aac", "ac3", "eac3", "mp2", "wav", "w64"})
# A demuxer or decoder that fails this many times in a row is not resyncing any more.
_MAX_CONSECUTIVE_ERRORS = 200
# Timestamp gaps shorter than this are jitter, not lost audio.
_GAP_TOLERANCE = 0.05
# Input samples resampled per call.
_BATCH = 32_768
# What a decoder raises for a packet it cannot use.
_DECODE_ERRORS = (av.error.InvalidDataError, av.error.PatchWelcomeError, ValueError)


@dataclass(slots=True)
class Damage:
    """One damaged region that decoding skipped."""

    at: float  # seconds into the decoded output where the gap sits
    byte_offset: int | None
    bytes: int
    seconds: float
    packets: int


def pick_audio_stream(streams: list[Any]) -> Any:
    """The audio stream decoded by default when a container holds several.

    The rule, in order: a stream flagged ``default`` beats one that is not; then more
    channels; then a higher sample rate; then a higher bit rate; then the lower index.
    This is deterministic and close to what the ffmpeg CLI picks (most channels).
    """

    def key(s: Any) -> tuple[int, int, int, int, int]:
        default = 1 if s.disposition & av.stream.Disposition.default else 0
        ctx = s.codec_context
        return (default, ctx.channels or 0, ctx.sample_rate or 0, s.bit_rate or 0, -s.index)

    return max(streams, key=key)


class AudioReader:
    """Decodes one file into fixed-size chunks of mono float32 samples.

    Call :meth:`open` (probe + limits), then :meth:`read_chunk` until it returns
    ``None``, then :meth:`finish` for the final :class:`MediaInfo`; :meth:`close` on
    every path.
    """

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        chunk_samples: int,
        frame_size: int,
        audio_stream: int | None,
        max_duration: float | None,
        max_bytes: int | None,
        job_id: str | None,
    ) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.chunk_samples = chunk_samples
        self.frame_size = frame_size
        self.audio_stream = audio_stream
        self.max_duration = max_duration
        self.max_bytes = max_bytes
        self.job_id = job_id
        self.info: MediaInfo | None = None
        self.damage: list[Damage] = []
        self.decoded = 0  # output samples produced so far
        self._container: Any = None
        self._stream: Any = None
        self._frames: Iterator[npt.NDArray[np.float32]] | None = None
        self._pending: npt.NDArray[np.float32] | None = None
        self._position = 0.0  # seconds of input timeline decoded so far
        self._contiguous = False

    # ------------------------------------------------------------------ open/probe

    def _fail(self, cls: type[DecodeError], why: str) -> DecodeError:
        return cls(f"{self.path}: {why}", job_id=self.job_id)

    def open(self) -> MediaInfo:
        """Check the file, open it, pick the stream and enforce the limits.

        Raises:
            DecodeError: the path does not exist or cannot be read.
            UnsupportedMediaError: a directory, an empty file, not media, an image.
            NoAudioStreamError: media without an audio stream.
            MediaTooLongError: over ``max_bytes`` or (by the probed duration)
                ``max_duration``; nothing is decoded in that case.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise self._fail(DecodeError, "no such file") from exc
        except OSError as exc:
            raise self._fail(DecodeError, f"cannot stat: {exc.strerror}") from exc
        if os.path.isdir(self.path):
            raise self._fail(UnsupportedMediaError, "is a directory, not a media file")
        if st.st_size == 0:
            raise self._fail(UnsupportedMediaError, "is empty (0 bytes)")
        if self.max_bytes is not None and st.st_size > self.max_bytes:
            raise self._fail(
                MediaTooLongError, f"is {st.st_size} bytes, over the {self.max_bytes} limit"
            )
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.InvalidDataError as exc:
            raise self._fail(UnsupportedMediaError, "is not a media file PyAV can open") from exc
        except av.error.FFmpegError as exc:
            raise self._fail(DecodeError, f"cannot be opened: {exc}") from exc
        container = self._container
        audio = list(container.streams.audio)
        video = list(container.streams.video)
        if not audio:
            if video and all(v.codec_context.name in _IMAGE_CODECS for v in video):
                raise self._fail(UnsupportedMediaError, "is an image, not audio or video")
            if not video:
                raise self._fail(UnsupportedMediaError, "holds no audio or video stream")
            raise self._fail(NoAudioStreamError, "has no audio stream")
        if self.audio_stream is None:
            stream = pick_audio_stream(audio)
        elif 0 <= self.audio_stream < len(audio):
            stream = audio[self.audio_stream]
        else:
            raise ValueError(
                f"audio_stream={self.audio_stream} but {self.path} has {len(audio)} audio "
                "stream(s)"
            )
        self._stream = stream
        # Only where packets sit back to back in the file does a hole between two good
        # packets mean skipped bytes (Ogg pages, Matroska clusters, mp4 boxes interleave).
        self._contiguous = (
            len(container.streams) == 1 and container.format.name in _CONTIGUOUS_FORMATS
        )
        duration = _duration(container, stream)
        ctx = stream.codec_context
        self.info = MediaInfo(
            duration=duration,
            codec=ctx.name,
            channels=ctx.channels or None,
            sample_rate=ctx.sample_rate or None,
            container=container.format.name,
            has_video=any(v.codec_context.name not in _IMAGE_CODECS for v in video),
            bit_rate=stream.bit_rate or container.bit_rate or None,
            stream_index=stream.index,
            audio_streams=len(audio),
        )
        if self.max_duration is not None and duration is not None:
            if duration > self.max_duration:
                raise self._fail(
                    MediaTooLongError,
                    f"lasts {duration:.1f} s, over the {self.max_duration:g} s limit",
                )
        self._frames = self._resampled()
        return self.info

    # ------------------------------------------------------------------ decode chain

    def _bytes_to_seconds(self, nbytes: int) -> float:
        rate = self.info.bit_rate if self.info else None
        return nbytes * 8 / rate if rate else 0.0

    def _note(self, offset: int | None, nbytes: int, seconds: float, packets: int) -> None:
        at = self._position
        last = self.damage[-1] if self.damage else None
        # Consecutive bad packets are one damaged region, not hundreds.
        if last is not None and abs(last.at - at) < 1e-9:
            last.bytes += nbytes
            last.seconds += seconds
            last.packets += packets
            if last.byte_offset is None:
                last.byte_offset = offset
        else:
            self.damage.append(Damage(at, offset, nbytes, seconds, packets))

    def _new_resampler(self) -> av.AudioResampler:
        # rematrix_maxval=1 normalises the down-mix matrix: stereo becomes (L+R)/2 and a
        # full-scale 5.1 stays within [-1, 1] (float output is not normalised otherwise).
        return av.AudioResampler(
            format="flt",
            layout="mono",
            rate=self.sample_rate,
            frame_size=self.frame_size,
            options={"rematrix_maxval": "1.0"},
        )

    def _resampled(self) -> Iterator[npt.NDArray[np.float32]]:
        """Mono float32 arrays at the target rate, on the original timeline.

        One loop, because it runs once per packet (tens of thousands of times for a
        long file) and Python overhead is the cost that is ours, not FFmpeg's:

        * demux packets of the chosen stream; a demuxer error is recorded and demuxing
          resumes from where it stopped (re-sync);
        * decode; a packet the decoder rejects is skipped and recorded. In raw formats
          (:data:`_CONTIGUOUS_FORMATS`, packets back to back) the hole between two good
          packets is the damage: it covers bytes the demuxer skipped to resync and the
          bogus packets it cut out of garbage, and its length over the bit rate
          estimates the lost audio. Elsewhere a jump in timestamps shows the hole;
        * a hole is filled with silence so that later audio keeps its original time;
        * decoded frames are batched in an ``AudioFifo`` and resampled ``_BATCH``
          samples at a time (a few C calls per batch instead of per frame).
        """
        stream, container = self._stream, self._container
        ctx = stream.codec_context
        tb = float(stream.time_base) if stream.time_base else 0.0
        contiguous = self._contiguous
        fifo, resampler = av.AudioFifo(), self._new_resampler()
        errors = 0
        good_end: int | None = None  # byte offset just after the last usable packet
        next_pts: int | None = None  # where the next frame should start, by timestamps
        tolerance = _GAP_TOLERANCE / tb if tb else float("inf")
        while True:
            try:
                for packet in container.demux(stream):
                    try:
                        frames = ctx.decode(packet)
                    except _DECODE_ERRORS:
                        errors += 1
                        if errors >= _MAX_CONSECUTIVE_ERRORS:
                            raise self._fail(
                                CorruptMediaError, "the decoder rejects every packet"
                            ) from None
                        where = packet.pos if packet.pos is not None and packet.pos >= 0 else None
                        if contiguous:
                            self._note(where, 0, 0.0, 1)  # bytes: from the hole
                        else:
                            seconds = packet.duration * tb if packet.duration else 0.0
                            self._note(where, packet.size, seconds, 1)
                        continue
                    errors = 0
                    gap = 0.0
                    if contiguous and packet.size:
                        pos = packet.pos
                        if good_end is not None and pos is not None and pos > good_end:
                            gap = self._bytes_to_seconds(pos - good_end)
                            self._note(good_end, pos - good_end, gap, 0)
                        if pos is not None and pos >= 0:
                            good_end = pos + packet.size
                    for frame in frames:
                        pts = frame.pts
                        if not contiguous and pts is not None:
                            if next_pts is not None and pts - next_pts > tolerance:
                                gap = (pts - next_pts) * tb
                                self._note(None, 0, gap, 0)
                            next_pts = pts + round(frame.samples / frame.sample_rate / tb)
                        if gap > 0.0:
                            yield from self._drain(fifo, resampler)
                            fifo, resampler = av.AudioFifo(), self._new_resampler()
                            self._position += gap
                            yield np.zeros(round(gap * self.sample_rate), dtype=np.float32)
                            gap = 0.0
                        frame.pts = None  # the FIFO insists on contiguous timestamps
                        try:
                            fifo.write(frame)
                        except ValueError:
                            # Another format or rate mid-stream (garbage can look like
                            # that): finish the old batch, start a new chain.
                            yield from self._drain(fifo, resampler)
                            fifo, resampler = av.AudioFifo(), self._new_resampler()
                            fifo.write(frame)
                        self._position += frame.samples / frame.sample_rate
                        if fifo.samples >= _BATCH:
                            yield from _planes(resampler.resample(fifo.read()))
                break
            except av.error.EOFError:
                break
            except av.error.FFmpegError as exc:  # from the demuxer: resync and go on
                errors += 1
                self._note(None, 0, 0.0, 1)
                if errors >= _MAX_CONSECUTIVE_ERRORS:
                    raise self._fail(CorruptMediaError, f"demuxing keeps failing: {exc}") from exc
        yield from self._drain(fifo, resampler)

    def _drain(self, fifo: Any, resampler: Any) -> Iterator[npt.NDArray[np.float32]]:
        if fifo.samples:
            yield from _planes(resampler.resample(fifo.read()))
        yield from _planes(resampler.resample(None))

    def read_chunk(self) -> npt.NDArray[np.float32] | None:
        """The next chunk (``chunk_samples`` long, the last one shorter), or ``None``.

        Raises:
            MediaTooLongError: the duration was unknown up front and decoding passed
                ``max_duration``.
            CorruptMediaError: the stream keeps failing, or yields no audio at all.
        """
        if self._frames is None:
            return None
        buf = np.empty(self.chunk_samples, dtype=np.float32)  # preallocated, filled in place
        filled = 0
        while filled < self.chunk_samples:
            if self._pending is None or len(self._pending) == 0:
                self._pending = next(self._frames, None)
                if self._pending is None:
                    self._frames = None
                    break
                continue
            take = min(len(self._pending), self.chunk_samples - filled)
            buf[filled : filled + take] = self._pending[:take]
            self._pending = self._pending[take:]
            filled += take
        self.decoded += filled
        limit = self.max_duration
        if limit is not None and self.decoded > limit * self.sample_rate:
            raise self._fail(MediaTooLongError, f"lasts over the {limit:g} s limit")
        if filled == 0:
            if self.decoded == 0:
                raise self._fail(CorruptMediaError, "no audio could be decoded")
            return None
        return buf if filled == self.chunk_samples else buf[:filled].copy()

    def finish(self) -> MediaInfo:
        """The probed :class:`MediaInfo` completed with what decoding found."""
        assert self.info is not None
        decoded = self.decoded / self.sample_rate
        warnings = list(self.info.warnings)
        for d in self.damage:
            where = f" at byte {d.byte_offset}" if d.byte_offset is not None else ""
            warnings.append(
                f"skipped damaged data at {d.at:.2f} s{where}: {d.bytes} bytes, "
                f"{d.packets} packets, ~{d.seconds:.2f} s of audio"
            )
        expected = self.info.duration
        if expected is not None and expected - decoded > max(0.5, 0.02 * expected):
            warnings.append(
                f"truncated: decoded {decoded:.2f} s of the {expected:.2f} s the header announces"
            )
        return msgspec.structs.replace(
            self.info,
            decoded_duration=decoded,
            skipped_bytes=sum(d.bytes for d in self.damage),
            skipped_seconds=sum(d.seconds for d in self.damage),
            warnings=tuple(warnings),
        )

    def close(self) -> None:
        """Close the container (idempotent)."""
        self._frames = None
        self._pending = None
        container, self._container = self._container, None
        if container is not None:
            container.close()


def _planes(frames: list[Any]) -> Iterator[npt.NDArray[np.float32]]:
    for frame in frames:
        # A view on the frame's own buffer, copied once into the chunk buffer.
        yield np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples)


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None
