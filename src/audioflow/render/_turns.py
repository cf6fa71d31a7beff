"""Speaker runs: a transcript cut wherever the speaker changes, for TXT and Markdown."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from ..records import Transcript

__all__ = ["Run", "runs"]


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """A stretch of one segment spoken by one speaker (``None``: unknown)."""

    start: float
    end: float
    text: str
    speaker: str | None = None


def _clean(text: str) -> str:
    return " ".join(text.split())


def runs(transcript: Transcript) -> Iterator[Run]:
    """Each segment as one run, or several where its words change speaker.

    A segment spoken by one speaker keeps its own text (a transcriber's text can be
    better punctuated than its words); a split segment's runs join their words.
    Segments with no text are skipped.
    """
    for segment in transcript.segments:
        groups: list[list[int]] = []
        speakers: list[str | None] = []
        for index, word in enumerate(segment.words):
            speaker = word.speaker if word.speaker is not None else segment.speaker
            if not groups or speakers[-1] != speaker:
                groups.append([])
                speakers.append(speaker)
            groups[-1].append(index)
        if len(groups) <= 1:
            text = _clean(segment.text) or " ".join(_clean(w.text) for w in segment.words)
            if text.strip():
                speaker = speakers[0] if speakers else segment.speaker
                yield Run(start=segment.start, end=segment.end, text=text, speaker=speaker)
            continue
        for group, speaker in zip(groups, speakers, strict=True):
            words = [segment.words[i] for i in group]
            text = " ".join(t for t in (_clean(w.text) for w in words) if t)
            if text:
                yield Run(start=words[0].start, end=words[-1].end, text=text, speaker=speaker)
