"""Synthetic "speech" for the Deepgram tests: tone bursts between digital silence.

Bursts start and end on 20 ms boundaries, so FakeDeepgramServer's energy frames see
exactly the spans we made, and its words land at known times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audioflow.transcribers import AudioWindow

SR = 16_000


def bursts(duration: float, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """``duration`` seconds of silence with a 300 Hz tone (amplitude 0.3) in ``spans``."""
    samples = np.zeros(round(duration * SR), dtype=np.float32)
    for start, end in spans:
        a, b = round(start * SR), round(end * SR)
        t = np.arange(b - a) / SR
        samples[a:b] = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return samples


def window(index: int, duration: float, spans: Sequence[tuple[float, float]]) -> AudioWindow:
    return AudioWindow(samples=bursts(duration, spans), index=index)


def expected_word_times(
    spans: Sequence[tuple[float, float]], step: float = 0.5
) -> list[list[tuple[float, float]]]:
    """The fake's documented rule: per span, one word per ``step`` s (at least one)."""
    out = []
    for a, b in spans:
        n = max(1, int((b - a) / step + 1e-9))
        out.append([(a + k * step, min(b, a + k * step + 0.8 * step)) for k in range(n)])
    return out
