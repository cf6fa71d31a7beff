"""SubRip (``.srt``) rendering."""

from __future__ import annotations

from collections.abc import Sequence

from ._captions import Cue
from ._timestamps import srt_timestamp

__all__ = ["render_srt"]


def render_srt(cues: Sequence[Cue]) -> str:
    """Write cues as SubRip: numbered blocks, ``HH:MM:SS,mmm`` times, a blank line after each.

    SubRip has no voice markup, so speakers are not written (WebVTT carries them). Its
    text has no escaping either; players treat ``<i>``-style tags as markup.

    Args:
        cues: Cues from :func:`build_cues`.

    Returns:
        The document; empty when there are no cues.
    """
    blocks = [
        f"{index}\n{srt_timestamp(cue.start)} --> {srt_timestamp(cue.end)}\n{cue.text}\n"
        for index, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)
