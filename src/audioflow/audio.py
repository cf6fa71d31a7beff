"""The in-flight audio records: what the stages pass each other. Never persisted.

:class:`AudioChunk` (decoded audio, from ``Decode``), :class:`SpeechSegment` (detected
speech, from ``DetectSpeech``) and :class:`AudioWindow` (packed speech, what a
``Transcriber`` is given). The persisted job schema is :mod:`audioflow.records`.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["AudioChunk", "AudioWindow", "SpeechSegment"]


class AudioChunk(msgspec.Struct, frozen=True, kw_only=True):
    """A run of float32 mono samples starting at ``start`` seconds. Not persisted."""

    samples: npt.NDArray[np.float32]
    start: float
    sample_rate: int = 16_000

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> float:
        return self.start + self.duration


class SpeechSegment(msgspec.Struct, frozen=True, kw_only=True):
    """A stretch of detected speech, ``start``/``end`` on the original timeline.

    ``samples`` may be a view of the decoded chunk it lies in (read-only use).
    ``start``/``end`` include the detector's padding; ``speech_start``/``speech_end``
    (when set) are where it heard speech begin and end inside them. A transcriber
    window's words are kept inside those bounds (Whisper's alignment tends to start
    the first word where the padding starts).
    """

    start: float
    end: float
    samples: npt.NDArray[np.float32]
    sample_rate: int = 16_000
    speech_start: float | None = None
    speech_end: float | None = None


class AudioWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Packed speech to transcribe: float32 mono samples in [-1, 1].

    ``index`` is the window's position in the job (0, 1, ...), stable across retries,
    so a transcriber or a checkpoint can name it.
    """

    samples: npt.NDArray[np.float32]
    sample_rate: int = 16_000
    index: int = 0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate
