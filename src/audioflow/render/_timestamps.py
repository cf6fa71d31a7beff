"""Timestamp and speaker-label formatting shared by the renderers."""

from __future__ import annotations

import math

__all__ = ["clock", "milliseconds", "srt_timestamp", "vtt_timestamp"]


def milliseconds(seconds: float) -> int:
    """Whole milliseconds, rounded to nearest; negative times clamp to 0.

    Rounding is monotone, so cue times that do not overlap as floats do not overlap
    once written either.
    """
    if not math.isfinite(seconds):
        raise ValueError(f"cannot write a non-finite time {seconds!r}")
    return max(round(seconds * 1000), 0)


def _split(ms: int) -> tuple[int, int, int, int]:
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return hours, minutes, secs, ms


def srt_timestamp(seconds: float) -> str:
    """``HH:MM:SS,mmm`` as SubRip writes it (hours grow past two digits if needed)."""
    h, m, s, ms = _split(milliseconds(seconds))
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def vtt_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` as WebVTT writes it."""
    h, m, s, ms = _split(milliseconds(seconds))
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def clock(seconds: float) -> str:
    """``HH:MM:SS``, truncated to the second (a line's time is when it begins)."""
    h, m, s, _ = _split(milliseconds(seconds) // 1000 * 1000)
    return f"{h:02d}:{m:02d}:{s:02d}"
