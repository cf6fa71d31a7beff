"""One text vocabulary: the transcribers, Deepgram's responses and the captions agree on
what ends a sentence and how a speaker is named."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from audioflow import Transcript
from audioflow._text import ends_sentence, speaker_label
from audioflow.transcribers import AudioWindow

ENDS = [
    "end.",
    "why?",
    "stop!",
    "and so…",
    'said."',
    "(done.)",
    "終わり。",
    "本当\uff1f",
    "はい\uff01",
]
NOT_ENDS = ["word", "Mr", "3,5", "clause,", "colon:"]


@pytest.mark.parametrize("word", ENDS)
def test_sentence_ends_in_every_script(word: str) -> None:
    assert ends_sentence(word)


@pytest.mark.parametrize("word", NOT_ENDS)
def test_other_words_do_not_end_a_sentence(word: str) -> None:
    assert not ends_sentence(word)


def test_speaker_labels() -> None:
    assert speaker_label(0) == speaker_label("0") == "Speaker 0"
    assert speaker_label("Speaker 2") == "Speaker 2"
    assert speaker_label("  Ann   Lee ") == "Ann Lee"
    assert speaker_label("   ") is None
    assert speaker_label(None) is None


def _words(texts: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "word": t,
            "punctuated_word": t,
            "start": i * 0.5,
            "end": i * 0.5 + 0.4,
            "confidence": 0.9,
        }
        for i, t in enumerate(texts)
    ]


@pytest.mark.parametrize("end", ["…", "。"])
def test_deepgram_words_split_where_the_captions_see_a_sentence_end(end: str) -> None:
    texts = ["one", "two" + end, "three", "four."]
    response = {"results": {"channels": [{"alternatives": [{"words": _words(texts)}]}]}}
    transcript = Transcript.from_deepgram(response, pause=10.0)
    assert [s.text for s in transcript.segments] == [f"one two{end}", "three four."]


@pytest.mark.parametrize("end", ["…", "。", '."'])
def test_whisper_windows_split_where_the_captions_see_a_sentence_end(end: str) -> None:
    from audioflow.transcribers.whisper import _to_window_transcript

    texts = ["one", "two" + end, "three", "four."]
    words = [
        SimpleNamespace(word=" " + t, start=i * 0.5, end=i * 0.5 + 0.4, probability=0.9)
        for i, t in enumerate(texts)
    ]
    window = AudioWindow(samples=np.zeros(16_000 * 3, dtype=np.float32))
    result = _to_window_transcript(window, 0.0, [SimpleNamespace(words=words)], "en")
    assert [s.text for s in result.segments] == [f"one two{end}", "three four."]
