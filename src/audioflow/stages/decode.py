"""``Decode``: any audio or video file PyAV opens → fixed-length 16 kHz mono chunks.

PyAV only, no ffmpeg subprocess. All PyAV work runs in worker threads under the job's
``CapacityLimiter``, one chunk per call, so the event loop never blocks and a slow
consumer pauses decoding (back-pressure through the bounded outbox).

Policies:

* **Stream choice.** With several audio streams the default is the one flagged
  ``default``, then the one with most channels, then the highest sample rate, then bit
  rate, then the lowest index (:func:`~audioflow.stages._avreader.pick_audio_stream`).
  ``Decode(audio_stream=n)`` picks the n-th audio stream (0-based, like ffmpeg's
  ``0:a:n``) instead.
* **Down-mix.** Channels are averaged (normalised matrix): a sine in the right channel
  only comes out at half amplitude, never dropped.
* **Limits.** ``max_bytes`` is checked against the file size and ``max_duration``
  against the probed duration before anything is decoded; when a container does not
  announce its duration, decoding stops with :class:`~audioflow.MediaTooLongError` as
  soon as it passes the limit.
* **Damage.** Bad packets are skipped and decoding goes on, like the ffmpeg CLI. Where
  timestamps show a hole the hole is filled with silence, so later audio stays on the
  original timeline. :class:`~audioflow.MediaInfo` reports ``skipped_bytes``,
  ``skipped_seconds`` and a warning per damaged region (where, how much).
* **Truncation.** A file cut short yields the audio that is there plus a ``truncated``
  warning in ``MediaInfo.warnings`` (when the header announced a longer duration); a
  file that yields no audio at all raises :class:`~audioflow.CorruptMediaError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..records import AudioChunk, MediaInfo
from ._avreader import AudioReader
from .base import StageContext

__all__ = ["Decode"]

Source = str | os.PathLike[str]


class Decode:
    """Stage: source paths in, :class:`~audioflow.AudioChunk` s out (see module docs).

    Args:
        chunk_seconds: length of each chunk (the last one is shorter).
        sample_rate: output sample rate.
        audio_stream: which audio stream to decode (0-based among the audio streams);
            ``None`` picks the best one.
        max_duration: refuse media longer than this many seconds.
        max_bytes: refuse files larger than this.
        frame_size: samples per resampler output frame; large frames mean few Python
            round trips per chunk.

    After a source is decoded, :attr:`info` holds its final :class:`MediaInfo`
    (:attr:`infos` keeps one per source, in order).

    Example::

        chunks = await run_stages(["talk.mp4"], Decode(chunk_seconds=30))
    """

    name = "decode"

    def __init__(
        self,
        *,
        chunk_seconds: float = 30.0,
        sample_rate: int = 16_000,
        audio_stream: int | None = None,
        max_duration: float | None = None,
        max_bytes: int | None = None,
        frame_size: int = 65_536,
    ) -> None:
        if chunk_seconds <= 0 or sample_rate <= 0 or frame_size <= 0:
            raise ValueError("chunk_seconds, sample_rate and frame_size must be positive")
        if audio_stream is not None and audio_stream < 0:
            raise ValueError("audio_stream must be >= 0")
        self.chunk_samples = max(1, round(chunk_seconds * sample_rate))
        self.sample_rate = sample_rate
        self.audio_stream = audio_stream
        self.max_duration = max_duration
        self.max_bytes = max_bytes
        self.frame_size = frame_size
        self.info: MediaInfo | None = None
        self.infos: list[MediaInfo] = []

    async def run(
        self,
        inbox: ObjectReceiveStream[Source],
        outbox: ObjectSendStream[AudioChunk],
        ctx: StageContext,
    ) -> None:
        """Decode every source of ``inbox`` in turn, sending its chunks to ``outbox``."""
        async with inbox, outbox:
            async for source in inbox:
                await self.decode(source, outbox, ctx)

    async def probe(self, source: Source, ctx: StageContext | None = None) -> MediaInfo:
        """Open ``source``, check it and the limits, and return its :class:`MediaInfo`.

        Raises the same errors as decoding does up front; decodes nothing.
        """
        ctx = ctx or StageContext()
        reader = self._reader(source, ctx)
        try:
            return await anyio.to_thread.run_sync(reader.open, limiter=ctx.limiter)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close)

    async def decode(
        self, source: Source, outbox: ObjectSendStream[AudioChunk], ctx: StageContext
    ) -> MediaInfo:
        """Decode one ``source`` into ``outbox`` (left open); return its final info.

        Raises:
            DecodeError: a subclass naming the file, see the module docs.
        """
        reader = self._reader(source, ctx)
        try:
            info = await anyio.to_thread.run_sync(reader.open, limiter=ctx.limiter)
            self.info = info
            total = info.duration
            while True:
                samples = await anyio.to_thread.run_sync(reader.read_chunk, limiter=ctx.limiter)
                if samples is None:
                    break
                start = (reader.decoded - len(samples)) / self.sample_rate
                await outbox.send(
                    AudioChunk(samples=samples, start=start, sample_rate=self.sample_rate)
                )
                done = reader.decoded / self.sample_rate
                ctx.progress(self.name, done / total if total else math.nan, f"{done:.0f} s")
            info = reader.finish()
        finally:
            # Shielded so that the container is closed even when we are cancelled; no
            # limiter, so closing never queues behind other stages' CPU work.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close)
        self.info = info
        self.infos.append(info)
        ctx.progress(self.name, 1.0, "decoded")
        return info

    def _reader(self, source: Source, ctx: StageContext) -> AudioReader:
        return AudioReader(
            Path(source),
            sample_rate=self.sample_rate,
            chunk_samples=self.chunk_samples,
            frame_size=self.frame_size,
            audio_stream=self.audio_stream,
            max_duration=self.max_duration,
            max_bytes=self.max_bytes,
            job_id=ctx.job_id,
        )
