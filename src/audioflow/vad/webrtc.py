"""The ``webrtc`` backend: Google's WebRTC VAD (``webrtcvad-wheels``, extra ``vad``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from .backend import Frames, Probabilities

__all__ = ["WebRtcVad"]


class WebRtcVad:
    """WebRTC's GMM voice detector on 30 ms frames; probabilities are 0 or 1.

    Args:
        mode: aggressiveness 0 (keeps most) .. 3 (drops most non-speech).

    Raises:
        MissingDependencyError: ``webrtcvad-wheels`` is not installed.
    """

    name = "webrtc"
    frame_samples = 480  # 30 ms at 16 kHz: one of the three sizes WebRTC accepts

    def __init__(self, *, mode: int = 2) -> None:
        try:
            import webrtcvad
        except ImportError as exc:
            raise MissingDependencyError("webrtcvad-wheels", "vad") from exc
        if mode not in (0, 1, 2, 3):
            raise ValueError("mode must be 0, 1, 2 or 3")
        self.mode = mode
        self._module: Any = webrtcvad
        self._vad: Any = webrtcvad.Vad(mode)

    def reset(self) -> None:
        """A fresh detector (WebRTC adapts its noise model over the stream)."""
        self._vad = self._module.Vad(self.mode)

    def probabilities(self, frames: Frames) -> Probabilities:
        """1.0 for frames WebRTC calls speech, else 0.0."""
        pcm = (np.clip(frames, -1.0, 1.0) * 32767).astype("<i2")
        is_speech = self._vad.is_speech
        return np.fromiter(
            (1.0 if is_speech(row.tobytes(), 16_000) else 0.0 for row in pcm),
            dtype=np.float32,
            count=len(pcm),
        )
