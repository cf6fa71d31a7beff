"""``Transcript.from_deepgram`` on Deepgram-shaped responses."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pysubs2
import pytest
import webvtt
from deepgram_shapes import deepgram_response

from audioflow.records import Transcript
from audioflow.render import FORMATS, build_cues, parse_json, render, render_vtt

DATA = Path(__file__).parent.parent / "data" / "deepgram"
RICH = DATA / "interview_nova3_diarize_utterances_paragraphs.json"
PLAIN = DATA / "interview_nova3_plain.json"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _channel_words(response: dict[str, Any]) -> list[str]:
    words = response["results"]["channels"][0]["alternatives"][0]["words"]
    return [w.get("punctuated_word", w["word"]) for w in words]


def _our_words(transcript: Transcript) -> list[str]:
    return [w.text for s in transcript.segments for w in s.words]


@pytest.mark.parametrize("path", [RICH, PLAIN], ids=["rich", "plain"])
def test_dict_bytes_and_str_give_the_same_transcript(path: Path) -> None:
    raw = path.read_bytes()
    from_bytes = Transcript.from_deepgram(raw)
    assert Transcript.from_deepgram(raw.decode()) == from_bytes
    assert Transcript.from_deepgram(json.loads(raw)) == from_bytes
    assert Transcript.from_deepgram(bytearray(raw)) == from_bytes


@pytest.mark.parametrize("path", [RICH, PLAIN], ids=["rich", "plain"])
def test_no_word_is_lost_or_reordered(path: Path) -> None:
    response = _load(path)
    transcript = Transcript.from_deepgram(response)
    assert _our_words(transcript) == _channel_words(response)
    assert transcript.duration == response["metadata"]["duration"]


def test_utterances_become_segments_with_speaker_labels() -> None:
    response = _load(RICH)
    transcript = Transcript.from_deepgram(response)
    utterances = response["results"]["utterances"]
    assert len(transcript.segments) == len(utterances)
    for segment, utterance in zip(transcript.segments, utterances, strict=True):
        assert segment.text == utterance["transcript"]
        assert segment.speaker == f"Speaker {utterance['speaker']}"
        assert segment.start == utterance["start"]
        assert segment.end == utterance["end"]
        assert [w.speaker for w in segment.words] == [
            f"Speaker {w['speaker']}" for w in utterance["words"]
        ]
        assert [w.confidence for w in segment.words] == [
            w["confidence"] for w in utterance["words"]
        ]
    assert transcript.language == "en"
    assert {s.speaker for s in transcript.segments} == {"Speaker 0", "Speaker 1"}


def test_paragraph_sentences_become_segments_without_utterances() -> None:
    response = _load(RICH)
    del response["results"]["utterances"]
    transcript = Transcript.from_deepgram(response)
    paragraphs = response["results"]["channels"][0]["alternatives"][0]["paragraphs"]["paragraphs"]
    sentences = [(s, p["speaker"]) for p in paragraphs for s in p["sentences"]]
    assert len(transcript.segments) == len(sentences)
    for segment, (sentence, speaker) in zip(transcript.segments, sentences, strict=True):
        assert segment.text == sentence["text"]
        # Each sentence got exactly its own words.
        assert " ".join(w.text for w in segment.words) == sentence["text"]
        assert segment.speaker == f"Speaker {speaker}"
    assert _our_words(transcript) == _channel_words(response)


def test_words_alone_split_at_sentence_ends_pauses_and_speakers() -> None:
    response = deepgram_response(utterances=False, paragraphs=False)
    transcript = Transcript.from_deepgram(response, pause=0.8)
    assert _our_words(transcript) == _channel_words(response)
    for segment, following in zip(transcript.segments, transcript.segments[1:], strict=False):
        last, first = segment.words[-1], following.words[0]
        assert (
            re.search(r"[.?!]$", last.text)
            or first.start - last.end >= 0.8
            or first.speaker != last.speaker
        )
        # ...and nowhere else.
        for a, b in zip(segment.words, segment.words[1:], strict=False):
            assert not re.search(r"[.?!]$", a.text)
            assert b.start - a.end < 0.8
            assert a.speaker == b.speaker


def test_without_diarization_speakers_are_unknown() -> None:
    for kwargs in ({"utterances": True}, {"utterances": False}, {"paragraphs": True}):
        response = deepgram_response(diarize=False, **kwargs)
        transcript = Transcript.from_deepgram(response)
        assert transcript.segments
        assert all(s.speaker is None for s in transcript.segments)
        assert all(w.speaker is None for s in transcript.segments for w in s.words)
        assert "<v " not in render_vtt(build_cues(transcript))


def test_without_smart_format_words_are_plain() -> None:
    response = _load(PLAIN)
    transcript = Transcript.from_deepgram(response)
    words = _our_words(transcript)
    assert words == [
        w["word"] for w in response["results"]["channels"][0]["alternatives"][0]["words"]
    ]
    assert all(re.fullmatch(r"[a-z0-9'-]+", w) for w in words)
    assert transcript.language is None
    # With no punctuation, only pauses cut segments.
    assert 1 < len(transcript.segments) < len(words)


def test_diarized_response_renders_voice_tags() -> None:
    vtt = render_vtt(build_cues(Transcript.from_deepgram(_load(RICH))))
    assert "<v Speaker 0>Welcome back to the show." in vtt
    assert "<v Speaker 1>" in vtt


def test_unknown_fields_are_ignored() -> None:
    response = _load(RICH)
    extended = copy.deepcopy(response)
    extended["results"]["summary"] = {"short": "x", "result": "success"}
    extended["results"]["channels"][0]["search"] = [{"query": "q", "hits": []}]
    extended["results"]["channels"][0]["alternatives"][0]["words"][0]["sentiment"] = "neutral"
    extended["metadata"]["new_field_from_the_future"] = [1, 2, 3]
    assert Transcript.from_deepgram(extended) == Transcript.from_deepgram(response)


def test_silence_gives_an_empty_transcript() -> None:
    response = deepgram_response(dialogue=[], utterances=True)
    transcript = Transcript.from_deepgram(response)
    assert transcript.segments == ()
    assert transcript.duration == 0.0


def test_only_channel_zero_utterances_are_read() -> None:
    response = deepgram_response(dialogue=[(0, "Left channel only.")])
    other = copy.deepcopy(response["results"]["utterances"][0])
    other["channel"] = 1
    other["transcript"] = "Right channel."
    response["results"]["utterances"].append(other)
    transcript = Transcript.from_deepgram(response)
    assert [s.text for s in transcript.segments] == ["Left channel only."]


def test_word_speaker_wins_over_the_utterance_speaker() -> None:
    # Deepgram documents an utterance's speaker as a prediction over its words; the
    # words' own speakers are kept.
    response = deepgram_response(dialogue=[(0, "Hello there.")])
    utterance = response["results"]["utterances"][0]
    utterance["words"][1]["speaker"] = 3
    transcript = Transcript.from_deepgram(response)
    assert [w.speaker for w in transcript.segments[0].words] == ["Speaker 0", "Speaker 3"]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"{not json", "invalid JSON"),
        ("[]", "Expected `object`, got `array`"),
        ({"metadata": {}}, "missing required field `results`"),
        ({"results": {"channels": []}}, "alternatives is empty"),
        ({"results": {"channels": [{"alternatives": []}]}}, "alternatives is empty"),
        (
            {
                "results": {
                    "channels": [{"alternatives": [{"words": [{"word": "a", "start": "0"}]}]}]
                }
            },
            r"\$\.results\.channels\[0\]\.alternatives\[0\]\.words\[0\]\.start",
        ),
        (
            {
                "results": {
                    "channels": [
                        {"alternatives": [{"words": [{"word": "a", "start": 2.0, "end": 1.0}]}]}
                    ]
                }
            },
            "bad times",
        ),
        (
            b'{"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "x"}',
            "INVALID_AUTH: Invalid credentials",
        ),
        ({"err_code": "Bad Request", "err_msg": "Bad audio."}, "Bad audio"),
    ],
)
def test_malformed_input_is_a_value_error(response: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Transcript.from_deepgram(response)


def test_other_types_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="dict, bytes or str"):
        Transcript.from_deepgram(42)  # type: ignore[arg-type]


def test_times_are_finite() -> None:
    transcript = Transcript.from_deepgram(_load(RICH))
    assert all(
        math.isfinite(w.start) and w.start <= w.end for s in transcript.segments for w in s.words
    )


def test_a_deepgram_response_renders_in_every_format() -> None:
    transcript = Transcript.from_deepgram(RICH.read_bytes())
    out = render(transcript)
    assert list(out) == list(FORMATS)
    assert parse_json(out["json"]) == transcript
    srt_events = pysubs2.SSAFile.from_string(out["srt"], format_="srt")
    vtt_captions = webvtt.from_string(out["vtt"]).captions
    assert len(srt_events) == len(vtt_captions) > 0
    assert " ".join(e.plaintext.replace("\n", " ") for e in srt_events).split() == _our_words(
        transcript
    )
    # One Markdown paragraph per speaker turn: the turns alternate in this dialogue.
    turns = [line for line in out["md"].splitlines() if line.startswith("**[")]
    assert len(turns) == 8
    assert [t.split("** ")[0][-10:] for t in turns[:2]] == ["Speaker 0:", "Speaker 1:"]
    assert out["txt"].splitlines()[0] == (
        "[00:00:00] Speaker 0: Welcome back to the show. Today we are talking about"
        " subtitles, which sounds boring, but stay with me, because it turns out to be"
        " surprisingly hard."
    )
