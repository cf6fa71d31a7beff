"""Map times in packed audio back to the original media timeline.

A stage that packs speech segments into one buffer (a transcriber window, an upload)
builds a :class:`TimelineMap` while packing, and maps every time the transcriber
returns through it. Each *word* is placed by its own offset inside the packed audio,
never by its window's or segment's offset: a word two segments into a window lands in
the second segment, where it was spoken (the classic faster-whisper #230/#1119 bug was
shifting all words by the first segment's offset).

Example::

    timeline = TimelineMap.pack([(10.0, 12.0), (30.0, 31.5)])   # 3.5 s of packed audio
    timeline.to_original(2.5)          # 30.5: 0.5 s into the second segment
    timeline.map_span(1.9, 2.4)        # (30.0, 30.4): a word straddling the cut
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import msgspec

from .records import Word

__all__ = ["TimelineMap", "TimelinePiece"]


class TimelinePiece(msgspec.Struct, frozen=True, kw_only=True):
    """``duration`` seconds found at ``packed_start`` in packed audio and at
    ``original_start`` on the original timeline.

    ``speech_start``/``speech_end`` (original timeline, when set) bound where speech
    was detected inside the piece; the rest is the detector's padding, and
    :meth:`TimelineMap.map_span` keeps mapped times inside them.
    """

    packed_start: float
    original_start: float
    duration: float
    speech_start: float | None = None
    speech_end: float | None = None

    @property
    def packed_end(self) -> float:
        return self.packed_start + self.duration

    @property
    def original_end(self) -> float:
        return self.original_start + self.duration


class TimelineMap(msgspec.Struct, frozen=True, kw_only=True):
    """Pieces of the original timeline laid out one after another in packed audio.

    Pieces are in packed order, do not overlap in either timeline and keep their
    original order, so mapping is monotone: a later packed time never maps to an
    earlier original time.
    """

    pieces: tuple[TimelinePiece, ...] = ()

    @classmethod
    def pack(
        cls,
        spans: Iterable[tuple[float, float]],
        *,
        gap: float = 0.0,
        speech: Iterable[tuple[float | None, float | None]] | None = None,
    ) -> TimelineMap:
        """The map of ``spans`` (original ``(start, end)``) packed back to back.

        Args:
            spans: original-timeline spans in time order, not overlapping.
            gap: seconds of filler (silence) put between pieces in the packed audio.
            speech: for each span, where speech was detected inside it
                (``(None, None)``: all of it); mapped times are kept inside.

        Raises:
            ValueError: spans out of order, overlapping or of negative length; a
                ``speech`` bound outside its span; ``speech`` of another length.
        """
        if gap < 0:
            raise ValueError("gap must be >= 0")
        spans = list(spans)
        bounds = [(None, None)] * len(spans) if speech is None else list(speech)
        if len(bounds) != len(spans):
            raise ValueError("speech must give one (start, end) per span")
        pieces: list[TimelinePiece] = []
        cursor = 0.0
        previous_end = float("-inf")
        for (start, end), (speech_start, speech_end) in zip(spans, bounds, strict=True):
            if end < start or start < previous_end:
                raise ValueError(f"spans must be ordered and disjoint; got ({start}, {end})")
            lo = start if speech_start is None else speech_start
            hi = end if speech_end is None else speech_end
            if not start <= lo <= hi <= end:
                raise ValueError(f"speech ({lo}, {hi}) must lie inside its span ({start}, {end})")
            if pieces:
                cursor += gap
            pieces.append(
                TimelinePiece(
                    packed_start=cursor,
                    original_start=start,
                    duration=end - start,
                    speech_start=speech_start,
                    speech_end=speech_end,
                )
            )
            cursor += end - start
            previous_end = end
        return cls(pieces=tuple(pieces))

    @property
    def packed_duration(self) -> float:
        """Length of the packed audio (pieces plus the gaps between them)."""
        return self.pieces[-1].packed_end if self.pieces else 0.0

    def piece_index(self, packed: float) -> int:
        """Index of the piece nearest to packed time ``packed`` (inside it if any is)."""
        if not self.pieces:
            raise ValueError("empty TimelineMap")
        starts = [p.packed_start for p in self.pieces]
        i = max(0, bisect.bisect_right(starts, packed) - 1)
        piece = self.pieces[i]
        if packed > piece.packed_end and i + 1 < len(self.pieces):
            # In the gap after piece i: whichever piece is closer.
            if self.pieces[i + 1].packed_start - packed < packed - piece.packed_end:
                return i + 1
        return i

    def to_original(self, packed: float) -> float:
        """The original time of packed time ``packed``.

        Times inside a piece map by that piece's offset; times in a gap (or outside
        the packed audio) are clamped to the nearest piece's edge. Pieces are
        half-open: the instant of a cut with no filler maps to the next piece's start.
        """
        piece = self.pieces[self.piece_index(packed)]
        return piece.original_start + min(max(packed - piece.packed_start, 0.0), piece.duration)

    def map_span(self, start: float, end: float) -> tuple[float, float]:
        """Map a packed ``(start, end)`` (a word, a segment) to the original timeline.

        The span is placed in the piece that holds its midpoint, by its own offset in
        that piece, and clamped to that piece: a word straddling a cut lands where most
        of it was spoken, and never spans the silence that packing removed. Where the
        piece knows its detected speech, the span is also kept inside that: a word
        the transcriber starts in the padding starts where speech was heard.
        """
        if end < start:
            raise ValueError("end < start")
        piece = self.pieces[self.piece_index((start + end) / 2)]
        lo = piece.original_start if piece.speech_start is None else piece.speech_start
        hi = piece.original_end if piece.speech_end is None else piece.speech_end

        def place(t: float) -> float:
            return min(max(piece.original_start + t - piece.packed_start, lo), hi)

        return place(start), place(end)

    def map_word(self, word: Word) -> Word:
        """``word`` with its times mapped by :meth:`map_span`."""
        start, end = self.map_span(word.start, word.end)
        return msgspec.structs.replace(word, start=start, end=end)
