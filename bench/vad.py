"""Benchmark the VAD backends on a 10-minute labelled corpus synthesised here.

Run: ``python bench/vad.py`` (needs ``espeak-ng`` on PATH: ``apt-get install espeak-ng``).
The corpus is espeak-ng utterances (several voices, speeds and levels) with known
start/end, separated by 0.5-4 s gaps, over a constant noise bed (white + brown, about
25 dB below the speech). Labels are each utterance's first/last sample above -40 dBFS.

Per backend it prints frame accuracy, precision and recall (10 ms frames) and speed
(x realtime, the whole DetectSpeech stage over 30 s chunks). Segments are scored
without padding (``padding=0``: padding is a policy for the transcriber, not detection);
the accuracy with the default 0.2 s padding is printed too. Targets: silero accuracy
>= 0.97 at >= 400x realtime; energy >= 0.93 at >= 10,000x; webrtc >= 0.95. Asserts
nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

from audioflow.records import AudioChunk
from audioflow.stages.base import run_stages
from audioflow.stages.decode import Decode
from audioflow.stages.vad import DetectSpeech

RATE = 16_000
SECONDS = 600.0
RESOLUTION = 0.01
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to bring the quarterly report to the meeting tomorrow morning.",
    "It is going to rain this afternoon, so take an umbrella.",
    "Our flight was delayed by almost three hours because of the storm.",
    "She sells sea shells by the sea shore.",
    "Can you tell me how to get to the nearest train station?",
    "The committee will announce its decision at the end of the month.",
    "I would like a cup of coffee with milk and no sugar, thank you.",
    "Speech recognition works best when the recording is clean.",
    "Turn left at the second traffic light and keep going straight.",
    "Every morning he runs five kilometres along the river.",
    "The museum is closed on Mondays and public holidays.",
    "We need to finish the installation before the customer arrives.",
    "Numbers like forty two and one thousand nine hundred are spoken too.",
    "Good evening, and welcome to the late night news.",
    "The children played in the garden until it got dark.",
]
VOICES = ["en-us", "en", "en-us+f3", "en+m3", "en-us+f2"]


def _espeak(text: str, voice: str, speed: int, out: Path) -> None:
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text],
        check=True,
        capture_output=True,
    )


async def _decode(path: Path) -> np.ndarray:
    chunks = await run_stages([path], Decode())
    return np.concatenate([c.samples for c in chunks])


def build_corpus(workdir: Path, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The signal and the (start, end) seconds of every utterance in it."""
    rng = np.random.default_rng(seed)
    utterances = []
    for i, text in enumerate(SENTENCES * 2):
        path = workdir / f"u{i}.wav"
        _espeak(text, VOICES[i % len(VOICES)], int(rng.integers(140, 190)), path)
        x = anyio.run(_decode, path)
        loud = np.flatnonzero(np.abs(x) > 0.01)
        utterances.append(x[loud[0] : loud[-1] + 1] / np.abs(x).max())
    total = round(SECONDS * RATE)
    signal = np.zeros(total, dtype=np.float64)
    labels = []
    t = rng.uniform(0.5, 2.0)
    while True:
        u = utterances[int(rng.integers(len(utterances)))]
        start = round(t * RATE)
        if start + len(u) >= total:
            break
        gain = 0.5 * 10 ** (rng.uniform(-6, 3) / 20)
        signal[start : start + len(u)] += gain * u
        labels.append((start / RATE, (start + len(u)) / RATE))
        t = (start + len(u)) / RATE + rng.uniform(0.5, 4.0)
    white = rng.standard_normal(total) * 0.004
    brown = np.cumsum(rng.standard_normal(total))
    brown -= np.convolve(brown, np.ones(4001) / 4001, mode="same")  # keep it bounded
    brown *= 0.004 / brown.std()
    return (signal + white + brown).astype(np.float32), labels


def frames_of(spans: list[tuple[float, float]], n: int) -> np.ndarray:
    """Boolean speech mask at RESOLUTION from (start, end) seconds."""
    mask = np.zeros(n, dtype=bool)
    for start, end in spans:
        mask[round(start / RESOLUTION) : round(end / RESOLUTION)] = True
    return mask


def score(truth: np.ndarray, got: np.ndarray) -> tuple[float, float, float]:
    tp = np.count_nonzero(truth & got)
    precision = tp / max(1, np.count_nonzero(got))
    recall = tp / max(1, np.count_nonzero(truth))
    return float(np.mean(truth == got)), precision, recall


def run_backend(backend: str, signal: np.ndarray, padding: float) -> tuple[list, float]:
    step = 30 * RATE
    chunks = [
        AudioChunk(samples=signal[i : i + step], start=i / RATE)
        for i in range(0, len(signal), step)
    ]
    stage = DetectSpeech(backend, padding=padding)
    start = time.perf_counter()
    segments = anyio.run(run_stages, chunks, stage)
    return [(s.start, s.end) for s in segments], time.perf_counter() - start


def main() -> None:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found (apt-get install espeak-ng); cannot build the corpus")
        sys.exit(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        signal, labels = build_corpus(Path(tmp))
    n = int(SECONDS / RESOLUTION)
    truth = frames_of(labels, n)
    print(
        f"corpus: {SECONDS / 60:.0f} min, {len(labels)} utterances, "
        f"{truth.mean():.0%} speech, built in {time.perf_counter() - t0:.1f} s"
    )
    targets = {"energy": (0.93, 10_000), "webrtc": (0.95, None), "silero": (0.97, 400)}
    for backend, (min_accuracy, min_speed) in targets.items():
        try:
            spans, elapsed = run_backend(backend, signal, padding=0.0)
            padded, _ = run_backend(backend, signal, padding=0.2)
        except ImportError as exc:
            print(f"{backend:>7}: not available ({exc})")
            continue
        accuracy, precision, recall = score(truth, frames_of(spans, n))
        padded_accuracy = score(truth, frames_of(padded, n))[0]
        speed = SECONDS / elapsed
        target = f"target accuracy >= {min_accuracy}"
        if min_speed:
            target += f", speed >= {min_speed}x"
        print(
            f"{backend:>7}: accuracy {accuracy:.3f} precision {precision:.3f} "
            f"recall {recall:.3f} | {speed:,.0f}x realtime | "
            f"accuracy with 0.2 s padding {padded_accuracy:.3f} ({target})"
        )


if __name__ == "__main__":
    main()
