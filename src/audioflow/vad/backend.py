"""The VAD backend protocol and the zero-dependency ``energy`` backend."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["EnergyVad", "VadBackend"]

Frames = npt.NDArray[np.float32]
Probabilities = npt.NDArray[np.float32]


@runtime_checkable
class VadBackend(Protocol):
    """Scores fixed-size frames of 16 kHz mono float32 audio for speech.

    A backend is stateful (noise floor, recurrent state): it sees a stream's frames in
    order, chunk after chunk, and :meth:`reset` starts a new stream.
    """

    @property
    def name(self) -> str:
        """Backend name (``energy``, ``webrtc``, ``silero``)."""
        ...

    @property
    def frame_samples(self) -> int:
        """Samples per frame (the hop; frames do not overlap)."""
        ...

    def probabilities(self, frames: Frames) -> Probabilities:
        """Speech probability (0..1) of each row of ``frames`` (``(n, frame_samples)``)."""
        ...

    def reset(self) -> None:
        """Forget everything about the previous stream."""
        ...


class EnergyVad:
    """Speech where a frame is well above an adaptive noise floor. numpy only.

    The floor follows quiet frames down at once and rises slowly (``rise_db_per_s``),
    never above the current frame's level, so it tracks the background between
    utterances but not speech. A frame's probability is a logistic of its level above
    ``floor + margin_db``; frames below ``min_dbfs`` are never speech.

    Args:
        frame_samples: samples per frame (480 = 30 ms at 16 kHz).
        margin_db: how far above the floor speech sits at probability 0.5.
        rise_db_per_s: how fast the floor may rise.
        min_dbfs: absolute level below which nothing is speech.
    """

    name = "energy"

    def __init__(
        self,
        *,
        frame_samples: int = 480,
        margin_db: float = 9.0,
        rise_db_per_s: float = 1.0,
        min_dbfs: float = -60.0,
        sample_rate: int = 16_000,
    ) -> None:
        self.frame_samples = frame_samples
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self._rise = rise_db_per_s * frame_samples / sample_rate
        self._floor: float | None = None

    def reset(self) -> None:
        """Forget the noise floor."""
        self._floor = None

    def probabilities(self, frames: Frames) -> Probabilities:
        """Logistic of each frame's level above the running noise floor."""
        # Sum of squares per frame without a float64 copy of the audio (float32
        # accumulation over a few hundred samples is plenty for a level in dB).
        power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frames.shape[1]
        level = 10 * np.log10(power + 1e-12)
        if not len(level):
            return np.zeros(0, dtype=np.float32)
        previous = self._floor if self._floor is not None else float(level[0])
        # floor[i] = min(level[i], floor[i-1] + rise): unrolled, the floor is the lowest
        # of every earlier level (and the previous chunk's floor) plus the rise since
        # then, which is one running minimum (no per-frame Python loop).
        ramp = self._rise * np.arange(1, len(level) + 1, dtype=np.float64)
        floor = np.minimum.accumulate(np.minimum(level - ramp, previous)) + ramp
        self._floor = float(floor[-1])
        z = (level - floor - self.margin_db) / 2.0
        probs: Probabilities = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        probs[level < self.min_dbfs] = 0.0
        return probs
