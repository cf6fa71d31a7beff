"""The caption rules, as properties over random word streams, plus a few fixed cases.

Reading speed, precisely: a cue's reading speed is ``cue.chars / (cue.end - cue.start)``
(its lines joined by one space, over its displayed time). The rule "≤ 20 characters a
second wherever a split can achieve it" is checked per speaker turn: if *some* split
of the turn's words into cues meets every hard rule and the reading speed in every
cue (cue times as ``build_cues`` documents them: first word's start to the last word's
end plus ``linger``, capped by the next word's start and ``max_duration``), then every
cue ``build_cues`` returns for that turn meets the reading speed. ``_speed_achievable``
decides that by a feasibility search written here from the rules, not from the
implementation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from audioflow._text import ends_sentence
from audioflow.records import Transcript, TranscriptSegment, Word
from audioflow.render import CaptionRules, Cue, build_cues

RULES = CaptionRules()

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
PUNCT = ["", "", "", "", ",", ".", "?", "!", ":"]


@st.composite
def word_streams(draw: st.DrawFn) -> Transcript:
    """Random words, durations, gaps, speakers, punctuation, some very long words."""
    count = draw(st.integers(min_value=0, max_value=120))
    speakers = draw(st.sampled_from([[None], ["Speaker 0", "Speaker 1"], [None, "A", "B"]]))
    t = draw(st.floats(min_value=0.0, max_value=5.0))
    speaker = speakers[0]
    segments: list[TranscriptSegment] = []
    current: list[Word] = []
    for _ in range(count):
        if draw(st.integers(0, 19)) == 0:
            size = draw(st.integers(43, 70))  # longer than a line
        else:
            size = draw(st.integers(1, 12))
        text = draw(st.text(alphabet=LETTERS, min_size=size, max_size=size))
        text += draw(st.sampled_from(PUNCT))
        if draw(st.integers(0, 29)) == 0:
            duration = draw(st.floats(7.01, 12.0))  # longer than a cue may last
        else:
            duration = draw(st.floats(0.02, 1.2))
        gap = draw(st.sampled_from([0.0, 0.0, 0.01, 0.05, 0.2, 0.6, 1.5, 4.0]))
        if draw(st.integers(0, 14)) == 0:
            speaker = draw(st.sampled_from(speakers))
        t += gap
        current.append(Word(text=text, start=t, end=t + duration, speaker=speaker))
        t += duration
        if draw(st.integers(0, 9)) == 0:
            segments.append(_segment(current))
            current = []
    if current:
        segments.append(_segment(current))
    return Transcript(segments=tuple(segments))


def _segment(words: list[Word]) -> TranscriptSegment:
    return TranscriptSegment(
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.text for w in words),
        words=tuple(words),
    )


def _all_words(transcript: Transcript) -> list[Word]:
    return [w for s in transcript.segments for w in s.words]


def _greedy_lines(texts: list[str], width: int) -> int:
    lines, line = 1, len(texts[0])
    for text in texts[1:]:
        if line + 1 + len(text) <= width:
            line += 1 + len(text)
        else:
            lines, line = lines + 1, len(text)
    return lines


def _speed_achievable(words: list[Word], next_start: float, rules: CaptionRules) -> bool:
    """Whether some split of one turn meets every hard rule and the reading speed."""
    n = len(words)
    ok = [True] + [False] * n
    for i in range(1, n + 1):
        for j in range(i - 1, -1, -1):
            if not ok[j]:
                continue
            cue = words[j:i]
            texts = [w.text for w in cue]
            start, last_end = cue[0].start, max(w.end for w in cue)
            if len(cue) > 1 and (
                any(len(t) > rules.max_chars_per_line for t in texts)
                or _greedy_lines(texts, rules.max_chars_per_line) > rules.max_lines
                or last_end - start > rules.max_duration
                or _spans_a_sentence_pause(cue, rules)
            ):
                continue
            following = words[i].start if i < n else next_start
            end = max(last_end, min(last_end + rules.linger, start + rules.max_duration))
            end = max(min(end, following), start)
            if len(" ".join(texts)) <= rules.max_chars_per_second * (end - start):
                ok[i] = True
                break
    return ok[n]


def _spans_a_sentence_pause(words: Sequence[Word], rules: CaptionRules) -> bool:
    """Whether a sentence end followed by ``sentence_pause`` of silence is inside."""
    return any(
        ends_sentence(a.text) and b.start - a.end >= rules.sentence_pause
        for a, b in itertools.pairwise(words)
    )


def _turns(words: list[Word]) -> list[tuple[int, int]]:
    spans, first = [], 0
    for at in range(1, len(words) + 1):
        if at == len(words) or words[at].speaker != words[first].speaker:
            spans.append((first, at))
            first = at
    return spans


def _too_fast(cue: Cue, rules: CaptionRules) -> bool:
    return cue.chars > rules.max_chars_per_second * (cue.end - cue.start)


@given(word_streams())
def test_every_word_once_and_in_order(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    assert [w for cue in cues for w in cue.words] == _all_words(transcript)
    for cue in cues:
        # The lines hold exactly the cue's words, whole: splitting the lines at spaces
        # gives back the words (none is split across lines or dropped).
        assert all(line and line == line.strip() for line in cue.lines)
        assert " ".join(cue.lines).split(" ") == [w.text for w in cue.words]


@given(word_streams())
def test_hard_rules(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    note(f"{len(cues)} cues")
    for cue in cues:
        assert 1 <= len(cue.lines) <= RULES.max_lines
        for line in cue.lines:
            if len(line) > RULES.max_chars_per_line:
                # Only a single over-long word may break the line limit, in a cue of its own.
                assert len(cue.words) == 1
                assert line == cue.words[0].text
        if cue.end - cue.start > RULES.max_duration:
            (word,) = cue.words
            assert word.end - word.start > RULES.max_duration
        # A speaker change starts a new cue: one speaker per cue.
        assert {w.speaker for w in cue.words} == {cue.speaker}
        # So does a sentence that ends in a pause.
        assert not _spans_a_sentence_pause(cue.words, RULES)


@given(word_streams(), st.floats(0.0, 2.0))
def test_no_cue_ends_after_the_media(transcript: Transcript, after: float) -> None:
    words = _all_words(transcript)
    if not words:
        return
    # The media ends some time after the last word (as a decoder measures it).
    end = max(w.end for w in words) + after
    cues = build_cues(Transcript(segments=transcript.segments, duration=end))
    assert all(cue.end <= end for cue in cues)
    assert [w for c in cues for w in c.words] == words  # every word, once, in order


@given(word_streams())
def test_cues_are_monotone_and_never_overlap(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    for cue in cues:
        assert cue.start == cue.words[0].start  # the stream's times are monotone
        assert cue.start <= cue.end
    for a, b in itertools.pairwise(cues):
        assert a.end <= b.start
        assert a.start <= b.start


@given(word_streams())
def test_reading_speed_wherever_a_split_achieves_it(transcript: Transcript) -> None:
    words = _all_words(transcript)
    cues = build_cues(transcript)
    checked = 0
    at = 0
    for first, last in _turns(words):
        turn_cues: list[Cue] = []
        taken = 0
        while taken < last - first:
            turn_cues.append(cues[at])
            taken += len(cues[at].words)
            at += 1
        assert [w for c in turn_cues for w in c.words] == words[first:last]
        next_start = words[last].start if last < len(words) else math.inf
        if _speed_achievable(words[first:last], next_start, RULES):
            checked += 1
            assert not [c for c in turn_cues if _too_fast(c, RULES)]
    note(f"{checked} turns where the reading speed was achievable")


@given(word_streams(), st.integers(20, 60), st.integers(1, 3), st.floats(2.0, 10.0))
def test_rules_are_configurable(
    transcript: Transcript, width: int, lines: int, duration: float
) -> None:
    rules = CaptionRules(max_chars_per_line=width, max_lines=lines, max_duration=duration)
    cues = build_cues(transcript, rules)
    assert [w for cue in cues for w in cue.words] == _all_words(transcript)
    for cue in cues:
        assert len(cue.lines) <= lines
        assert all(len(line) <= width or len(cue.words) == 1 for line in cue.lines)
        assert cue.end - cue.start <= duration or len(cue.words) == 1
    words, at = _all_words(transcript), 0
    for first, last in _turns(words):
        turn_cues, taken = [], 0
        while taken < last - first:
            turn_cues.append(cues[at])
            taken, at = taken + len(cues[at].words), at + 1
        next_start = words[last].start if last < len(words) else math.inf
        if _speed_achievable(words[first:last], next_start, rules):
            assert not [c for c in turn_cues if _too_fast(c, rules)]


@st.composite
def messy_streams(draw: st.DrawFn) -> Transcript:
    """Times as a careless transcriber might give them: unsorted, overlapping,
    negative, ending before they start."""
    words = [
        Word(
            text=draw(st.text(alphabet=LETTERS + ".,", min_size=1, max_size=50)),
            start=(start := draw(st.floats(-5.0, 60.0))),
            end=start + draw(st.floats(-1.0, 9.0)),
            speaker=draw(st.sampled_from([None, "A"])),
        )
        for _ in range(draw(st.integers(1, 40)))
    ]
    return Transcript(segments=(_segment(words),))


@given(messy_streams())
def test_messy_times_still_give_valid_cues(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    assert [w for cue in cues for w in cue.words] == _all_words(transcript)
    for cue in cues:
        assert 0.0 <= cue.start <= cue.end
        assert len(cue.lines) <= RULES.max_lines
        assert all(
            len(line) <= RULES.max_chars_per_line or len(cue.words) == 1 for line in cue.lines
        )
    for a, b in itertools.pairwise(cues):
        assert a.start <= a.end <= b.start


# --------------------------------------------------------------------------- fixed cases


def _words(
    spec: str, start: float = 0.0, step: float = 0.3, speaker: str | None = None
) -> list[Word]:
    out, t = [], start
    for text in spec.split():
        out.append(Word(text=text, start=t, end=t + step - 0.05, speaker=speaker))
        t += step
    return out


def _transcript(*runs: list[Word]) -> Transcript:
    return Transcript(segments=tuple(_segment(words) for words in runs if words))


def test_breaks_at_the_sentence_end_rather_than_mid_phrase() -> None:
    words = _words(
        "We walked down to the river. Then the rain began and we ran back home to the old house"
    )
    cues = build_cues(_transcript(words))
    assert len(cues) == 2
    assert cues[0].lines[-1].endswith("river.")


def test_a_sentence_that_ends_in_a_pause_ends_its_cue() -> None:
    # The shipped sample's captions ran a cue across a sentence end and the 0.5 s pause
    # after it; by the soft costs alone this split does the same.
    first = _words("Welcome to audio flow.", start=1.0)
    second = _words(
        "This short recording was made for the quick start.", start=first[-1].end + 0.5
    )
    transcript = _transcript(first, second)
    cues = build_cues(transcript)
    assert [c.text for c in cues] == [
        "Welcome to audio flow.",
        "This short recording was made\nfor the quick start.",
    ]
    soft_only = build_cues(transcript, CaptionRules(sentence_pause=math.inf))
    assert soft_only[0].lines[0] == "Welcome to audio flow. This short"
    # A pause shorter than ``sentence_pause`` does not force the break.
    close = _words("This short recording was made for the quick start.", start=first[-1].end + 0.1)
    assert build_cues(_transcript(first, close))[0].lines[0] == "Welcome to audio flow. This short"


def test_the_last_cue_lingers_only_to_the_media_end() -> None:
    words = _words("The end.", start=10.0)  # last word ends at 10.55
    transcript = Transcript(segments=(_segment(words),), duration=10.6)
    [cue] = build_cues(transcript)
    assert cue.end == pytest.approx(10.6)  # not 10.55 + the 0.6 s linger
    [unbounded] = build_cues(Transcript(segments=(_segment(words),)))
    assert unbounded.end == pytest.approx(10.55 + CaptionRules().linger)


def test_breaks_at_a_pause() -> None:
    first = _words("one two three four five six seven eight nine ten eleven twelve")
    second = _words("thirteen fourteen fifteen sixteen seventeen eighteen", start=4.7, step=0.5)
    cues = build_cues(_transcript(first + second))
    assert [w.text for w in cues[0].words] == [w.text for w in first]


def test_speaker_change_starts_a_new_cue_even_when_it_would_fit() -> None:
    a = _words("Hi.", speaker="Speaker 0")
    b = _words("Hello there.", start=0.4, speaker="Speaker 1")
    cues = build_cues(_transcript(a, b))
    assert [(c.speaker, c.lines) for c in cues] == [
        ("Speaker 0", ("Hi.",)),
        ("Speaker 1", ("Hello there.",)),
    ]


def test_lines_are_balanced_and_within_the_limit() -> None:
    words = _words("the quick brown fox jumps over the lazy dog and keeps running far away")
    (cue,) = build_cues(_transcript(words))
    assert len(cue.lines) == 2
    assert all(len(line) <= 42 for line in cue.lines)
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) < 15


def test_a_word_longer_than_a_line_gets_its_own_cue() -> None:
    long = "x" * 50
    cues = build_cues(_transcript(_words(f"a {long} b")))
    assert [c.lines for c in cues] == [("a",), (long,), ("b",)]


def test_a_word_longer_than_a_cue_may_last_gets_its_own_cue() -> None:
    words = [
        Word(text="so", start=0.0, end=0.3),
        Word(text="ummmm", start=0.4, end=9.0),
        Word(text="yes", start=9.1, end=9.4),
    ]
    cues = build_cues(_transcript(words))
    assert [c.lines for c in cues] == [("so",), ("ummmm",), ("yes",)]
    assert cues[1].end - cues[1].start > 7


def test_reading_speed_borrows_time_from_the_following_silence() -> None:
    # 36 characters spoken in 1.2 s is 30 chars/s; lingering 0.6 s makes it 20.
    words = _words("abcdefgh abcdefgh abcdefgh abcdefgh", step=0.3)
    (cue,) = build_cues(_transcript(words))
    assert cue.end == words[-1].end + RULES.linger
    assert not _too_fast(cue, RULES)


def test_merging_fixes_a_fast_cue_when_splitting_cannot() -> None:
    # "Extraordinarily" alone, 0.3 s before the next word, would read at 50 chars/s; the
    # builder keeps it with slower neighbours instead.
    words = [
        Word(text="Extraordinarily", start=0.0, end=0.3),
        Word(text="slow", start=0.3, end=1.0),
        Word(text="words", start=1.0, end=1.8),
    ]
    (cue,) = build_cues(_transcript(words))
    assert not _too_fast(cue, RULES)


def test_unavoidably_fast_speech_is_kept_not_dropped() -> None:
    words = [
        Word(text="internationalization", start=0.0, end=0.2),
        Word(text="x", start=0.2, end=0.3),
    ]
    cues = build_cues(_transcript(words))
    assert [w for c in cues for w in c.words] == words
    assert any(_too_fast(c, RULES) for c in cues)


def test_segments_without_word_timings_share_their_span() -> None:
    segment = TranscriptSegment(start=10.0, end=12.0, text="no word timings here")
    (cue,) = build_cues(Transcript(segments=(segment,)))
    assert cue.lines == ("no word timings here",)
    assert cue.start == 10.0
    assert [w.text for w in cue.words] == ["no", "word", "timings", "here"]


def test_empty_transcript_has_no_cues() -> None:
    assert build_cues(Transcript()) == []


def test_bad_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_duration"):
        CaptionRules(max_duration=0)
    with pytest.raises(ValueError, match="at least 1"):
        CaptionRules(max_lines=0)
    with pytest.raises(ValueError, match="sentence_pause"):
        CaptionRules(sentence_pause=-0.1)
    with pytest.raises(ValueError, match="sentence_pause"):
        CaptionRules(sentence_pause=math.nan)


def test_blank_words_are_skipped_and_inner_whitespace_normalised() -> None:
    words = [
        Word(text="New\nYork", start=0.0, end=0.5),
        Word(text="  ", start=0.5, end=0.6),
        Word(text="City", start=0.6, end=1.0),
    ]
    (cue,) = build_cues(_transcript(words))
    assert cue.lines == ("New York City",)
    assert cue.words == (words[0], words[2])
