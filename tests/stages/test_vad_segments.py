"""VAD post-processing: hypothesis properties of SegmentBuilder / postprocess."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from audioflow.vad import SegmentBuilder, SegmentRules, Span, postprocess

HOP = 0.03
EPS = 1e-9


@st.composite
def prob_tracks(draw: st.DrawFn) -> list[float]:
    """Runs of high / low / in-between probabilities, like a backend's output."""
    track: list[float] = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        level = draw(st.sampled_from([0.0, 0.1, 0.4, 0.6, 0.9, 1.0]))
        track += [level] * draw(st.integers(min_value=1, max_value=120))
    return track


rules_strategy = st.builds(
    SegmentRules,
    threshold=st.sampled_from([0.3, 0.5, 0.7]),
    min_speech=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
    min_silence=st.sampled_from([0.03, 0.1, 0.3, 0.6]),
    padding=st.sampled_from([0.0, 0.06, 0.2, 0.4]),
    max_segment=st.sampled_from([None, 2.0, 3.0, 10.0]),
)


def _energy(track: list[float], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(track))


@given(prob_tracks(), rules_strategy, st.integers(0, 2**16))
def test_segments_are_ordered_disjoint_and_inside_the_stream(
    track: list[float], rules: SegmentRules, seed: int
) -> None:
    segments = postprocess(track, HOP, rules, _energy(track, seed))
    total = len(track) * HOP
    for start, end in segments:
        assert -EPS <= start < end <= total + EPS
    for (_, end), (start, _) in itertools.pairwise(segments):
        assert end <= start + EPS


@given(prob_tracks(), rules_strategy, st.integers(0, 2**16))
def test_segments_respect_max_segment(track: list[float], rules: SegmentRules, seed: int) -> None:
    for start, end in postprocess(track, HOP, rules, _energy(track, seed)):
        if rules.max_segment is not None:
            assert end - start <= rules.max_segment + EPS


@given(prob_tracks(), rules_strategy, st.integers(0, 2**16))
def test_every_long_enough_speech_run_is_covered(
    track: list[float], rules: SegmentRules, seed: int
) -> None:
    segments = postprocess(track, HOP, rules, _energy(track, seed))
    need = round(rules.min_speech / HOP)
    i = 0
    while i < len(track):
        if track[i] < rules.threshold:
            i += 1
            continue
        j = i
        while j < len(track) and track[j] >= rules.threshold:
            j += 1
        if j - i >= need:
            for frame in range(i, j):
                t = (frame + 0.5) * HOP
                assert any(s <= t <= e for s, e in segments), f"frame {frame} not covered"
        i = j


@given(prob_tracks(), rules_strategy, st.integers(0, 2**16))
def test_every_segment_holds_speech(track: list[float], rules: SegmentRules, seed: int) -> None:
    p = np.asarray(track)
    for start, end in postprocess(track, HOP, rules, _energy(track, seed)):
        inside = p[int(start / HOP + 0.5) : int(end / HOP + 0.5)]
        # A split piece may begin in a dip, but every segment holds speech-level frames.
        assert np.any(inside >= rules.low)


@given(prob_tracks(), rules_strategy, st.integers(0, 2**16), st.data())
def test_streaming_in_any_pieces_equals_one_call(
    track: list[float], rules: SegmentRules, seed: int, data: st.DataObject
) -> None:
    energy = _energy(track, seed)
    whole = SegmentBuilder(rules, HOP)
    expected = whole.feed(track, energy) + whole.finish()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(track)), max_size=6)))
    builder = SegmentBuilder(rules, HOP)
    got: list[Span] = []
    floor = 0  # the stage drops audio before pending_from: no later span may reach it
    for lo, hi in zip([0, *cuts], [*cuts, len(track)], strict=True):
        new = builder.feed(track[lo:hi], energy[lo:hi])
        assert all(span.start >= floor and span.end <= builder.frames for span in new)
        got += new
        floor = builder.pending_from
    new = builder.finish()
    assert all(span.start >= floor for span in new)
    got += new
    assert got == expected
    for span in expected:
        assert span.start >= 0
        # The detected speech lies inside the padded span, and padding only where the
        # segment did not begin or end at a split.
        assert span.start <= span.speech_start < span.speech_end <= span.end


def test_short_blips_are_dropped_and_short_gaps_bridged() -> None:
    rules = SegmentRules(min_speech=0.25, min_silence=0.3, padding=0.0, max_segment=None)
    blip = [0.0] * 30 + [1.0] * 5 + [0.0] * 30  # 0.15 s of "speech"
    assert postprocess(blip, HOP, rules) == []
    gap = [1.0] * 20 + [0.0] * 5 + [1.0] * 20 + [0.0] * 30  # 0.15 s gap inside speech
    assert postprocess(gap, HOP, rules) == [(0.0, pytest.approx(45 * HOP))]


def test_padding_meets_in_the_middle() -> None:
    rules = SegmentRules(min_speech=0.0, min_silence=0.09, padding=0.3, max_segment=None)
    track = [0.0] * 20 + [1.0] * 10 + [0.0] * 6 + [1.0] * 10 + [0.0] * 20
    (a0, a1), (b0, b1) = postprocess(track, HOP, rules)
    assert a0 == pytest.approx(10 * HOP)  # 0.3 s of padding before the first
    assert a1 == b0 == pytest.approx(33 * HOP)  # the middle of the 6-frame gap
    assert b1 == pytest.approx(56 * HOP)


def test_long_speech_is_split_at_the_quietest_point() -> None:
    rules = SegmentRules(min_speech=0.0, padding=0.0, max_segment=3.0)
    track = [1.0] * 300  # 9 s of speech
    energy = np.ones(300)
    energy[70] = 0.001  # the only quiet frame in the first window's second half
    segments = postprocess(track, HOP, rules, energy)
    assert segments[0] == (0.0, pytest.approx(70 * HOP))
    assert all(e - s <= 3.0 + EPS for s, e in segments)
    assert segments[-1][1] == pytest.approx(9.0)
    # The pieces of a split touch: no audio is lost between them.
    for (_, end), (start, _) in itertools.pairwise(segments):
        assert end == pytest.approx(start)


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="max_segment"):
        SegmentRules(padding=1.0, max_segment=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        SegmentRules(padding=-0.1)


def test_frames_between_the_thresholds_do_not_end_a_pause() -> None:
    # Silero's rule: a pause starts below neg_threshold (0.35 here) and only a frame at
    # threshold (0.5) or above ends it; 0.4 neither starts speech nor breaks the pause.
    rules = SegmentRules(min_speech=0.0, min_silence=0.15, padding=0.0, max_segment=None)
    track = [1.0] * 20 + [0.1] * 3 + [0.4] * 4 + [0.1] * 2 + [1.0] * 20 + [0.0] * 10
    assert postprocess(track, HOP, rules) == [
        (0.0, pytest.approx(20 * HOP)),
        (pytest.approx(29 * HOP), pytest.approx(49 * HOP)),
    ]


def test_a_pause_ends_speech_only_when_longer_than_min_silence() -> None:
    rules = SegmentRules(min_speech=0.0, min_silence=0.15, padding=0.0, max_segment=None)
    exact = [1.0] * 20 + [0.0] * 5 + [1.0] * 20  # 5 frames = min_silence: bridged
    assert postprocess(exact, HOP, rules) == [(0.0, pytest.approx(45 * HOP))]
    longer = [1.0] * 20 + [0.0] * 6 + [1.0] * 20
    assert len(postprocess(longer, HOP, rules)) == 2


def test_padding_rounds_up_to_whole_frames() -> None:
    rules = SegmentRules(min_speech=0.0, min_silence=0.3, padding=0.1, max_segment=None)
    track = [0.0] * 20 + [1.0] * 10 + [0.0] * 20
    [(start, end)] = postprocess(track, HOP, rules)
    assert start == pytest.approx(16 * HOP)  # 0.1 s is 3.3 frames: 4 frames of padding
    assert end == pytest.approx(34 * HOP)


def test_padding_in_samples_is_exact_and_paddings_meet_at_the_samples_midpoint() -> None:
    # Silero's frames are 512 samples; 0.1 s of padding is 1,600 samples (3.125 frames).
    rules = SegmentRules(min_speech=0.0, min_silence=0.3, padding=0.1, max_segment=None)
    hop = 512 / 16_000
    builder = SegmentBuilder(rules, hop, frame_samples=512)
    track = [0.0] * 20 + [1.0] * 10 + [0.0] * 5 + [1.0] * 10 + [0.0] * 5
    track += [0.0] * 20 + [1.0] * 10 + [0.0] * 20
    spans = builder.feed(track) + builder.finish()
    # Speech at frames 20-30 and 35-45 is one run (the 5-frame pause is below
    # min_silence); the next at 70-80. Padding 1,600 samples at each real end.
    assert spans == [
        Span(20 * 512 - 1600, 45 * 512 + 1600, 20 * 512, 45 * 512),
        Span(70 * 512 - 1600, 80 * 512 + 1600, 70 * 512, 80 * 512),
    ]
    # Paddings that would overlap meet in the middle of the pause, to the sample: a
    # 15-frame (7,680-sample) pause with 0.4 s (6,400 samples) each side.
    rules = SegmentRules(min_speech=0.0, min_silence=0.3, padding=0.4, max_segment=None)
    builder = SegmentBuilder(rules, hop, frame_samples=512)
    track = [0.0] * 20 + [1.0] * 10 + [0.0] * 15 + [1.0] * 10 + [0.0] * 30
    first, second = builder.feed(track) + builder.finish()
    assert first.end == second.start == 30 * 512 + 15 * 512 // 2
    assert first.start == 20 * 512 - 6400 and second.end == 55 * 512 + 6400


_HALF_FRAME_MEETING = [0.0] * 10 + [1.0] * 10 + [0.0] * 3 + [1.0] * 10 + [0.0] * 10


@given(track=prob_tracks(), rules=rules_strategy)
@example(  # two paddings meeting in a 3-frame pause: at frame 21.5, which frames round up
    track=_HALF_FRAME_MEETING,
    rules=SegmentRules(min_speech=0.0, min_silence=0.03, padding=0.06, max_segment=None),
)
def test_in_samples_a_whole_number_of_frames_of_padding_gives_the_frame_spans(
    track: list[float], rules: SegmentRules
) -> None:
    # 0.06 s at a 0.03 s hop is 2 frames: both modes pad alike and find the same
    # speech; only where two paddings meet in a pause of an odd number of frames does
    # the builder in frames round the middle up to a whole frame, half a frame later.
    if rules.padding not in (0.0, 0.06):
        rules = SegmentRules(
            threshold=rules.threshold,
            min_speech=rules.min_speech,
            min_silence=rules.min_silence,
            padding=0.06,
            max_segment=rules.max_segment,
        )
    frames = SegmentBuilder(rules, HOP)
    samples = SegmentBuilder(rules, HOP, frame_samples=480)
    energy = _energy(track, 3)
    in_frames = [Span(*(v * 480 for v in s)) for s in frames.feed(track, energy)]
    in_frames += [Span(*(v * 480 for v in s)) for s in frames.finish()]
    in_samples = samples.feed(track, energy) + samples.finish()
    assert [(s.speech_start, s.speech_end) for s in in_samples] == [
        (s.speech_start, s.speech_end) for s in in_frames
    ]
    meetings = {a.end for a, b in itertools.pairwise(in_samples) if a.end == b.start}
    for f, s in zip(in_frames, in_samples, strict=True):
        for in_f, in_s in ((f.start, s.start), (f.end, s.end)):
            # A meeting point may be half a frame (240 samples) later in frames.
            assert in_f - in_s in ((0, 240) if in_s in meetings else (0,))


def test_silero_segments_match_faster_whispers_on_recorded_speech() -> None:
    # The same model, the same probabilities, the same rules: the same speech. Where two
    # paddings meet, faster-whisper splits the pause to the sample and the builder to
    # the frame: boundaries agree within half a frame (256 samples).
    pytest.importorskip("onnxruntime")
    fw_vad = pytest.importorskip("faster_whisper.vad")
    from audioflow.vad.silero import SileroVad
    from support.speech import decode_16k

    audio = decode_16k(Path(__file__).resolve().parents[2] / "examples" / "sample.flac")
    expected = fw_vad.get_speech_timestamps(
        audio,
        fw_vad.VadOptions(
            min_silence_duration_ms=160, speech_pad_ms=384, max_speech_duration_s=30
        ),
    )
    frames = np.pad(audio, (0, -len(audio) % 512)).reshape(-1, 512)
    probs = SileroVad().probabilities(frames)
    rules = SegmentRules(min_speech=0.0, min_silence=0.16, padding=0.384, max_segment=30.0)
    got = postprocess(probs, 512 / 16_000, rules)
    assert len(expected) >= 3  # the sample has several pauses
    assert len(got) == len(expected)
    for (start, end), t in zip(got, expected, strict=True):
        assert abs(start * 16_000 - t["start"]) <= 256
        assert abs(min(end * 16_000, len(audio)) - t["end"]) <= 256
