"""``DetectSpeech``: audio chunks in, speech segments (original timeline) out.

Backends: ``energy`` (numpy, default), ``webrtc`` and ``silero`` (the ``vad`` extra); see
:mod:`audioflow.vad`. Post-processing (``min_speech``, ``min_silence``, ``padding``,
``max_segment`` split at the quietest point) is :class:`~audioflow.vad.SegmentBuilder`.

The work is :class:`SpeechDetector` (``stages/_vad.py``), which keeps only the audio
a segment may still need, never the whole stream; this module is the async shell
around it. Chunks must be contiguous 16 kHz mono, as
:class:`~audioflow.stages.decode.Decode` sends them; segment times count from the
first chunk's ``start``.
"""

from __future__ import annotations

import anyio.to_thread
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..records import AudioChunk, SpeechSegment
from ..vad import SegmentRules, VadBackend, make_backend
from ._vad import SpeechDetector
from .base import StageContext

__all__ = ["DetectSpeech", "SpeechDetector"]


class DetectSpeech:
    """Stage: :class:`~audioflow.AudioChunk` s in, :class:`~audioflow.SpeechSegment` s out.

    Args:
        backend: ``"energy"``, ``"webrtc"``, ``"silero"`` or a
            :class:`~audioflow.vad.VadBackend` instance.
        threshold: speech probability that starts speech; a pause starts below
            ``threshold - 0.15`` and only a frame at ``threshold`` or above ends it.
        min_speech: drop speech shorter than this (seconds).
        min_silence: speech ends at a pause longer than this (seconds).
        padding: seconds added before and after each segment (to the sample).
        max_segment: longest segment (padding included); longer speech is split at its
            quietest point. ``None`` never splits.
        neg_threshold: where a pause starts (default ``threshold - 0.15``).

    Raises:
        MissingDependencyError: the backend's package is not installed (raised here,
            not mid-job).

    One instance serves one stream at a time (backends are stateful). Segments hold the
    audio rounded to 16-bit levels (as Whisper's loaders give it; see ``stages/_vad.py``).
    A segment within one chunk holds a view of the detector's copy of that chunk:
    whoever keeps many segments of a long file (rather than transcribing them as they
    come) should keep ``segment.samples.copy()`` so the chunks can be freed.
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
