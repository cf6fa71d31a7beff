"""WebVTT (``.vtt``) rendering, with ``<v Speaker>`` voice tags."""

from __future__ import annotations

from collections.abc import Sequence

from .._text import speaker_label
from ._captions import Cue, highlights
from ._timestamps import vtt_timestamp

__all__ = ["escape_vtt", "render_vtt"]


def escape_vtt(text: str) -> str:
    """Escape cue text (and voice annotations) for WebVTT.

    ``&``, ``<`` and ``>`` become character references; escaping ``>`` also keeps a
    ``-->`` in the text from reading as a timing line.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(cues: Sequence[Cue], *, highlight_words: bool = False) -> str:
    """Write cues as WebVTT.

    When a cue's speaker is known its text opens with a voice span ``<v Speaker 0>``;
    the span runs to the end of the cue, so no closing ``</v>`` is needed.

    Args:
        cues: Cues from :func:`build_cues`.
        highlight_words: one cue per word, the spoken word in ``<u>`` (see
            :attr:`CaptionRules.highlight_words`).

    Returns:
        The document, starting with the ``WEBVTT`` header.
    """
    parts = ["WEBVTT\n"]
    for cue in cues:
        label = speaker_label(cue.speaker)
        voice = "" if label is None else f"<v {escape_vtt(label)}>"
        if highlight_words:
            timed = [
                (
                    step.start,
                    step.end,
                    "\n".join(
                        " ".join(
                            f"<u>{escape_vtt(word)}</u>" if spoken else escape_vtt(word)
                            for word, spoken in line
                        )
                        for line in step.lines
                    ),
                )
                for step in highlights(cue)
            ]
        else:
            timed = [(cue.start, cue.end, "\n".join(escape_vtt(line) for line in cue.lines))]
        for start, end, text in timed:
            parts.append(f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n{voice}{text}\n")
    return "\n".join(parts)
