"""``DetectSpeech``: audio chunks in, speech segments (original timeline) out.

Backends: ``energy`` (numpy, default), ``webrtc`` and ``silero`` (the ``vad`` extra); see
:mod:`audioflow.vad`. Post-processing (``min_speech``, ``min_silence``, ``padding``,
``max_segment`` split at the quietest point) is :class:`~audioflow.vad.SegmentBuilder`.

Memory stays bounded: the stage keeps only the audio a segment may still need (the open
utterance, at most ``max_segment`` long, plus padding), never the whole stream. Chunks
must be contiguous 16 kHz mono, as :class:`~audioflow.stages.decode.Decode` sends them;
segment times count from the first chunk's ``start``.
"""

from __future__ import annotations

from collections import deque

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..records import AudioChunk, SpeechSegment
from ..vad import SegmentBuilder, SegmentRules, Span, VadBackend, make_backend
from .base import StageContext

__all__ = ["DetectSpeech"]

SAMPLE_RATE = 16_000


class DetectSpeech:
    """Stage: :class:`~audioflow.AudioChunk` s in, :class:`~audioflow.SpeechSegment` s out.

    Args:
        backend: ``"energy"``, ``"webrtc"``, ``"silero"`` or a
            :class:`~audioflow.vad.VadBackend` instance.
        threshold: speech probability that starts speech; a pause starts below
            ``threshold - 0.15`` and only a frame at ``threshold`` or above ends it.
        min_speech: drop speech shorter than this (seconds).
        min_silence: speech ends at a pause longer than this (seconds).
        padding: seconds added before and after each segment (rounded up to whole
            frames of the backend).
        max_segment: longest segment (padding included); longer speech is split at its
            quietest point. ``None`` never splits.
        neg_threshold: where a pause starts (default ``threshold - 0.15``).

    Raises:
        MissingDependencyError: the backend's package is not installed (raised here,
            not mid-job).

    One instance serves one stream at a time (backends are stateful). A segment within
    one chunk holds a view of that chunk's samples, not a copy: whoever keeps many
    segments of a long file (rather than transcribing them as they come) should keep
    ``segment.samples.copy()`` so the chunks can be freed.
    """

    name = "vad"

    def __init__(
        self,
        backend: str | VadBackend = "energy",
        *,
        threshold: float = 0.5,
        min_speech: float = 0.25,
        min_silence: float = 0.5,
        padding: float = 0.2,
        max_segment: float | None = 30.0,
        neg_threshold: float | None = None,
    ) -> None:
        self.backend = make_backend(backend) if isinstance(backend, str) else backend
        self.rules = SegmentRules(
            threshold=threshold,
            min_speech=min_speech,
            min_silence=min_silence,
            padding=padding,
            max_segment=max_segment,
            neg_threshold=neg_threshold,
        )

    async def run(
        self,
        inbox: ObjectReceiveStream[AudioChunk],
        outbox: ObjectSendStream[SpeechSegment],
        ctx: StageContext,
    ) -> None:
        """Detect speech in the chunk stream; send each segment once it is final."""
        async with inbox, outbox:
            detector = SpeechDetector(self.backend, self.rules)
            async for chunk in inbox:
                segments = await anyio.to_thread.run_sync(
                    detector.push, chunk, limiter=ctx.limiter
                )
                for segment in segments:
                    await outbox.send(segment)
            for segment in await anyio.to_thread.run_sync(detector.finish, limiter=ctx.limiter):
                await outbox.send(segment)
        ctx.progress(self.name, 1.0, f"{detector.segments} speech segments")


class SpeechDetector:
    """The synchronous core of :class:`DetectSpeech` (frames, backend, segments, audio)."""

    def __init__(self, backend: VadBackend, rules: SegmentRules) -> None:
        backend.reset()
        self.backend = backend
        self.hop = backend.frame_samples
        self.builder = SegmentBuilder(rules, self.hop / SAMPLE_RATE)
        self._carry = np.zeros(0, dtype=np.float32)
        self._origin: float | None = None
        self._audio: deque[tuple[int, npt.NDArray[np.float32]]] = deque()
        self._total = 0  # samples received
        self.segments = 0

    @property
    def buffered_seconds(self) -> float:
        """Seconds of audio held for segments that are not final yet."""
        return sum(len(arr) for _, arr in self._audio) / SAMPLE_RATE

    def push(self, chunk: AudioChunk) -> list[SpeechSegment]:
        """Take the next chunk; return the segments that became final."""
        if chunk.sample_rate != SAMPLE_RATE:
            raise ValueError(f"DetectSpeech needs {SAMPLE_RATE} Hz audio, got {chunk.sample_rate}")
        if self._origin is None:
            self._origin = chunk.start
        samples = np.asarray(chunk.samples, dtype=np.float32)
        self._audio.append((self._total, samples))
        self._total += len(samples)
        # One concatenation per chunk (not per frame) to re-frame across chunk edges.
        stream = np.concatenate([self._carry, samples]) if len(self._carry) else samples
        whole = len(stream) // self.hop * self.hop
        self._carry = stream[whole:].copy()
        spans = self._score(stream[:whole].reshape(-1, self.hop))
        return self._cut(spans)

    def finish(self) -> list[SpeechSegment]:
        """End of stream: score the last partial frame, return the remaining segments."""
        spans: list[Span] = []
        if len(self._carry):
            last = np.zeros((1, self.hop), dtype=np.float32)
            last[0, : len(self._carry)] = self._carry
            spans = self._score(last)
        return self._cut(spans + self.builder.finish())

    def _score(self, frames: npt.NDArray[np.float32]) -> list[Span]:
        if len(frames) == 0:
            return []
        probs = self.backend.probabilities(frames)
        energy = np.einsum("ij,ij->i", frames, frames)  # split points only need an order
        return self.builder.feed(probs, energy)

    def _cut(self, spans: list[Span]) -> list[SpeechSegment]:
        origin = self._origin or 0.0
        out = []
        for first, last, speech_first, speech_last in spans:
            a, b = first * self.hop, min(last * self.hop, self._total)
            if b <= a:
                continue
            pieces = [
                arr[max(0, a - at) : b - at]
                for at, arr in self._audio
                if at < b and at + len(arr) > a
            ]
            out.append(
                SpeechSegment(
                    start=origin + a / SAMPLE_RATE,
                    end=origin + b / SAMPLE_RATE,
                    # A view when the segment lies in one chunk: the packer copies it
                    # into a window anyway (a copy here was a third of this stage's time).
                    samples=np.concatenate(pieces) if len(pieces) > 1 else pieces[0],
                    sample_rate=SAMPLE_RATE,
                    speech_start=origin + speech_first * self.hop / SAMPLE_RATE,
                    speech_end=origin + min(speech_last * self.hop, b) / SAMPLE_RATE,
                )
            )
        self.segments += len(out)
        # Drop audio no future segment can reach.
        keep_from = self.builder.pending_from * self.hop
        while self._audio and self._audio[0][0] + len(self._audio[0][1]) <= keep_from:
            self._audio.popleft()
        return out
