"""Transcribers: the protocol and the built-in backends.

The backends load on first use, so ``from audioflow.transcribers import
WhisperTranscriber`` imports neither faster-whisper nor the Deepgram code until asked;
constructing one without its extra installed raises ``MissingDependencyError`` naming
the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import AudioWindow, Transcriber, WindowCallback, WindowTranscript

if TYPE_CHECKING:
    from .deepgram import DeepgramTranscriber
    from .whisper import WhisperTranscriber

__all__ = [
    "AudioWindow",
    "DeepgramTranscriber",
    "Transcriber",
    "WhisperTranscriber",
    "WindowCallback",
    "WindowTranscript",
]


def __getattr__(name: str) -> Any:
    if name == "DeepgramTranscriber":
        from .deepgram import DeepgramTranscriber

        return DeepgramTranscriber
    if name == "WhisperTranscriber":
        from .whisper import WhisperTranscriber

        return WhisperTranscriber
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
