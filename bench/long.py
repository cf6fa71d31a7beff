"""Memory with length: the ``audioflow`` CLI's peak RSS on a 2-hour recording.

    python bench/long.py [--hours 2] [--pipelines A,B]

Builds (once, into ``~/.cache/audioflow/evalset``) a FLAC of the evaluation set's
``voices.wav`` and ``gaps.wav`` one after the other, repeated to ``--hours``: dense
speech of four speakers and long silences with noise, all the way through. Then, each in
a fresh process with the model load included, as ``bench/transcribe.py`` runs them:

* the model's own footprint: ``audioflow transcribe`` on the shipped 16.5 s sample
  (the model loaded, one window transcribed) and on ``allison.wav`` (5 minutes: full
  batches of windows, the most the model holds at once);
* (A) ``audioflow transcribe`` on the long file;
* (B) faster-whisper's ``BatchedInferencePipeline`` on the long file.

Printed: wall seconds, exact peak RSS (``ru_maxrss`` from ``os.wait4``), words, and
A's peak over the footprint (the aim: at most 250 MB). It prints, it never asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcribe import (
    DEFAULT_MANIFEST,
    SAMPLE,
    make_pipelines,
    run_child,
)

RATE = 16_000
MIB = 1024 * 1024


def make_long(evalset: Path, hours: float) -> Path:
    """``voices.wav`` + ``gaps.wav`` repeated to ``hours``, as 16 kHz FLAC (built once)."""
    import av

    path = evalset / f"long-{hours:g}h.flac"
    if path.exists():
        return path
    parts = []
    for name in ("voices.wav", "gaps.wav"):
        with av.open(str(evalset / name)) as container:
            parts += [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    cycle = np.concatenate(parts).astype(np.int16)
    repeats = int(np.ceil(hours * 3600 * RATE / len(cycle)))
    tmp = path.with_suffix(".tmp.flac")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        for _ in range(repeats):
            frame = av.AudioFrame.from_ndarray(cycle[np.newaxis, :], format="s16", layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--pipelines", default="A,B", help="subset of A,B")
    args = parser.parse_args()
    if not args.manifest.exists():
        raise SystemExit(f"{args.manifest} is missing: run python bench/evalset.py first")
    from audioflow.transcribers._whisper_model import resolve_model

    long = make_long(args.manifest.parent, args.hours)
    pipelines = make_pipelines(Path(resolve_model(None)), batch_size=8, cpu_threads=0)
    env = dict(os.environ)

    def run(key: str, path: Path) -> tuple[float, float, int]:
        with tempfile.TemporaryDirectory(prefix="bench-long-") as scratch:
            pipeline = pipelines[key]
            child = run_child(pipeline.command(path, Path(scratch)), env)
            if child.returncode != 0:
                raise SystemExit(f"{key} failed on {path.name}:\n{child.stderr[-2000:]}")
            words = pipeline.read(child.stdout, Path(scratch), path)
        return child.wall, child.peak_rss / MIB, len(words)

    print(f"{long.name}: {args.hours:g} h; each run a fresh process, load included")
    _, footprint, _ = run("A", SAMPLE)
    print(f"  model footprint (A on the 16.5 s sample): peak {footprint:.0f} MiB")
    _, batches, _ = run("A", args.manifest.parent / "allison.wav")
    print(f"  with full batches (A on the 5-minute allison.wav): peak {batches:.0f} MiB")
    for key in args.pipelines.split(","):
        wall, peak, words = run(key, long)
        print(
            f"  {pipelines[key].label:<16} {wall:7.1f} s  peak {peak:5.0f} MiB  "
            f"{words} words  (peak - footprint {peak - footprint:+.0f} MiB, "
            f"- 5-minute peak {peak - batches:+.0f} MiB)"
        )
    print("  aim: A's peak within the footprint + 250 MiB, and flat with length")


if __name__ == "__main__":
    main()
