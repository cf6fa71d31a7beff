"""Cue building: a transcript's words into readable, timed caption cues.

The builder treats the caption rules in two tiers:

* **Hard rules** hold for every cue, except where one word alone breaks them (then that
  word gets a cue of its own; words are never dropped or split): at most
  ``max_chars_per_line`` characters a line, at most ``max_lines`` lines a cue, at most
  ``max_duration`` seconds a cue, a speaker change always starts a new cue, so does a
  sentence end followed by ``sentence_pause`` seconds of silence, cues never overlap,
  come in time order and never end after the media (``Transcript.duration``).
* **Reading speed** (``max_chars_per_second``) is a soft rule, because no split can fix a
  fast talker: a cue is never shorter than its own words. It is honoured *wherever a
  split can achieve it*: within each speaker turn the builder first minimises the number
  of cues that read too fast, so if any split of the turn into cues meets every hard
  rule and the reading speed everywhere, the cues it returns meet them too.

Within those, a dynamic program over the words picks the split with the lowest cost:
fewer cues, cue breaks at sentence ends, segment ends, clause punctuation and pauses
rather than mid-phrase, and no long silence inside a cue.

Display times: a cue starts at its first word's start and ends ``linger`` seconds after
its last word ends, but never after the next word starts (so cues never overlap) and
never past ``max_duration`` (unless its one word is longer). Reading speed is the cue's
characters (its lines joined with one space) over that displayed duration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import msgspec

from .._text import ends_clause, ends_sentence, is_short_word
from ..records import Transcript, TranscriptSegment, Word
from ._layout import layout_lines
from ._rules import CaptionRules

__all__ = ["Cue", "Highlight", "build_cues", "highlights"]


class Cue(msgspec.Struct, frozen=True, kw_only=True):
    """One caption: its display interval, its lines and the words it shows.

    ``words`` are the transcript's own :class:`~audioflow.Word` records (synthesised
    for segments that carry no word timings), in order; ``lines`` hold their texts,
    whitespace-normalised, joined by single spaces.
    """

    start: float
    end: float
    lines: tuple[str, ...]
    words: tuple[Word, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        """The cue's lines joined by newlines."""
        return "\n".join(self.lines)

    @property
    def chars(self) -> int:
        """Characters the reader reads: the lines joined by one space."""
        return len(" ".join(self.lines))


_SPACE = re.compile(r"\s+")

# Cost weights of the split (see _split_turn); only their ratios matter.
_CUE = 1.0  # every cue: prefer fewer, fuller cues
_BREAK_SENTENCE = 0.0
_BREAK_SEGMENT = 0.3
_BREAK_CLAUSE = 0.6
_BREAK_PHRASE = 2.0  # mid-phrase: the worst place to break
_PAUSE_BONUS = 1.5  # per second of pause at a break (up to 1 s)
_INNER_SENTENCE = 1.0  # a sentence end inside a cue
_INNER_PAUSE = 2.0  # per second of silence beyond 0.5 s inside a cue
_BREAK_AFTER_SHORT = 0.5  # see is_short_word


class _Token(msgspec.Struct, frozen=True):
    text: str
    start: float
    end: float
    speaker: str | None
    word: Word
    segment_end: bool


def _tokens(transcript: Transcript) -> list[_Token]:
    """The transcript's words in order, with monotone times and normalised text."""
    out: list[_Token] = []
    last_start = 0.0
    for segment in transcript.segments:
        words = segment.words or _synthesise_words(segment)
        kept = [w for w in words if _SPACE.sub(" ", w.text).strip()]
        for index, word in enumerate(kept):
            if not (math.isfinite(word.start) and math.isfinite(word.end)):
                raise ValueError(f"word {word.text!r} has a non-finite time")
            # Transcribers occasionally emit a word starting a hair before the previous
            # one; captions need monotone times, so clamp rather than reorder.
            start = max(word.start, last_start, 0.0)
            end = max(word.end, start)
            last_start = start
            out.append(
                _Token(
                    text=_SPACE.sub(" ", word.text).strip(),
                    start=start,
                    end=end,
                    speaker=word.speaker if word.speaker is not None else segment.speaker,
                    word=word,
                    segment_end=index == len(kept) - 1,
                )
            )
    return out


def _synthesise_words(segment: TranscriptSegment) -> tuple[Word, ...]:
    """Words for a segment without word timings, its span shared out by length."""
    texts = segment.text.split()
    if not texts:
        return ()
    total = sum(len(t) + 1 for t in texts)
    span = max(segment.end - segment.start, 0.0)
    words: list[Word] = []
    at = segment.start
    for text in texts:
        step = span * (len(text) + 1) / total
        words.append(Word(text=text, start=at, end=at + step, speaker=segment.speaker))
        at += step
    return tuple(words)


def _latest_end(start: float, duration: float) -> float:
    """The largest float ``end`` with ``end - start <= duration``.

    ``start + duration`` can land one ulp past that, which would break the duration
    rule as any reader measures it (``end - start``).
    """
    end = start + duration
    while end - start > duration:
        end = math.nextafter(end, -math.inf)
    return end


def _display_end(start: float, last_end: float, next_start: float, rules: CaptionRules) -> float:
    end = max(last_end, min(last_end + rules.linger, _latest_end(start, rules.max_duration)))
    return max(min(end, next_start), start)


def _too_fast(chars: int, start: float, end: float, rules: CaptionRules) -> bool:
    return chars > rules.max_chars_per_second * (end - start)


def _break_cost(tok: _Token, nxt: _Token) -> float:
    if ends_sentence(tok.text):
        base = _BREAK_SENTENCE
    elif tok.segment_end:
        base = _BREAK_SEGMENT
    elif ends_clause(tok.text):
        base = _BREAK_CLAUSE
    else:
        base = _BREAK_PHRASE + (_BREAK_AFTER_SHORT if is_short_word(tok.text) else 0.0)
    gap = max(nxt.start - tok.end, 0.0)
    return max(0.0, base - _PAUSE_BONUS * min(gap, 1.0))


def _split_turn(
    toks: Sequence[_Token], next_start: float, rules: CaptionRules
) -> list[tuple[int, int]]:
    """Split one speaker turn into cues: (first, last+1) index pairs.

    Forward dynamic program; costs are (cues that read too fast, soft cost) pairs
    compared lexicographically, so the number of reading-speed breaks is minimised
    first. Extending a cue only ever adds characters, lines and duration, so the inner
    loop stops at the first hard-rule break; the cost is O(words x words a cue).
    """
    n = len(toks)
    width = rules.max_chars_per_line
    best: list[tuple[int, float] | None] = [None] * (n + 1)
    back = [0] * (n + 1)
    best[0] = (0, 0.0)
    for j in range(n):
        base = best[j]
        assert base is not None  # a one-word cue is always allowed, so every j is reached
        first = toks[j]
        start = first.start
        chars = line_len = len(first.text)
        lines = 1
        last_end = first.end
        inner = 0.0
        for i in range(j, n):
            tok = toks[i]
            if i > j:
                size = len(tok.text)
                if len(first.text) > width or size > width:
                    break  # an over-long word stands alone
                chars += 1 + size
                if line_len + 1 + size <= width:
                    line_len += 1 + size
                else:
                    lines += 1
                    line_len = size
                last_end = max(last_end, tok.end)
                if lines > rules.max_lines or last_end - start > rules.max_duration:
                    break
                prev = toks[i - 1]
                if ends_sentence(prev.text) and tok.start - prev.end >= rules.sentence_pause:
                    break  # a sentence that ends in a pause ends its cue
                inner += _INNER_PAUSE * max(tok.start - prev.end - 0.5, 0.0)
                if ends_sentence(prev.text):
                    inner += _INNER_SENTENCE
            following = toks[i + 1].start if i + 1 < n else next_start
            end = _display_end(start, last_end, following, rules)
            fast = _too_fast(chars, start, end, rules)
            soft = _CUE + inner
            if i + 1 < n:
                soft += _break_cost(tok, toks[i + 1])
            if fast:
                # Among splits that cannot avoid a fast cue, prefer the least fast.
                duration = end - start
                soft += chars / (rules.max_chars_per_second * duration) if duration else 10.0
            cost = (base[0] + int(fast), base[1] + soft)
            current = best[i + 1]
            if current is None or cost < current:
                best[i + 1] = cost
                back[i + 1] = j
    spans: list[tuple[int, int]] = []
    at = n
    while at > 0:
        spans.append((back[at], at))
        at = back[at]
    spans.reverse()
    return spans


def build_cues(
    transcript: Transcript | Iterable[TranscriptSegment],
    rules: CaptionRules | None = None,
) -> list[Cue]:
    """Split a transcript into caption cues that follow ``rules``.

    Args:
        transcript: A :class:`~audioflow.Transcript` (or its segments). Words come from
            each segment's ``words``; a segment without words has its text shared out
            over its span by length. Whitespace-only words are skipped; a word's
            speaker falls back to its segment's.
        rules: The caption rules; :class:`CaptionRules` defaults when ``None``.

    Returns:
        The cues in time order; every word appears in exactly one cue, in order.

    Raises:
        ValueError: A word has a non-finite time.

    Examples:
        >>> from audioflow.records import Word, TranscriptSegment, Transcript
        >>> seg = TranscriptSegment(start=0.0, end=1.0, text="Hi there.", words=(
        ...     Word(text="Hi", start=0.0, end=0.4), Word(text="there.", start=0.5, end=1.0)))
        >>> [cue.lines for cue in build_cues(Transcript(segments=(seg,)))]
        [('Hi there.',)]
    """
    rules = rules or CaptionRules()
    if not isinstance(transcript, Transcript):
        transcript = Transcript(segments=tuple(transcript))
    toks = _tokens(transcript)
    # The last cue lingers at most to the media's end.
    media_end = transcript.duration if transcript.duration is not None else math.inf
    cues: list[Cue] = []
    turn_start = 0
    for at in range(1, len(toks) + 1):
        if at < len(toks) and toks[at].speaker == toks[turn_start].speaker:
            continue
        turn = toks[turn_start:at]
        next_start = toks[at].start if at < len(toks) else media_end
        for a, b in _split_turn(turn, next_start, rules):
            words = turn[a:b]
            following = turn[b].start if b < len(turn) else next_start
            start = words[0].start
            end = _display_end(start, max(t.end for t in words), following, rules)
            cues.append(
                Cue(
                    start=start,
                    end=end,
                    lines=layout_lines([t.text for t in words], rules),
                    words=tuple(t.word for t in words),
                    speaker=words[0].speaker,
                )
            )
        turn_start = at
    return cues


class Highlight(msgspec.Struct, frozen=True, kw_only=True):
    """One word of a cue shown highlighted: the cue's lines as ``(text, spoken)``
    pieces, from ``start`` to ``end``."""

    start: float
    end: float
    lines: tuple[tuple[tuple[str, bool], ...], ...]


def highlights(cue: Cue) -> list[Highlight]:
    """The cue shown once per word, that word marked as spoken.

    Word ``k`` is shown from its start (the cue's start for the first word) to the next
    word's start (the cue's end for the last), clamped into the cue and never going
    back in time; a word that would be shown for no time at all is skipped. The
    renderers escape each piece and wrap the spoken one in ``<u>``.
    """
    texts = [_SPACE.sub(" ", w.text).strip() for w in cue.words]
    # Which words each line holds: the lines are the words joined by single spaces.
    per_line: list[list[int]] = []
    at = 0
    for line in cue.lines:
        held: list[int] = []
        while at < len(texts) and len(" ".join(texts[i] for i in [*held, at])) <= len(line):
            held.append(at)
            at += 1
        per_line.append(held)
    starts = [cue.start] + [w.start for w in cue.words[1:]]
    out: list[Highlight] = []
    shown = cue.start
    for k in range(len(texts)):
        start = min(max(starts[k], shown), cue.end)
        end = cue.end if k + 1 == len(texts) else min(max(starts[k + 1], start), cue.end)
        if end <= start:
            continue
        lines = tuple(tuple((texts[i], i == k) for i in held) for held in per_line)
        out.append(Highlight(start=start, end=end, lines=lines))
        shown = end
    return out
