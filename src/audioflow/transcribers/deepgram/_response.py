"""Reading a Deepgram pre-recorded (``/v1/listen``) response into a Transcript.

Only the subset of Deepgram's schema audioflow needs is declared, as msgspec Structs
that ignore unknown fields (Deepgram adds fields often: ``summaries``, ``sentiments``,
``search``...). The shape, from Deepgram's API reference and SDK types::

    {"metadata": {"duration": 12.3, "request_id": ..., ...},
     "results": {
        "channels": [{"detected_language": "en",       # with detect_language
                      "alternatives": [{"transcript": ..., "confidence": ...,
                          "words": [{"word": "hello", "start": 0.1, "end": 0.4,
                                     "confidence": 0.99,
                                     "punctuated_word": "Hello,",  # smart_format/punctuate
                                     "speaker": 0}],             # diarize
                          "paragraphs": {"transcript": ...,      # paragraphs
                              "paragraphs": [{"speaker": 0, "num_words": 9,
                                  "start": ..., "end": ...,
                                  "sentences": [{"text": ..., "start": ..., "end": ...}]}]}}]}],
        "utterances": [{"start": ..., "end": ..., "confidence": ..., "channel": 0,
                        "transcript": ..., "speaker": 0, "id": ...,
                        "words": [...]}]}}                        # utterances
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec

from ..._text import ends_sentence, speaker_label
from ...records import Transcript, TranscriptSegment, Word

__all__ = ["PAUSE", "transcript_from_deepgram"]

#: Seconds of silence between words that end a segment when the response carries
#: neither utterances nor paragraphs.
PAUSE = 0.8


class _Word(msgspec.Struct):
    word: str
    start: float
    end: float
    confidence: float | None = None
    punctuated_word: str | None = None
    speaker: int | None = None


class _Sentence(msgspec.Struct):
    start: float
    end: float
    text: str = ""


class _Paragraph(msgspec.Struct):
    sentences: list[_Sentence] = []
    speaker: int | None = None


class _Paragraphs(msgspec.Struct):
    paragraphs: list[_Paragraph] = []


class _Alternative(msgspec.Struct):
    transcript: str = ""
    words: list[_Word] = []
    paragraphs: _Paragraphs | None = None


class _Channel(msgspec.Struct):
    alternatives: list[_Alternative] = []
    detected_language: str | None = None


class _Utterance(msgspec.Struct):
    start: float
    end: float
    transcript: str = ""
    words: list[_Word] = []
    channel: int = 0
    speaker: int | None = None


class _Results(msgspec.Struct):
    channels: list[_Channel] = []
    utterances: list[_Utterance] | None = None


class _Metadata(msgspec.Struct):
    duration: float | None = None


class _Response(msgspec.Struct):
    results: _Results
    metadata: _Metadata | None = None


class _ErrorBody(msgspec.Struct):
    # Deepgram's error bodies: {"err_code": ..., "err_msg": ..., "request_id": ...}.
    err_code: str | None = None
    err_msg: str | None = None


_DECODER = msgspec.json.Decoder(_Response)
_ERROR_DECODER = msgspec.json.Decoder(_ErrorBody)


def _decode(response: dict[str, Any] | bytes | bytearray | str) -> _Response:
    try:
        if isinstance(response, dict):
            if "results" not in response and "err_msg" in response:
                _raise_error_body(msgspec.convert(response, _ErrorBody))
            return msgspec.convert(response, _Response)
        if isinstance(response, bytes | bytearray | str):
            data = response.encode() if isinstance(response, str) else bytes(response)
            try:
                return _DECODER.decode(data)
            except msgspec.ValidationError:
                # An error body is valid JSON without "results"; say what it said.
                _raise_error_body(_ERROR_DECODER.decode(data))
                raise
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a Deepgram pre-recorded response: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a Deepgram pre-recorded response: invalid JSON ({exc})") from exc
    raise TypeError(
        "from_deepgram() takes the response as a dict, bytes or str, "
        f"not {type(response).__name__}"
    )


def _raise_error_body(body: _ErrorBody) -> None:
    if body.err_msg is not None:
        raise ValueError(
            "not a Deepgram transcript: the response is an error "
            f"({body.err_code}: {body.err_msg})"
        )


def _word(raw: _Word, fallback: int | None, where: str) -> Word:
    if not (math.isfinite(raw.start) and math.isfinite(raw.end)) or raw.end < raw.start:
        raise ValueError(
            f"Deepgram {where}: word {raw.word!r} has bad times {raw.start}..{raw.end}"
        )
    return Word(
        text=raw.punctuated_word or raw.word,
        start=raw.start,
        end=raw.end,
        confidence=raw.confidence,
        speaker=speaker_label(raw.speaker if raw.speaker is not None else fallback),
    )


def _segment(words: Sequence[Word], text: str, speaker: str | None) -> TranscriptSegment:
    return TranscriptSegment(
        start=words[0].start,
        end=max(w.end for w in words),
        text=" ".join(text.split()) or " ".join(w.text for w in words),
        words=tuple(words),
        speaker=speaker,
    )


def _from_utterances(utterances: Sequence[_Utterance]) -> list[TranscriptSegment]:
    segments = []
    for index, utterance in enumerate(utterances):
        # Only channel 0 is read, as for the words (see transcript_from_deepgram).
        if utterance.channel != 0:
            continue
        where = f"utterance {index}"
        words = [_word(w, utterance.speaker, where) for w in utterance.words]
        if words:
            segments.append(
                _segment(words, utterance.transcript, speaker_label(utterance.speaker))
            )
    return segments


def _from_paragraphs(words: Sequence[Word], paragraphs: _Paragraphs) -> list[TranscriptSegment]:
    """One segment per sentence, words assigned to sentences by time.

    Sentences carry text and times but no words, so each word goes to the sentence its
    midpoint falls in (or the last one before it); every word lands in exactly one
    sentence even when the times are a little off.
    """
    sentences = [(s, p.speaker) for p in paragraphs.paragraphs for s in p.sentences]
    groups: list[list[Word]] = [[] for _ in sentences]
    at = 0
    for word in words:
        middle = (word.start + word.end) / 2
        while at + 1 < len(sentences) and middle > sentences[at][0].end:
            at += 1
        groups[at].append(word)
    return [
        _segment(group, sentence.text, speaker_label(speaker))
        for group, (sentence, speaker) in zip(groups, sentences, strict=True)
        if group
    ]


def _from_words(words: Sequence[Word], pause: float) -> list[TranscriptSegment]:
    """Segments cut at sentence ends, pauses of ``pause`` seconds and speaker changes."""
    segments: list[TranscriptSegment] = []
    current: list[Word] = []
    for word in words:
        if current:
            last = current[-1]
            if (
                ends_sentence(last.text)
                or word.start - last.end >= pause
                or word.speaker != last.speaker
            ):
                segments.append(_segment(current, "", current[0].speaker))
                current = []
        current.append(word)
    if current:
        segments.append(_segment(current, "", current[0].speaker))
    return segments


def transcript_from_deepgram(
    response: dict[str, Any] | bytes | bytearray | str, *, pause: float = PAUSE
) -> Transcript:
    """Turn a Deepgram pre-recorded response into a :class:`~audioflow.Transcript`.

    See :meth:`audioflow.Transcript.from_deepgram`, which calls this.
    """
    decoded = _decode(response)
    channels = decoded.results.channels
    if not channels or not channels[0].alternatives:
        raise ValueError(
            "not a Deepgram pre-recorded response: results.channels[0].alternatives is empty"
        )
    channel = channels[0]
    alternative = channel.alternatives[0]
    words = [_word(w, None, "channel 0") for w in alternative.words]
    utterances = decoded.results.utterances
    if utterances:
        segments = _from_utterances(utterances)
    elif words and alternative.paragraphs and alternative.paragraphs.paragraphs:
        paragraphs = alternative.paragraphs
        if any(p.sentences for p in paragraphs.paragraphs):
            segments = _from_paragraphs(words, paragraphs)
        else:
            segments = _from_words(words, pause)
    else:
        segments = _from_words(words, pause)
    metadata = decoded.metadata
    return Transcript(
        segments=tuple(segments),
        language=channel.detected_language,
        duration=metadata.duration if metadata else None,
    )
