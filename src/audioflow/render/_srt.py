"""SubRip (``.srt``) rendering."""

from __future__ import annotations

from collections.abc import Sequence

from ._captions import Cue, highlights
from ._timestamps import srt_timestamp

__all__ = ["render_srt"]


def render_srt(cues: Sequence[Cue], *, highlight_words: bool = False) -> str:
    """Write cues as SubRip: numbered blocks, ``HH:MM:SS,mmm`` times, a blank line after each.

    SubRip has no voice markup, so speakers are not written (WebVTT carries them). Its
    text has no escaping either; players treat ``<i>``-style tags as markup.

    Args:
        cues: Cues from :func:`build_cues`.
        highlight_words: one block per word, the spoken word in ``<u>`` (see
            :attr:`CaptionRules.highlight_words`).

    Returns:
        The document; empty when there are no cues.
    """
    timed: list[tuple[float, float, str]] = []
    for cue in cues:
        if not highlight_words:
            timed.append((cue.start, cue.end, cue.text))
            continue
        for step in highlights(cue):
            text = "\n".join(
                " ".join(f"<u>{word}</u>" if spoken else word for word, spoken in line)
                for line in step.lines
            )
            timed.append((step.start, step.end, text))
    blocks = [
        f"{index}\n{srt_timestamp(start)} --> {srt_timestamp(end)}\n{text}\n"
        for index, (start, end, text) in enumerate(timed, start=1)
    ]
    return "\n".join(blocks)
