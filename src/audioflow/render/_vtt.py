"""WebVTT (``.vtt``) rendering, with ``<v Speaker>`` voice tags."""

from __future__ import annotations

from collections.abc import Sequence

from .._text import speaker_label
from ._captions import Cue
from ._timestamps import vtt_timestamp

__all__ = ["escape_vtt", "render_vtt"]


def escape_vtt(text: str) -> str:
    """Escape cue text (and voice annotations) for WebVTT.

    ``&``, ``<`` and ``>`` become character references; escaping ``>`` also keeps a
    ``-->`` in the text from reading as a timing line.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(cues: Sequence[Cue]) -> str:
    """Write cues as WebVTT.

    When a cue's speaker is known its text opens with a voice span ``<v Speaker 0>``;
    the span runs to the end of the cue, so no closing ``</v>`` is needed.

    Args:
        cues: Cues from :func:`build_cues`.

    Returns:
        The document, starting with the ``WEBVTT`` header.
    """
    parts = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(escape_vtt(line) for line in cue.lines)
        label = speaker_label(cue.speaker)
        if label is not None:
            text = f"<v {escape_vtt(label)}>{text}"
        parts.append(f"{vtt_timestamp(cue.start)} --> {vtt_timestamp(cue.end)}\n{text}\n")
    return "\n".join(parts)
