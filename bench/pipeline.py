"""Whole-pipeline overhead: a long file through Pipeline vs the Decode stage alone.

    python bench/pipeline.py [--hours 2]

Generates a long FLAC (tone bursts over low noise, cached under bench/.cache), then in
separate processes, so each peak RSS is its own:

* the ``Decode`` stage alone, chunks discarded (the baseline),
* ``Pipeline.run`` with every stage (decode, quality, speech detection, transcribe with
  ``BurstTranscriber``, which answers at once, render) and a MemoryJobStore.

It prints wall time, peak RSS and the ratios. Targets: peak RSS <= 250 MB, wall time
<= 1.3x the decode stage alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"
RATE = 16_000


def make_source(hours: float) -> Path:
    import av

    path = CACHE / f"bursts-{hours:g}h.flac"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    block = 60 * RATE  # one minute at a time: the generator itself stays small
    tmp = path.with_suffix(".tmp.flac")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        for minute in range(round(hours * 60)):
            audio = (rng.standard_normal(block) * 0.003).astype(np.float32)
            for k in range(20):  # a 0.6 s burst every 3 s
                a = k * 3 * RATE
                t = np.arange(int(0.6 * RATE)) / RATE
                freq = 300 + 40 * ((minute * 20 + k) % 80)
                audio[a : a + len(t)] += (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
            samples = np.clip(audio * 32767, -32768, 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="s16", layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path


CHILD = """
import anyio, json, sys, time, resource
from audioflow.stages.base import function_stage, run_stages
from audioflow.stages.decode import Decode
from audioflow import Pipeline
from audioflow.testing.transcribers import BurstTranscriber

async def decode_only(path):
    async def drop(chunk):
        return None
    await run_stages([path], Decode(), function_stage(drop, name="drop"))

async def pipeline(path):
    result = await Pipeline(BurstTranscriber()).run(path)
    assert result.transcript is not None and result.transcript.segments

mode, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
anyio.run(decode_only if mode == "decode" else pipeline, path)
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "rss_mb": rss}))
"""


def measure(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    source = make_source(args.hours)
    print(
        f"source: {source.name} ({source.stat().st_size / 1e6:.0f} MB, made/cached in "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    decode = measure("decode", source)
    full = measure("pipeline", source)
    print(f"{'run':<22}{'wall s':>9}{'peak RSS MB':>13}")
    print(f"{'Decode stage alone':<22}{decode['wall']:>9.1f}{decode['rss_mb']:>13.0f}")
    print(f"{'Pipeline (all stages)':<22}{full['wall']:>9.1f}{full['rss_mb']:>13.0f}")
    print(
        f"wall time ratio pipeline/decode: {full['wall'] / decode['wall']:.2f}x (target <= 1.3x)"
    )
    print(f"pipeline peak RSS: {full['rss_mb']:.0f} MB (target <= 250 MB)")


if __name__ == "__main__":
    main()
