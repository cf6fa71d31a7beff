"""Benchmark Decode against the ffmpeg CLI, and its peak memory on a 3-hour file.

Run: ``python bench/decode.py`` (needs ``ffmpeg`` on PATH for the baseline). Prints
ratios; asserts nothing. Targets: throughput >= 0.85x the ffmpeg CLI
(``ffmpeg -i X -ac 1 -ar 16000 -f f32le -``), peak RSS <= 120 MB for 3 hours of audio.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

from audioflow.records import AudioChunk
from audioflow.stages.base import StageContext, function_stage, run_stages
from audioflow.stages.decode import Decode
from audioflow.stages.quality import Quality
from audioflow.testing.media import AudioTrack, noise, tone, write_media

MINUTES = 10
REPEATS = 3


def _program(seconds: float, rate: int) -> np.ndarray:
    """Stereo test programme: a slow chord over noise (compresses like real audio)."""
    mono = (
        tone(220, seconds, rate, 0.2)
        + tone(330, seconds, rate, 0.1)
        + noise(seconds, rate, 0.05, seed=1)
    )
    return np.stack([mono, np.roll(mono, 441)]).astype(np.float32)


def make_inputs(workdir: Path) -> dict[str, Path]:
    """The 10-minute MP3 and AAC-in-MP4 files, and a 3-hour MP3 made from the first."""
    seconds = MINUTES * 60.0
    mp3 = workdir / "ten_minutes.mp3"
    # No Xing header: concatenated copies then form one valid, longer MP3 stream.
    write_media(
        mp3,
        AudioTrack(_program(seconds, 44_100), 44_100, bit_rate=128_000),
        container_options={"write_xing": "0"},
    )
    m4a = workdir / "ten_minutes.mp4"
    write_media(m4a, AudioTrack(_program(seconds, 48_000), 48_000, bit_rate=128_000))
    long = workdir / "three_hours.mp3"
    with long.open("wb") as out:
        for _ in range(18):
            out.write(mp3.read_bytes())
    return {"mp3": mp3, "aac": m4a, "long": long}


async def _decode_to_sink(path: Path, *, with_quality: bool = False) -> float:
    """Decode ``path`` through the stage into a sink that drops chunks; seconds decoded."""
    decoded = 0.0

    async def sink(chunk: AudioChunk) -> None:
        nonlocal decoded
        decoded += chunk.duration

    stages = [Decode(), *([Quality()] if with_quality else []), function_stage(sink)]
    await run_stages([path], *stages, ctx=StageContext(), buffer=1)
    return decoded


def time_decode(path: Path) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        anyio.run(_decode_to_sink, path)
        best = min(best, time.perf_counter() - start)
    return best


def time_ffmpeg(path: Path) -> float:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path)]
    cmd += ["-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        # The pipe is drained by the parent, as a Python consumer of the CLI would.
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE)
        best = min(best, time.perf_counter() - start)
    return best


def _peak_rss_mib() -> float:
    """This process's peak RSS in MiB.

    ``VmHWM`` (Linux) rather than ``getrusage().ru_maxrss``: the latter survives
    ``execve`` and so reports the *parent's* peak when that was higher.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(path: str) -> None:
    """In a fresh process: decode ``path`` (Decode -> Quality -> sink), print peak RSS."""
    before = _peak_rss_mib()
    start = time.perf_counter()
    seconds = anyio.run(lambda: _decode_to_sink(Path(path), with_quality=True))
    elapsed = time.perf_counter() - start
    print(f"{seconds:.1f} {elapsed:.2f} {before:.1f} {_peak_rss_mib():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        inputs = make_inputs(Path(tmp))
        print(f"generated inputs in {time.perf_counter() - t0:.1f} s")
        has_ffmpeg = shutil.which("ffmpeg") is not None
        for label in ("mp3", "aac"):
            path = inputs[label]
            ours = time_decode(path)
            speed = MINUTES * 60 / ours
            line = f"{label:>4} {MINUTES} min: Decode {ours:.3f} s ({speed:.0f}x realtime)"
            if has_ffmpeg:
                theirs = time_ffmpeg(path)
                line += (
                    f"; ffmpeg CLI {theirs:.3f} s ({MINUTES * 60 / theirs:.0f}x realtime)"
                    f"; throughput ratio Decode/ffmpeg = {theirs / ours:.2f} (target >= 0.85)"
                )
            else:
                line += "; ffmpeg CLI not found, no baseline"
            print(line)
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(inputs["long"])],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        seconds, elapsed, before, peak = map(float, out)
        print(
            f"3 h MP3 through Decode -> Quality -> sink: {seconds / 3600:.2f} h decoded in "
            f"{elapsed:.1f} s; peak RSS {peak:.1f} MiB (after imports {before:.1f} MiB; "
            "target <= 120 MB)"
        )


if __name__ == "__main__":
    main()
