"""Regenerate the speech fixtures in this directory (NOT run by the tests).

Each fixture is English speech synthesised with espeak-ng, resampled to 16 kHz mono and
stored as Ogg/Opus at 32 kbit/s (small enough to commit), with the exact text that was
spoken beside it as ``<name>.txt``. ``paragraph`` joins several sentences with silences
of different lengths in between, so a speech detector has something to remove.

Requirements: ``espeak-ng`` on PATH (``apt-get install espeak-ng``) and PyAV.
Usage: ``python tests/data/speech/make_fixtures.py`` (rewrites the files in place).
The committed files were made with espeak-ng 1.51 and PyAV 18.1; a rerun gives the same
audio but not the same bytes (the Ogg stream serial number is random).
"""

from __future__ import annotations

import io
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16_000
VOICE = "en-us"
WPM = "150"

# name -> (espeak-ng voice, text); "spanish" lets a test check per-window language.
SHORT = {
    "weather": (VOICE, "The weather is bright and sunny today."),
    "library": (VOICE, "She walked to the library to return her books."),
    "coffee": (VOICE, "Please bring me a cup of hot coffee with milk."),
    "spanish": ("es", "Buenos días, el tren sale de la estación a las nueve de la mañana."),
}

PARAGRAPH = [
    "The old lighthouse stood on the edge of the rocky coast.",
    "Every night its keeper climbed the narrow stairs to light the lamp.",
    "Ships passing in the dark relied on that steady beam to find their way home.",
    "One winter a terrible storm knocked out the power across the whole island.",
    "The keeper worked through the night to keep the light burning.",
    "By morning the storm had passed and every ship had reached the harbor safely.",
    "The people of the village still tell this story to their children.",
    "They say the keeper never once complained about the cold or the long hours.",
    "When he retired the village gave him a small boat and a garden by the sea.",
]
# Silence after each sentence, in seconds: varied so a VAD sees short and long gaps.
GAPS = [0.6, 1.4, 0.8, 2.0, 0.7, 1.1, 0.9, 1.6, 0.3]


def speak(text: str, voice: str = VOICE) -> np.ndarray:
    """Synthesise ``text`` and return 16 kHz mono float32 samples."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", WPM, "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    out: list[np.ndarray] = []
    with av.open(io.BytesIO(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(out).astype(np.float32)


def write_opus(path: Path, samples: np.ndarray) -> None:
    """Encode ``samples`` (16 kHz mono float32) as Ogg/Opus at 32 kbit/s."""
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        stream.bit_rate = 32_000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = RATE
        frame.time_base = Fraction(1, RATE)
        frame.pts = 0
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main() -> None:
    lead = np.zeros(int(0.4 * RATE), dtype=np.float32)
    for name, (voice, text) in SHORT.items():
        write_opus(HERE / f"{name}.opus", np.concatenate([lead, speak(text, voice), lead]))
        (HERE / f"{name}.txt").write_text(text + "\n")
    parts = [lead]
    for sentence, gap in zip(PARAGRAPH, GAPS, strict=True):
        parts += [speak(sentence), np.zeros(int(gap * RATE), dtype=np.float32)]
    samples = np.concatenate(parts)
    write_opus(HERE / "paragraph.opus", samples)
    (HERE / "paragraph.txt").write_text(" ".join(PARAGRAPH) + "\n")
    print(f"paragraph: {len(samples) / RATE:.1f} s")


if __name__ == "__main__":
    main()
