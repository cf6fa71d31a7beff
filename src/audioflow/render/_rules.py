"""The caption rules: the limits cues are built to."""

from __future__ import annotations

import math

import msgspec

__all__ = ["CaptionRules"]


class CaptionRules(msgspec.Struct, frozen=True, kw_only=True):
    """The caption rules; every limit is configurable.

    Attributes:
        max_chars_per_line: Characters a line may hold (42 is the common broadcast
            limit). A single longer word gets a cue of its own.
        max_lines: Lines a cue may hold.
        max_duration: Seconds a cue may stay on screen. A single word spoken for
            longer gets a cue of its own.
        max_chars_per_second: Reading speed, characters (spaces included) per second
            of display; met wherever a split can meet it (see the module docstring).
        linger: Seconds a cue stays after its last word ends, when the next word
            starts later (and the media has not ended); gives the reader time after
            fast speech.
        sentence_pause: A sentence end followed by at least this many seconds of
            silence always ends a cue (a hard rule); ``math.inf`` leaves such breaks
            to the soft costs alone.
        highlight_words: SRT and WebVTT show each cue once per word, from that word's
            start to the next one's, with the word being spoken underlined (``<u>``),
            as WhisperX's ``--highlight_words`` does. The cues themselves (their
            words, lines and span) do not change.
    """

    max_chars_per_line: int = 42
    max_lines: int = 2
    max_duration: float = 7.0
    max_chars_per_second: float = 20.0
    linger: float = 0.6
    sentence_pause: float = 0.3
    highlight_words: bool = False

    def __post_init__(self) -> None:
        if self.max_chars_per_line < 1 or self.max_lines < 1:
            raise ValueError("max_chars_per_line and max_lines must be at least 1")
        for name in ("max_duration", "max_chars_per_second"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.linger) and self.linger >= 0):
            raise ValueError(f"linger must be a finite number >= 0, got {self.linger!r}")
        if not self.sentence_pause >= 0:  # also rejects NaN; inf is allowed
            raise ValueError(f"sentence_pause must be >= 0, got {self.sentence_pause!r}")
