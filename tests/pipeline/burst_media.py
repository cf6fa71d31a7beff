"""Media for pipeline tests: tone bursts at known times, written as real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audioflow.testing.media import AudioTrack, write_media

RATE = 16_000


def bursts(base: int, count: int = 10, spacing: float = 2.3) -> list[tuple[int, float, float]]:
    """(frequency, start, end) of ``count`` bursts; frequencies unique per ``base``."""
    return [(base + 40 * i, 1.0 + spacing * i, 1.0 + spacing * i + 0.4) for i in range(count)]


def write_bursts(path: Path, plan: list[tuple[int, float, float]], seconds: float) -> Path:
    audio = np.zeros(round(seconds * RATE), dtype=np.float32)
    for freq, start, end in plan:
        t = np.arange(round((end - start) * RATE)) / RATE
        a = round(start * RATE)
        audio[a : a + len(t)] = 0.5 * np.sin(2 * np.pi * freq * t)
    return write_media(path, AudioTrack(samples=audio, sample_rate=RATE))
