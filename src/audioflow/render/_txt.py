"""Plain-text rendering: ``[HH:MM:SS] Speaker N: text`` lines."""

from __future__ import annotations

from .._text import speaker_label
from ..records import Transcript
from ._timestamps import clock
from ._turns import runs

__all__ = ["render_txt"]


def render_txt(transcript: Transcript) -> str:
    """One line per segment (per speaker run inside a segment), time-stamped.

    Lines read ``[00:01:05] Speaker 0: text``; the speaker part is left out when the
    speaker is unknown (``[00:01:05] text``).

    Args:
        transcript: The transcript.

    Returns:
        The text, each line ending in a newline; empty for an empty transcript.
    """
    lines = []
    for run in runs(transcript):
        label = speaker_label(run.speaker)
        who = f"{label}: " if label else ""
        lines.append(f"[{clock(run.start)}] {who}{run.text}\n")
    return "".join(lines)
