"""SRT and WebVTT parse back in standard parsers; JSON round-trips; TXT and Markdown."""

from __future__ import annotations

import html
import math

import msgspec
import pysubs2
import pytest
import webvtt
from hypothesis import given
from hypothesis import strategies as st

from audioflow.errors import RenderError
from audioflow.records import Transcript, TranscriptSegment, Word
from audioflow.render import (
    FORMATS,
    CaptionRules,
    build_cues,
    highlights,
    parse_json,
    render,
    render_json,
    render_markdown,
    render_srt,
    render_txt,
    render_vtt,
)
from audioflow.render._timestamps import milliseconds

# SubRip has no escaping, and parsers read <i>-style tags and {\an8}-style overrides
# as markup, so SRT text is drawn without <, >, { and }. WebVTT escapes, so its
# alphabet has the characters that need it.
SRT_ALPHABET = "abcdefghijklmnopqrstuvwxyzÄÖÜéñ0123456789.,?!'\"-&;:()"
VTT_ALPHABET = SRT_ALPHABET + "<>&-"


@st.composite
def transcripts(draw: st.DrawFn, alphabet: str) -> Transcript:
    segments = []
    t = draw(st.floats(0.0, 4000.0))  # hours in the timestamps too
    for _ in range(draw(st.integers(0, 6))):
        speaker = draw(st.sampled_from([None, "Speaker 0", "Speaker 1", "Dr. <Who> & co"]))
        words = []
        for _ in range(draw(st.integers(1, 15))):
            text = draw(st.text(alphabet=alphabet, min_size=1, max_size=14))
            t += draw(st.floats(0.0, 1.5))
            duration = draw(st.floats(0.001, 1.0))
            words.append(Word(text=text, start=t, end=t + duration, speaker=speaker))
            t += duration
        segments.append(
            TranscriptSegment(
                start=words[0].start,
                end=words[-1].end,
                text=" ".join(w.text for w in words),
                words=tuple(words),
                speaker=speaker,
            )
        )
    return Transcript(segments=tuple(segments), language="en", duration=t + 1.0)


@given(transcripts(SRT_ALPHABET))
def test_srt_parses_back_in_pysubs2(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    parsed = pysubs2.SSAFile.from_string(render_srt(cues), format_="srt")
    assert len(parsed) == len(cues)
    for event, cue in zip(parsed, cues, strict=True):
        assert event.start == milliseconds(cue.start)
        assert event.end == milliseconds(cue.end)
        assert event.plaintext == "\n".join(cue.lines)


@given(transcripts(VTT_ALPHABET))
def test_vtt_parses_back_in_webvtt_py(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    parsed = webvtt.from_string(render_vtt(cues))
    assert len(parsed.captions) == len(cues)
    for caption, cue in zip(parsed.captions, cues, strict=True):
        assert caption.start_time.in_milliseconds() == milliseconds(cue.start)
        assert caption.end_time.in_milliseconds() == milliseconds(cue.end)
        # webvtt-py strips the tags but leaves character references as written.
        assert html.unescape(caption.text) == "\n".join(cue.lines)
        voice = caption.voice
        assert (html.unescape(voice) if voice else None) == cue.speaker


@given(transcripts(VTT_ALPHABET))
def test_highlighted_words_parse_back_one_cue_per_spoken_word(transcript: Transcript) -> None:
    cues = build_cues(transcript)
    vtt = webvtt.from_string(render_vtt(cues, highlight_words=True))
    srt = pysubs2.SSAFile.from_string(
        render_srt(cues, highlight_words=True).replace("<", "").replace(">", ""), format_="srt"
    )
    expected = [(cue, step) for cue in cues for step in highlights(cue)]
    assert len(vtt.captions) == len(srt) == len(expected)
    last_end = -1
    for caption, event, (cue, step) in zip(vtt.captions, srt, expected, strict=True):
        start, end = milliseconds(step.start), milliseconds(step.end)
        assert caption.start_time.in_milliseconds() == event.start == start
        assert caption.end_time.in_milliseconds() == event.end == end
        # Inside its cue, in time order, never overlapping the word before.
        assert milliseconds(cue.start) <= start < end <= milliseconds(cue.end)
        assert start >= last_end
        last_end = end
        # The cue's own lines, with exactly one word marked as spoken.
        assert html.unescape(caption.text) == "\n".join(cue.lines)
        assert sum(spoken for line in step.lines for _, spoken in line) == 1
        spoken = [word for line in step.lines for word, is_it in line if is_it]
        assert f"<u>{html.escape(spoken[0], quote=False)}</u>" in caption.raw_text
    # Every cue's spoken words come in its word order.
    for cue in cues:
        flags = [[is_it for line in step.lines for _, is_it in line] for step in highlights(cue)]
        order = [f.index(True) for f in flags]
        assert order == sorted(set(order))


def test_highlighted_words_in_both_formats() -> None:
    words = [
        Word(text=t, start=i * 0.4, end=i * 0.4 + 0.3)
        for i, t in enumerate("Hello <there> & welcome to the show.".split())
    ]
    transcript = Transcript(
        segments=(TranscriptSegment(start=0, end=2.7, text="", words=tuple(words)),),
        duration=4.0,
    )
    rules = CaptionRules(highlight_words=True, max_chars_per_line=16)
    out = render(transcript, ("srt", "vtt"), rules)
    assert out["srt"].split("\n\n")[:2] == [
        "1\n00:00:00,000 --> 00:00:00,400\n<u>Hello</u> <there>",
        "2\n00:00:00,400 --> 00:00:00,800\nHello <u><there></u>",
    ]
    assert out["vtt"].split("\n\n")[3] == (
        "00:00:00.800 --> 00:00:01.200\n<u>&amp;</u> welcome\nto the show."
    )
    # The last word stays until its cue ends (its end plus the linger, inside the media).
    assert (
        out["vtt"]
        .rstrip()
        .endswith("00:00:02.400 --> 00:00:03.300\n&amp; welcome\nto the <u>show.</u>")
    )
    # Without the option, one block per cue, as before.
    plain = CaptionRules(max_chars_per_line=16)
    srt = render(transcript, ("srt",), plain)["srt"]
    assert srt.count("-->") == len(build_cues(transcript, plain)) == 2


def test_vtt_escapes_and_tags_voices() -> None:
    transcript = Transcript(
        segments=(
            TranscriptSegment(
                start=1.0,
                end=2.0,
                text="a <b> & c --> d",
                speaker="Tom & <Jerry>",
                words=tuple(
                    Word(text=t, start=1.0 + i * 0.2, end=1.15 + i * 0.2, speaker="Tom & <Jerry>")
                    for i, t in enumerate("a <b> & c --> d".split())
                ),
            ),
        )
    )
    assert render_vtt(build_cues(transcript)) == (
        "WEBVTT\n"
        "\n"
        "00:00:01.000 --> 00:00:02.750\n"
        "<v Tom &amp; &lt;Jerry&gt;>a &lt;b&gt; &amp; c --&gt; d\n"
    )


def test_srt_layout() -> None:
    words = (
        Word(text="Hello", start=3661.0, end=3661.4),
        Word(text="world.", start=3661.5, end=3662.0),
    )
    transcript = Transcript(
        segments=(TranscriptSegment(start=3661.0, end=3662.0, text="Hello world.", words=words),)
    )
    assert render_srt(build_cues(transcript)) == "1\n01:01:01,000 --> 01:01:02,600\nHello world.\n"


@given(transcripts(VTT_ALPHABET))
def test_json_round_trips(transcript: Transcript) -> None:
    text = render_json(transcript)
    assert parse_json(text) == transcript
    assert msgspec.json.decode(text, type=Transcript) == transcript


def test_json_round_trips_every_field() -> None:
    transcript = Transcript(
        segments=(
            TranscriptSegment(
                start=0.1,
                end=0.30000000000000004,
                text="Grüße, 世界",
                words=(
                    Word(text="Grüße,", start=0.1, end=0.2, confidence=0.93, speaker="Speaker 0"),
                    Word(text="世界", start=0.2, end=0.30000000000000004, confidence=None),
                ),
                speaker="Speaker 0",
                language="de",
            ),
        ),
        language="de",
        duration=12.5,
    )
    assert parse_json(render_json(transcript)) == transcript


def _known() -> Transcript:
    """Two speakers; the second segment changes speaker half-way through its words."""
    s0 = "Speaker 0"
    return Transcript(
        segments=(
            TranscriptSegment(
                start=0.5,
                end=2.0,
                text=" Welcome to the *show*. ",
                speaker=s0,
                words=(
                    Word(text="Welcome", start=0.5, end=0.9, speaker=s0),
                    Word(text="to", start=0.9, end=1.0, speaker=s0),
                    Word(text="the", start=1.0, end=1.2, speaker=s0),
                    Word(text="*show*.", start=1.2, end=2.0, speaker=s0),
                ),
            ),
            TranscriptSegment(
                start=3.0,
                end=65.5,
                text="Thanks. Glad to be here.",
                words=(
                    Word(text="Thanks.", start=3.0, end=3.5, speaker=s0),
                    Word(text="Glad", start=64.0, end=64.4, speaker="1"),
                    Word(text="to", start=64.4, end=64.6, speaker="1"),
                    Word(text="be", start=64.6, end=64.8, speaker="1"),
                    Word(text="here.", start=64.8, end=65.5, speaker="1"),
                ),
            ),
            TranscriptSegment(start=3700.0, end=3702.0, text="No speaker here."),
        ),
        language="en",
        duration=3725.2,
    )


def test_txt_lines() -> None:
    assert render_txt(_known()) == (
        "[00:00:00] Speaker 0: Welcome to the *show*.\n"
        "[00:00:03] Speaker 0: Thanks.\n"
        "[00:01:04] Speaker 1: Glad to be here.\n"
        "[01:01:40] No speaker here.\n"
    )


def test_markdown_document() -> None:
    assert render_markdown(_known()) == (
        "# Transcript\n"
        "\n"
        "Language: en · Duration: 01:02:05\n"
        "\n"
        "**[00:00:00] Speaker 0:** Welcome to the \\*show\\*. Thanks.\n"
        "\n"
        "**[00:01:04] Speaker 1:** Glad to be here.\n"
        "\n"
        "**[01:01:40]** No speaker here.\n"
    )


def test_markdown_without_speakers_breaks_paragraphs_at_pauses() -> None:
    segments = tuple(
        TranscriptSegment(start=start, end=start + 1.0, text=text)
        for start, text in [(0.0, "One."), (1.5, "Two."), (5.0, "Three.")]
    )
    out = render_markdown(Transcript(segments=segments), title="Notes")
    assert out == "# Notes\n\n**[00:00:00]** One. Two.\n\n**[00:00:05]** Three.\n"


def test_empty_transcript_renders_everywhere() -> None:
    out = render(Transcript())
    assert out["srt"] == ""
    assert out["vtt"] == "WEBVTT\n"
    assert out["txt"] == ""
    assert out["md"] == "# Transcript\n\n_No speech._\n"
    assert parse_json(out["json"]) == Transcript()


def test_render_returns_the_formats_asked_in_order() -> None:
    transcript = _known()
    out = render(transcript, formats=("TXT", "srt", "txt"))
    assert list(out) == ["txt", "srt"]
    assert out["txt"] == render_txt(transcript)
    assert out["srt"] == render_srt(build_cues(transcript))
    assert list(render(transcript)) == list(FORMATS)
    assert list(render(transcript, formats="vtt")) == ["vtt"]


def test_render_uses_the_rules() -> None:
    narrow = render(_known(), formats=["srt"], rules=CaptionRules(max_chars_per_line=10))
    assert narrow["srt"] == render_srt(build_cues(_known(), CaptionRules(max_chars_per_line=10)))
    assert narrow["srt"] != render(_known(), formats=["srt"])["srt"]


def test_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="docx"):
        render(_known(), formats=("srt", "docx"))


def test_failures_inside_are_render_errors() -> None:
    bad = Transcript(
        segments=(
            TranscriptSegment(
                start=0.0, end=1.0, text="x", words=(Word(text="x", start=math.nan, end=1.0),)
            ),
        )
    )
    with pytest.raises(RenderError, match="srt") as info:
        render(bad, formats=("srt",))
    assert info.value.stage == "render"
    assert isinstance(info.value.__cause__, ValueError)


def test_render_rejects_a_non_transcript() -> None:
    with pytest.raises(TypeError):
        render({"segments": []})  # type: ignore[arg-type]
