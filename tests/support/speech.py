"""Helpers for the Whisper tests and bench: decode a fixture, cut windows, score WER.

Decoding is done here with PyAV directly (the Decode stage is built elsewhere) so the
transcriber tests depend on nothing but the transcriber.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

SPEECH_DIR = Path(__file__).resolve().parent.parent / "data" / "speech"
RATE = 16_000


def decode_16k(path: Path) -> npt.NDArray[np.float32]:
    """The whole file as 16 kHz mono float32 samples."""
    out: list[npt.NDArray[np.float32]] = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(out).astype(np.float32)


def reference(name: str) -> str:
    return (SPEECH_DIR / f"{name}.txt").read_text().strip()


def split_at_quiet(
    samples: npt.NDArray[np.float32], max_seconds: float = 30.0, search: float = 8.0
) -> list[npt.NDArray[np.float32]]:
    """Cut ``samples`` into pieces of at most ``max_seconds``, each cut at the quietest
    20 ms frame of the last ``search`` seconds before the limit."""
    limit, frame = int(max_seconds * RATE), RATE // 50
    pieces: list[npt.NDArray[np.float32]] = []
    start = 0
    while len(samples) - start > limit:
        lo = start + limit - int(search * RATE)
        frames = samples[lo : start + limit][: (limit - (lo - start)) // frame * frame]
        energy = (frames.reshape(-1, frame) ** 2).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        pieces.append(samples[start:cut])
        start = cut
    pieces.append(samples[start:])
    return pieces


def normalise(text: str) -> list[str]:
    """Lower case, apostrophes dropped (it's = its), other punctuation as spaces."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^\w\s]", " ", text).split()


def wer(ref: str, hyp: str) -> float:
    """Word error rate: word-level Levenshtein distance / reference length."""
    r, h = normalise(ref), normalise(hyp)
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, row[0] = row[0], i
        for j, hw in enumerate(h, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
    return row[len(h)] / max(len(r), 1)
