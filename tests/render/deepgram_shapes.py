"""Build Deepgram-shaped pre-recorded responses for tests.

The shape follows Deepgram's API reference and its SDK's response types
(``ListenV1Response``): ``metadata`` + ``results.channels[].alternatives[]`` with
``words`` (``word``, ``start``, ``end``, ``confidence``, and ``punctuated_word`` with
smart_format, ``speaker``/``speaker_confidence`` with diarize), ``paragraphs`` (with
paragraphs=true) and ``results.utterances`` (with utterances=true). Times are made up
deterministically from a seed; they are realistic (about 150 words a minute, longer
pauses at punctuation and turns) but are not a recording of real audio.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

# An original two-person conversation, about 450 words.
DIALOGUE: list[tuple[int, str]] = [
    (
        0,
        "Welcome back to the show. Today we are talking about subtitles, which sounds "
        "boring, but stay with me, because it turns out to be surprisingly hard.",
    ),
    (
        1,
        "Thanks for having me. I have spent the last three years building caption "
        "pipelines for a streaming company, so I have opinions.",
    ),
    (0, "Good, opinions are why you are here. Let's start simple: what makes a caption good?"),
    (
        1,
        "Honestly, the viewer should never notice it. It appears when the words are "
        "spoken, it stays long enough to read, and it never covers more than two "
        "lines of the picture.",
    ),
    (0, "Two lines, okay."),
    (
        1,
        "Two lines, forty-two characters each, is the usual broadcast rule. Go longer "
        "and the eye has to travel across the whole screen, and people simply stop "
        "reading.",
    ),
    (0, "And how fast can people read?"),
    (
        1,
        "It depends on the audience, but twenty characters a second is a safe ceiling "
        "for adults. For children you go much slower. The hard part is that speakers "
        "do not care about your ceiling. Someone gets excited, talks at three hundred "
        "words a minute, and now every cue is too fast.",
    ),
    (0, "So what do you do then?"),
    (
        1,
        "You borrow time. A cue can stay on screen a little after the last word, as "
        "long as it does not run into the next one. And you break at natural places: "
        "the end of a sentence, a comma, a breath. Breaking in the middle of a phrase, "
        "like between an article and its noun, makes the viewer stumble.",
    ),
    (0, "That sounds like something a machine could learn."),
    (
        1,
        "Partly. Speech recognition gives you every word with a start and an end time, "
        "which is wonderful, but the naive approach just packs a fixed number of words "
        "into each cue. Eight words, then the next eight. It is quick to write and it "
        "ignores everything we just said.",
    ),
    (0, "Because eight long words can be sixty characters."),
    (
        1,
        "Exactly, and eight short words spoken slowly can leave a cue on screen for ten "
        "seconds. Extraordinarily, internationalization, telecommunications: those are "
        "long words, and they show up in real talks more often than you would think.",
    ),
    (0, "And speakers? We have two people talking right now."),
    (
        1,
        "A speaker change should always start a new cue, and in WebVTT you can tag the "
        "voice so a player can show who is talking. In SubRip there is no such thing, "
        "so people put names in brackets or use a dash.",
    ),
    (
        0,
        "Last question. If you could give one piece of advice to someone building this "
        "from scratch, what would it be?",
    ),
    (
        1,
        "Test it with real responses, and count the rule breaks. Do not trust your eyes "
        "on the first three cues. The problems are always in minute forty.",
    ),
    (0, "Minute forty. I love that. Thank you so much for coming on."),
    (1, "My pleasure, thanks."),
]

_STRIP = re.compile(r"^[^\w]+|[^\w]+$")


def _timed_words(dialogue: list[tuple[int, str]], seed: int, rate: float) -> list[dict[str, Any]]:
    """Word dicts with start/end/confidence/speaker/punctuated_word (filtered later)."""
    rng = random.Random(seed)
    words: list[dict[str, Any]] = []
    t = 0.42
    for turn_index, (speaker, text) in enumerate(dialogue):
        if turn_index:
            t += rng.uniform(0.5, 1.4)  # the gap at a turn
        for token in text.split():
            plain = _STRIP.sub("", token).lower()
            length = max(len(plain), 1)
            duration = rate * (0.12 + 0.055 * length) * rng.uniform(0.8, 1.25)
            words.append(
                {
                    "word": plain,
                    "start": round(t, 4),
                    "end": round(t + duration, 4),
                    "confidence": round(rng.uniform(0.82, 0.999), 6),
                    "punctuated_word": token,
                    "speaker": speaker,
                    "speaker_confidence": round(rng.uniform(0.4, 0.95), 6),
                }
            )
            t += duration
            if token[-1] in ".?!":
                t += rng.uniform(0.35, 0.9)
            elif token[-1] in ",:;":
                t += rng.uniform(0.12, 0.35)
            else:
                t += rng.uniform(0.0, 0.06)
    return words


def _word_view(word: dict[str, Any], smart_format: bool, diarize: bool) -> dict[str, Any]:
    out = {k: word[k] for k in ("word", "start", "end", "confidence")}
    if smart_format:
        out["punctuated_word"] = word["punctuated_word"]
    if diarize:
        out["speaker"] = word["speaker"]
        out["speaker_confidence"] = word["speaker_confidence"]
    return out


def _utterances(words: list[dict[str, Any]], diarize: bool, seed: int) -> list[dict[str, Any]]:
    """Deepgram splits utterances at pauses (utt_split, 0.8 s by default)."""
    rng = random.Random(seed + 1)
    groups: list[list[dict[str, Any]]] = []
    for word in words:
        if groups:
            last = groups[-1][-1]
            if word["start"] - last["end"] < 0.8 and word.get("speaker") == last.get("speaker"):
                groups[-1].append(word)
                continue
        groups.append([word])
    out = []
    for group in groups:
        text_key = "punctuated_word" if "punctuated_word" in group[0] else "word"
        utterance: dict[str, Any] = {
            "start": group[0]["start"],
            "end": group[-1]["end"],
            "confidence": round(sum(w["confidence"] for w in group) / len(group), 6),
            "channel": 0,
            "transcript": " ".join(w[text_key] for w in group),
            "words": group,
        }
        if diarize:
            utterance["speaker"] = group[0]["speaker"]
        utterance["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        out.append(utterance)
    return out


def _paragraphs(words: list[dict[str, Any]]) -> dict[str, Any]:
    paragraphs: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []

    def flush() -> None:
        if not current:
            return
        sentences: list[dict[str, Any]] = []
        sentence: list[dict[str, Any]] = []
        for w in current:
            sentence.append(w)
            if w["punctuated_word"][-1] in ".?!":
                sentences.append(sentence)
                sentence = []
        if sentence:
            sentences.append(sentence)
        paragraphs.append(
            {
                "sentences": [
                    {
                        "text": " ".join(w["punctuated_word"] for w in s),
                        "start": s[0]["start"],
                        "end": s[-1]["end"],
                    }
                    for s in sentences
                ],
                "speaker": current[0]["speaker"],
                "num_words": len(current),
                "start": current[0]["start"],
                "end": current[-1]["end"],
            }
        )

    for w in words:
        if current and w["speaker"] != current[-1]["speaker"]:
            flush()
            current = []
        current.append(w)
    flush()
    transcript = "".join(
        f"\nSpeaker {p['speaker']}: " + " ".join(s["text"] for s in p["sentences"])
        for p in paragraphs
    )
    return {"transcript": transcript, "paragraphs": paragraphs}


def deepgram_response(
    *,
    dialogue: list[tuple[int, str]] = DIALOGUE,
    smart_format: bool = True,
    diarize: bool = True,
    utterances: bool = True,
    paragraphs: bool = False,
    detect_language: bool = False,
    seed: int = 7,
    rate: float = 1.0,
) -> dict[str, Any]:
    """A pre-recorded response for ``dialogue`` with the given features switched on.

    ``rate`` scales word durations (below 1 speaks faster).
    """
    full = _timed_words(dialogue, seed, rate)
    words = [_word_view(w, smart_format, diarize) for w in full]
    text_key = "punctuated_word" if smart_format else "word"
    alternative: dict[str, Any] = {
        "transcript": " ".join(w[text_key] for w in words),
        "confidence": 0.9913,
        "words": words,
    }
    if paragraphs:
        alternative["paragraphs"] = _paragraphs(full)
    channel: dict[str, Any] = {"alternatives": [alternative]}
    if detect_language:
        channel["detected_language"] = "en"
        channel["language_confidence"] = 0.99
    duration = round(full[-1]["end"] + 1.3, 6) if full else 0.0
    results: dict[str, Any] = {"channels": [channel]}
    if utterances:
        results["utterances"] = _utterances(words, diarize, seed)
    model = "3b3aabe4-608a-46ac-9585-7960a25daf1a"
    return {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": str(uuid.UUID(int=seed)),
            "sha256": "0" * 64,
            "created": "2026-11-29T10:00:00.000Z",
            "duration": duration,
            "channels": 1,
            "models": [model],
            "model_info": {model: {"name": "general-nova-3", "version": "2025", "arch": "nova-3"}},
        },
        "results": results,
    }
