"""``Quality``: a pass-through stage that measures signal quality as chunks stream by.

The measuring is :class:`QualityMeter` (``stages/_quality.py``, where the SNR estimate,
the levels and the score are described); this module is the async shell around it.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..records import AudioChunk, QualityReport
from ._quality import QualityMeter, quality_level
from .base import StageContext

__all__ = ["Quality", "QualityMeter", "quality_level"]


class Quality:
    """Stage: passes :class:`~audioflow.AudioChunk` s through unchanged, measuring them.

    When the inbox ends, :attr:`report` holds the :class:`~audioflow.QualityReport`
    (and ``ctx.progress`` is told the level). The math runs in a worker thread under
    the job's limiter.

    Args:
        silence_db: frames quieter than this (RMS dBFS) count as silence.
        clip_level: samples at or above this magnitude count as clipped.
    """

    name = "quality"

    def __init__(self, *, silence_db: float = -50.0, clip_level: float = 0.99) -> None:
        self.silence_db = silence_db
        self.clip_level = clip_level
        self.report: QualityReport | None = None

    async def run(
        self,
        inbox: ObjectReceiveStream[AudioChunk],
        outbox: ObjectSendStream[AudioChunk],
        ctx: StageContext,
    ) -> None:
        """Measure every chunk, forward it, and publish :attr:`report` at the end."""
        meter = QualityMeter(silence_db=self.silence_db, clip_level=self.clip_level)
        async with inbox, outbox:
            async for chunk in inbox:
                await anyio.to_thread.run_sync(meter.update, chunk.samples, limiter=ctx.limiter)
                await outbox.send(chunk)
            self.report = meter.report()
        ctx.progress(self.name, 1.0, f"quality: {self.report.level}")
