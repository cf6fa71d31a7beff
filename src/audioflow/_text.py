"""The text vocabulary every part shares: sentence ends, clause punctuation, short
binding words and speaker labels.

The transcribers split their text into sentences with :func:`ends_sentence`, the
captions break at it, and every renderer names speakers with :func:`speaker_label`: one
definition, so a sentence end the captions honour is one the transcript made.
"""

from __future__ import annotations

import re

__all__ = ["ends_clause", "ends_sentence", "is_short_word", "speaker_label"]

# Trailing closing quotes/brackets do not hide the punctuation before them: `said."`.
# CJK full-width marks written as escapes so no look-alike character hides in the source.
_CLOSERS = "[\"'\u201d\u2019\u00bb)\\]]*$"
_SENTENCE_END = re.compile("[.!?\u2026\u3002\uff01\uff1f]" + _CLOSERS)
_CLAUSE_END = re.compile("[,;:\u2014\u2013\u3001\uff0c\uff1b\uff1a]" + _CLOSERS)

# A short bare word (an article, "to", "of") binds to the word after it; breaking
# after one strands it. Length is a language-neutral stand-in for "function word".
_SHORT_WORD = 3


def ends_sentence(word: str) -> bool:
    """The word ends a sentence (``.``, ``?``, ``!``, ``…``, CJK full stops)."""
    return _SENTENCE_END.search(word) is not None


def ends_clause(word: str) -> bool:
    """The word ends a clause (comma, semicolon, colon, dash; CJK forms too)."""
    return _CLAUSE_END.search(word) is not None


def is_short_word(word: str) -> bool:
    """A word of three characters or fewer: it binds to the next word, so a break after
    it (when it carries no punctuation) strands it."""
    return len(word) <= _SHORT_WORD


def speaker_label(speaker: str | int | None) -> str | None:
    """How a speaker is shown: a bare integer (``0`` or ``"0"``) reads ``"Speaker 0"``.

    Other labels (``"Speaker 0"`` from :meth:`~audioflow.Transcript.from_deepgram`, a
    name) are shown as they are, whitespace collapsed; ``None`` or blank means unknown.
    """
    if speaker is None:
        return None
    speaker = " ".join(str(speaker).split())
    if not speaker:
        return None
    return f"Speaker {speaker}" if speaker.isdigit() else speaker
