"""``BurstTranscriber``: a real, model-free transcriber for testing pipelines.

It "hears" every burst of sound in a window and names it by its dominant frequency:
a 440 Hz tone from 1.00 s to 1.30 s becomes the word ``"f440"`` from 1.00 to 1.30 s. Tests
write tones at known times, run them through packing, VAD and the pipeline, and check
that each word comes back at the time it was played. It answers at once, so it also
measures the pipeline's own overhead in benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..records import TranscriptSegment, Usage, Word
from ..transcribers.base import AudioWindow, WindowCallback, WindowTranscript

__all__ = ["BurstTranscriber"]


class BurstTranscriber:
    """One word per burst of sound louder than ``threshold`` (RMS of 10 ms frames).

    Args:
        max_window: window length the ``Transcribe`` stage packs to.
        max_batch: windows per call.
        threshold: frame RMS above which a frame is sound.

    ``calls`` counts ``transcribe`` calls and ``seen`` records the index of every
    window it transcribed, so tests can check what was (not) sent again.
    """

    name = "bursts"

    def __init__(
        self, *, max_window: float = 30.0, max_batch: int = 4, threshold: float = 0.02
    ) -> None:
        self.max_window = max_window
        self.max_batch = max_batch
        self.threshold = threshold
        self.calls = 0
        self.seen: list[int] = []

    def __repr__(self) -> str:
        return f"BurstTranscriber(max_window={self.max_window}, max_batch={self.max_batch})"

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        """Name the bursts of every window (times relative to the window)."""
        self.calls += 1
        self.seen += [w.index for w in windows]
        out = [self._hear(w, language) for w in windows]
        if on_window is not None:
            for result in out:
                on_window(result)
        return out

    async def aclose(self) -> None:
        """Nothing to release."""

    def _hear(self, window: AudioWindow, language: str | None) -> WindowTranscript:
        rate = window.sample_rate
        hop = rate // 100
        n = len(window.samples) // hop
        frames = window.samples[: n * hop].reshape(n, hop)
        # Mean square per frame, compared squared: no float64 copy, no square root.
        loud = np.einsum("ij,ij->i", frames, frames) > self.threshold**2 * hop
        edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8), [0]))))
        words = []
        for begin, end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            burst = window.samples[begin * hop : end * hop]
            # A pure tone crosses zero twice a cycle: cheap enough to "answer at once".
            crossings = int(np.count_nonzero(np.signbit(burst[1:]) != np.signbit(burst[:-1])))
            freq = crossings * rate / (2 * len(burst))
            words.append(
                Word(
                    text=f"f{round(freq / 10) * 10}",
                    start=begin * hop / rate,
                    end=end * hop / rate,
                    confidence=1.0,
                )
            )
        segments: tuple[TranscriptSegment, ...] = ()
        if words:
            text = " ".join(w.text for w in words)
            segments = (
                TranscriptSegment(
                    start=words[0].start, end=words[-1].end, text=text, words=tuple(words)
                ),
            )
        usage = Usage(audio_seconds=window.duration, requests=1)
        return WindowTranscript(
            index=window.index, segments=segments, language=language or "tones", usage=usage
        )
