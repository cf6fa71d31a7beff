"""What :class:`~audioflow.testing.FakeDeepgramServer` "hears": PyAV decode + energy.

The fake must not be a canned response: it decodes the uploaded bytes with PyAV (so a
client that uploads broken FLAC gets Deepgram's 400, and ``metadata.duration`` is the
duration it really received), finds where the audio is not silent (20 ms frames whose
RMS is above a threshold) and lays deterministic words over those stretches, one word
per ``word_step`` seconds. Every non-silent stretch is one utterance; with ``diarize``
speakers alternate per utterance. So a test knows where each word must land.

The response follows Deepgram's pre-recorded schema (API reference; deepgram-sdk 7's
``ListenV1Response``): ``metadata`` (``transaction_key``, ``request_id``, ``sha256``,
``created``, ``duration``, ``channels``, ``models``, ``model_info``) and
``results.channels[0].alternatives[0]`` (``transcript``, ``confidence``, ``words``
with ``word``/``start``/``end``/``confidence``, ``punctuated_word`` with
``punctuate``/``smart_format``, ``speaker``/``speaker_confidence`` with ``diarize``,
``paragraphs`` with ``paragraphs``), ``results.utterances`` with ``utterances`` and
``results.summary`` (+ ``metadata.summary_info``) with ``summarize``.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import av
import numpy as np
import numpy.typing as npt

__all__ = ["Heard", "build_response", "hear"]

_FRAME = 0.02  # seconds per energy frame
_MIN_STRETCH = 0.1  # shorter non-silent blips are not words
_MODEL_UUID = "1abfe86b-e047-4eed-858a-35e5625b41ee"


@dataclass(frozen=True)
class Heard:
    """The decoded upload: its duration and the non-silent stretches (seconds)."""

    duration: float
    stretches: tuple[tuple[float, float], ...]


def _decode_mono(data: bytes) -> tuple[npt.NDArray[np.float32], int]:
    """All audio of ``data`` as float32 mono at its own sample rate."""
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        resampler: Any = None
        parts: list[npt.NDArray[np.float32]] = []
        rate = 0
        for frame in container.decode(stream):
            if resampler is None:
                rate = frame.sample_rate
                resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        if resampler is not None:
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    if not parts:
        raise ValueError("no audio frames")
    return np.concatenate(parts), rate


def hear(data: bytes, *, silence_threshold: float = 0.01) -> Heard:
    """Decode ``data`` and find its non-silent stretches.

    Raises:
        ValueError: the bytes are not decodable audio (PyAV's own errors are folded
            into this, as the server answers them all the same way).
    """
    try:
        samples, rate = _decode_mono(data)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt or unsupported data ({exc})") from exc
    duration = len(samples) / rate
    hop = max(1, round(rate * _FRAME))
    count = len(samples) // hop
    if count == 0:
        return Heard(duration=duration, stretches=())
    frames = samples[: count * hop].reshape(count, hop).astype(np.float64)
    loud = np.sqrt(np.mean(frames * frames, axis=1)) > silence_threshold
    stretches: list[tuple[float, float]] = []
    start: int | None = None
    for index, is_loud in enumerate([*loud.tolist(), False]):
        if is_loud and start is None:
            start = index
        elif not is_loud and start is not None:
            a, b = start * hop / rate, index * hop / rate
            if b - a >= _MIN_STRETCH:
                stretches.append((round(a, 4), round(min(b, duration), 4)))
            start = None
    return Heard(duration=duration, stretches=tuple(stretches))


def _flag(query: Mapping[str, Sequence[str]], name: str) -> bool:
    values = query.get(name)
    return values is not None and len(values) > 0 and values[-1].lower() == "true"


def _word_times(
    stretches: Sequence[tuple[float, float]], step: float
) -> list[list[tuple[float, float]]]:
    """Per stretch, the (start, end) of its words: one per ``step`` seconds, at least one."""
    out = []
    for a, b in stretches:
        n = max(1, int((b - a) / step + 1e-9))
        out.append(
            [
                (round(a + k * step, 4), round(min(b, a + k * step + 0.8 * step), 4))
                for k in range(n)
            ]
        )
    return out


def build_response(
    heard: Heard,
    body: bytes,
    query: Mapping[str, Sequence[str]],
    *,
    request_number: int,
    script: Sequence[str] | None = None,
    word_step: float = 0.5,
) -> dict[str, Any]:
    """The Deepgram-shaped JSON for ``heard``, shaped by the request's ``query``.

    Words are ``script[i % len(script)]`` or ``word0``, ``word1``... in order.
    """
    punctuate = _flag(query, "punctuate") or _flag(query, "smart_format")
    punctuate = punctuate or _flag(query, "paragraphs")  # Deepgram: paragraphs implies it
    diarize = _flag(query, "diarize") or bool(query.get("diarize_model"))
    model = (query.get("model") or ["base"])[-1]
    utterance_words: list[list[dict[str, Any]]] = []
    index = 0
    for turn, times in enumerate(_word_times(heard.stretches, word_step)):
        words = []
        for position, (start, end) in enumerate(times):
            text = script[index % len(script)] if script else f"word{index}"
            word: dict[str, Any] = {
                "word": text.lower(),
                "start": start,
                "end": end,
                "confidence": round(0.99 - 0.01 * (index % 5), 4),
            }
            if punctuate:
                shown = text[:1].upper() + text[1:] if position == 0 else text
                word["punctuated_word"] = shown + ("." if position == len(times) - 1 else "")
            if diarize:
                word["speaker"] = turn % 2
                word["speaker_confidence"] = 0.9
            words.append(word)
            index += 1
        utterance_words.append(words)
    all_words = [w for words in utterance_words for w in words]

    def text_of(words: Sequence[dict[str, Any]]) -> str:
        return " ".join(str(w.get("punctuated_word", w["word"])) for w in words)

    alternative: dict[str, Any] = {
        "transcript": text_of(all_words),
        "confidence": 0.98 if all_words else 0.0,
        "words": all_words,
    }
    if _flag(query, "paragraphs"):
        paragraphs = []
        for words in utterance_words:
            paragraph: dict[str, Any] = {
                "sentences": [
                    {"text": text_of(words), "start": words[0]["start"], "end": words[-1]["end"]}
                ],
                "num_words": len(words),
                "start": words[0]["start"],
                "end": words[-1]["end"],
            }
            if diarize:
                paragraph["speaker"] = words[0]["speaker"]
            paragraphs.append(paragraph)
        alternative["paragraphs"] = {
            "transcript": "".join(f"\n{text_of(w)}\n" for w in utterance_words),
            "paragraphs": paragraphs,
        }
    results: dict[str, Any] = {"channels": [{"alternatives": [alternative]}]}
    if _flag(query, "utterances"):
        results["utterances"] = [
            {
                "start": words[0]["start"],
                "end": words[-1]["end"],
                "confidence": 0.98,
                "channel": 0,
                "transcript": text_of(words),
                "words": words,
                **({"speaker": words[0]["speaker"]} if diarize else {}),
                "id": str(uuid.UUID(int=request_number * 1_000 + turn)),
            }
            for turn, words in enumerate(utterance_words)
        ]
    metadata: dict[str, Any] = {
        "transaction_key": "deprecated",
        "request_id": str(uuid.UUID(int=request_number)),
        "sha256": hashlib.sha256(body).hexdigest(),
        "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "duration": round(heard.duration, 6),
        "channels": 1,
        "models": [_MODEL_UUID],
        "model_info": {
            _MODEL_UUID: {"name": f"general-{model}", "version": "fake", "arch": model}
        },
    }
    summarize = (query.get("summarize") or ["false"])[-1].lower()
    if summarize not in ("", "false"):
        results["summary"] = {"result": "success", "short": text_of(all_words[:8])}
        metadata["summary_info"] = {
            "model_uuid": _MODEL_UUID,
            "input_tokens": len(all_words),
            "output_tokens": min(8, len(all_words)),
        }
    return {"metadata": metadata, "results": results}
