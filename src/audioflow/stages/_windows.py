"""The engine behind :class:`~audioflow.stages.Transcribe`: speech segments packed into
transcriber windows (:class:`WindowPacker`), each with the
:class:`~audioflow.timeline.TimelineMap` of its audio, and a window's answer mapped back
to the original timeline word by word (:func:`map_window`). Synchronous, no model.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from ..records import SpeechSegment, TranscriptSegment
from ..timeline import TimelineMap
from ..transcribers.base import AudioWindow, WindowTranscript

__all__ = ["PackedWindow", "WindowPacker", "map_window"]


class PackedWindow(msgspec.Struct, frozen=True, kw_only=True):
    """A window of packed speech and the map of its audio back to the original timeline."""

    window: AudioWindow
    timeline: TimelineMap


class WindowPacker:
    """Packs speech segments into windows of at most ``max_window`` seconds.

    Segments are laid back to back with ``gap`` seconds of silence between them. A
    segment longer than a window is cut into window-sized pieces (the VAD's
    ``max_segment`` normally prevents that by cutting at the quietest point).
    """

    def __init__(self, max_window: float, *, gap: float = 0.1, sample_rate: int = 16_000):
        if not max_window > gap:
            raise ValueError("max_window must be longer than the gap")
        self.max_window = max_window
        self.gap = gap
        self.sample_rate = sample_rate
        # (original start, samples, detected speech inside: start, end or None)
        self._pieces: list[
            tuple[float, npt.NDArray[np.float32], tuple[float | None, float | None]]
        ] = []
        self._length = 0  # samples in the current window, gaps included
        self._index = 0

    def _gap_samples(self) -> int:
        return round(self.gap * self.sample_rate) if self._pieces else 0

    def push(self, segment: SpeechSegment) -> list[PackedWindow]:
        """Add a segment; returns the windows it completed (usually none or one)."""
        if segment.sample_rate != self.sample_rate:
            raise ValueError(f"expected {self.sample_rate} Hz speech, got {segment.sample_rate}")
        limit = math.floor(self.max_window * self.sample_rate)
        out = []
        start, samples = segment.start, segment.samples
        if self._pieces:
            # Segments that touch (padding met in the middle of a pause) can overlap by
            # a rounding error in seconds; one that really overlaps loses its head. The
            # window's timeline needs ordered, disjoint spans.
            last_start, last, _ = self._pieces[-1]
            last_end = last_start + len(last) / self.sample_rate
            if start < last_end:
                samples = samples[round((last_end - start) * self.sample_rate) :]
                start = last_end
        while len(samples):
            room = limit - self._length - self._gap_samples()
            if room <= 0 or (len(samples) > room and self._pieces):
                out.append(self._emit())  # it does not fit: close this window first
                continue
            piece = samples[:room]
            end = start + len(piece) / self.sample_rate
            self._length += self._gap_samples() + len(piece)
            self._pieces.append((start, piece, _speech_inside(segment, start, end)))
            start = end
            samples = samples[room:]
        return out

    def finish(self) -> list[PackedWindow]:
        """The last, partial window (if any speech is left)."""
        return [self._emit()] if self._pieces else []

    def _emit(self) -> PackedWindow:
        gap = np.zeros(round(self.gap * self.sample_rate), dtype=np.float32)
        parts: list[npt.NDArray[np.float32]] = []
        for i, (_, piece, _) in enumerate(self._pieces):
            if i:
                parts.append(gap)
            parts.append(piece)
        # Spans from sample counts, so packed positions match the audio exactly.
        spans = [(s, s + len(p) / self.sample_rate) for s, p, _ in self._pieces]
        timeline = TimelineMap.pack(
            spans, gap=len(gap) / self.sample_rate, speech=[b for _, _, b in self._pieces]
        )
        window = AudioWindow(
            samples=np.concatenate(parts), sample_rate=self.sample_rate, index=self._index
        )
        self._index += 1
        self._pieces, self._length = [], 0
        return PackedWindow(window=window, timeline=timeline)


def _speech_inside(
    segment: SpeechSegment, start: float, end: float
) -> tuple[float | None, float | None]:
    """The segment's detected speech bounds that fall inside the piece ``[start, end]``
    (``None`` where the piece's own edge is the bound)."""
    lo = segment.speech_start
    hi = segment.speech_end
    lo = None if lo is None or lo <= start else min(lo, end)
    hi = None if hi is None or hi >= end else max(hi, start if lo is None else lo)
    return lo, hi


def map_window(result: WindowTranscript, timeline: TimelineMap) -> list[TranscriptSegment]:
    """The window's segments with every word (and segment bound) on the original timeline."""
    out = []
    for segment in result.segments:
        words = tuple(timeline.map_word(w) for w in segment.words)
        if words:
            start, end = words[0].start, max(w.end for w in words)
        else:
            start, end = timeline.map_span(segment.start, max(segment.start, segment.end))
        out.append(
            msgspec.structs.replace(
                segment,
                start=start,
                end=end,
                words=words,
                language=segment.language or result.language,
            )
        )
    return out
