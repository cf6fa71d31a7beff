"""TimelineMap: packed-audio times back to the original timeline (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from audioflow.records import Word
from audioflow.timeline import TimelineMap

durations = st.floats(min_value=0.05, max_value=30.0, allow_nan=False)
gaps = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


@st.composite
def timelines(draw: st.DrawFn) -> tuple[TimelineMap, list[tuple[float, float]]]:
    """Random ordered, disjoint original spans, packed with a random filler gap."""
    n = draw(st.integers(min_value=1, max_value=8))
    t = draw(st.floats(min_value=0.0, max_value=100.0))
    spans = []
    for _ in range(n):
        t += draw(gaps)
        d = draw(durations)
        spans.append((t, t + d))
        t += d
    packed_gap = draw(st.sampled_from([0.0, 0.0, 0.25, 1.0]))
    return TimelineMap.pack(spans, gap=packed_gap), spans


@given(timelines(), st.lists(st.floats(min_value=-5.0, max_value=300.0), min_size=2))
def test_mapping_is_monotone(
    data: tuple[TimelineMap, list[tuple[float, float]]], times: list[float]
) -> None:
    timeline, _ = data
    mapped = [timeline.to_original(t) for t in sorted(times)]
    assert mapped == sorted(mapped)


@given(timelines(), st.data())
def test_times_inside_a_piece_map_by_that_pieces_offset(
    data: tuple[TimelineMap, list[tuple[float, float]]], draw: st.DataObject
) -> None:
    timeline, spans = data
    i = draw.draw(st.integers(min_value=0, max_value=len(spans) - 1))
    piece = timeline.pieces[i]
    # Half-open: the instant of a cut (with no filler) belongs to the next piece.
    offset = draw.draw(st.floats(min_value=0.0, max_value=piece.duration, exclude_max=True))
    original = timeline.to_original(piece.packed_start + offset)
    assert original == pytest.approx(spans[i][0] + offset, abs=1e-9)
    assert spans[i][0] - 1e-9 <= original <= spans[i][1] + 1e-9


@given(timelines(), st.floats(min_value=0.0, max_value=300.0), durations)
def test_a_mapped_span_lies_inside_one_original_segment(
    data: tuple[TimelineMap, list[tuple[float, float]]], start: float, length: float
) -> None:
    timeline, spans = data
    a, b = timeline.map_span(start, start + length)
    assert a <= b
    assert any(s - 1e-9 <= a and b <= e + 1e-9 for s, e in spans)


@given(timelines(), st.data())
def test_a_word_straddling_a_cut_is_placed_by_its_own_offset(
    data: tuple[TimelineMap, list[tuple[float, float]]], draw: st.DataObject
) -> None:
    timeline, spans = data
    assume(len(spans) >= 2)
    i = draw.draw(st.integers(min_value=1, max_value=len(spans) - 1))
    before, after = timeline.pieces[i - 1], timeline.pieces[i]
    # A word that starts a little before the cut and mostly lies after it.
    head = draw.draw(st.floats(min_value=0.0, max_value=min(0.2, before.duration)))
    tail = draw.draw(st.floats(min_value=0.0, max_value=after.duration))
    assume(tail > head + (after.packed_start - before.packed_end))  # midpoint in the later piece
    word = Word(text="w", start=before.packed_end - head, end=after.packed_start + tail)
    mapped = timeline.map_word(word)
    # Placed in the later segment, at the word's own offset into it; not at the window's
    # (first piece's) offset, and not spanning the removed silence.
    assert mapped.start == pytest.approx(spans[i][0], abs=1e-9)
    assert mapped.end == pytest.approx(spans[i][0] + tail, abs=1e-9)
    assert mapped.text == "w"


def test_words_in_a_later_segment_are_not_shifted_by_the_window_offset() -> None:
    # faster-whisper #230/#1119: words of the second speech chunk were placed with the
    # first chunk's offset. Here the second segment starts at 30 s in the original.
    timeline = TimelineMap.pack([(10.0, 12.0), (30.0, 31.5)])
    word = Word(text="later", start=2.5, end=2.9)
    mapped = timeline.map_word(word)
    assert (mapped.start, mapped.end) == pytest.approx((30.5, 30.9))
    assert timeline.packed_duration == pytest.approx(3.5)


def test_gaps_and_outside_times_clamp_to_the_nearest_edge() -> None:
    timeline = TimelineMap.pack([(10.0, 12.0), (30.0, 31.0)], gap=1.0)
    assert timeline.to_original(-1.0) == 10.0
    assert timeline.to_original(2.2) == 12.0  # in the filler, nearer the first piece
    assert timeline.to_original(2.8) == 30.0  # in the filler, nearer the second piece
    assert timeline.to_original(99.0) == 31.0


def test_pack_rejects_overlapping_or_unordered_spans() -> None:
    with pytest.raises(ValueError, match="ordered and disjoint"):
        TimelineMap.pack([(5.0, 6.0), (5.5, 7.0)])
    with pytest.raises(ValueError, match="ordered and disjoint"):
        TimelineMap.pack([(5.0, 4.0)])


def test_words_the_transcriber_starts_in_the_padding_start_where_speech_was_heard() -> None:
    # Whisper's alignment tends to start a window's first word where the padding
    # starts, 0.4 s before the speech: the detector's bounds hold it in.
    timeline = TimelineMap.pack([(10.0, 13.0), (20.0, 22.0)], speech=[(10.4, 12.6), (None, None)])
    first = timeline.map_word(Word(text="That", start=0.0, end=0.8))
    assert (first.start, first.end) == pytest.approx((10.4, 10.8))
    last = timeline.map_word(Word(text="on", start=2.5, end=2.95))
    assert (last.start, last.end) == pytest.approx((12.5, 12.6))
    # A word wholly in the trailing padding collapses onto the speech's end.
    stray = timeline.map_word(Word(text="um", start=2.7, end=2.9))
    assert (stray.start, stray.end) == pytest.approx((12.6, 12.6))
    # A piece without bounds keeps its whole span.
    assert timeline.map_span(3.0, 3.2) == pytest.approx((20.0, 20.2))


@given(timelines(), st.data())
def test_mapped_spans_stay_inside_the_detected_speech(
    data: tuple[TimelineMap, list[tuple[float, float]]], draw: st.DataObject
) -> None:
    plain, spans = data
    speech = []
    for a, b in spans:
        lo = draw.draw(st.floats(min_value=a, max_value=b))
        hi = draw.draw(st.floats(min_value=lo, max_value=b))
        speech.append((lo, hi))
    gap = plain.pieces[1].packed_start - plain.pieces[0].packed_end if len(spans) > 1 else 0.0
    timeline = TimelineMap.pack(spans, gap=gap, speech=speech)
    start = draw.draw(st.floats(min_value=-1.0, max_value=timeline.packed_duration + 1))
    end = draw.draw(st.floats(min_value=start, max_value=timeline.packed_duration + 2))
    a, b = timeline.map_span(start, end)
    lo, hi = speech[timeline.piece_index((start + end) / 2)]
    assert lo <= a <= b <= hi
    # The same place as without bounds, moved only as far as the bounds require.
    wa, wb = plain.map_span(start, end)
    assert (a, b) == pytest.approx((min(max(wa, lo), hi), min(max(wb, lo), hi)))


def test_pack_rejects_speech_outside_its_span() -> None:
    with pytest.raises(ValueError, match="inside its span"):
        TimelineMap.pack([(5.0, 6.0)], speech=[(4.9, 5.5)])
    with pytest.raises(ValueError, match="inside its span"):
        TimelineMap.pack([(5.0, 6.0)], speech=[(5.6, 5.5)])
    with pytest.raises(ValueError, match="one"):
        TimelineMap.pack([(5.0, 6.0)], speech=[])
