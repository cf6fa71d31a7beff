"""Whole-pipeline overhead: a long file through Pipeline vs the Decode stage alone.

    python bench/pipeline.py [--hours 2]

Generates a long FLAC (tone bursts over low noise, cached under bench/.cache), then in
separate processes, so each peak RSS is its own:

* the ``Decode`` stage alone with the pipeline's chunk size, chunks discarded (the
  baseline),
* ``Pipeline.run`` with every stage (decode, quality, speech detection, transcribe,
  render) and a MemoryJobStore. The transcriber answers every window at once without
  reading its audio, so the run measures the pipeline's own cost.

It prints wall time, peak RSS and the ratios. Targets: peak RSS <= 250 MB, wall time
<= 1.3x the decode stage alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
import anyio, functools, json, sys, time, resource
from audioflow.stages.base import function_stage, run_stages
from audioflow.stages.decode import Decode
from audioflow import JobStatus, Pipeline, TranscriptSegment, Usage, Word, WindowTranscript

class Instant:
    # Answers every window at once without looking at its audio: one word per window,
    # so the run measures the pipeline's own cost, not a model's (or a test double's).
    name, max_window, max_batch = "instant", 30.0, 4

    async def transcribe(self, windows, *, language=None, on_window=None):
        out = [
            WindowTranscript(
                index=w.index,
                segments=(TranscriptSegment(start=0.0, end=w.duration, text="w",
                          words=(Word(text="w", start=0.0, end=w.duration),)),),
                language="en",
                usage=Usage(audio_seconds=w.duration, requests=1),
            )
            for w in windows
        ]
        for result in out if on_window is not None else ():
            on_window(result)
        return out

    async def aclose(self):
        pass

async def decode_only(path):
    async def drop(chunk):
        return None
    chunks = Pipeline(Instant()).chunk_seconds  # the pipeline's own Decode settings
    await run_stages([path], Decode(chunk_seconds=chunks), function_stage(drop, name="drop"))

async def pipeline(path):
    result = await Pipeline(Instant()).run(path)
    assert result.transcript is not None and result.transcript.segments

async def cancel(path):
    # Cancel mid-decode; time from cancel() to run() having returned, job cancelled.
    pipeline = Pipeline(Instant())
    midway = anyio.Event()

    def seen(progress):
        # A tenth of the decoding (its share of the overall fraction is 0.3); the stage
        # shown may already be a later one, since the stages run side by side.
        if progress.fraction >= 0.03:
            midway.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(pipeline.run, path, job_id="c", on_progress=seen))
        await midway.wait()
        begin = time.perf_counter()
        tg.cancel_scope.cancel()
    took = time.perf_counter() - begin
    job = await pipeline.store.get("c")
    assert job is not None and job.status is JobStatus.CANCELLED
    print(json.dumps({"cancel_s": took, "progress": job.progress.fraction}))

mode, path = sys.argv[1], sys.argv[2]
if mode == "cancel":
    anyio.run(cancel, path)
    sys.exit()
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="alternating runs of each; medians are reported"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    source = make_source(args.hours)
    print(
        f"source: {source.name} ({source.stat().st_size / 1e6:.0f} MB, made/cached in "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    print(f"{'run':<26}{'wall s':>9}{'peak RSS MB':>13}")
    decodes, fulls = [], []
    for i in range(args.repeat):
        # Alternating, so that a noisy neighbour hits both sides alike.
        decodes.append(measure("decode", source))
        fulls.append(measure("pipeline", source))
        for label, run in (
            ("Decode stage alone", decodes[-1]),
            ("Pipeline (all stages)", fulls[-1]),
        ):
            print(f"{label + f' #{i + 1}':<26}{run['wall']:>9.2f}{run['rss_mb']:>13.0f}")
    decode = statistics.median(r["wall"] for r in decodes)
    full = statistics.median(r["wall"] for r in fulls)
    ratios = sorted(f["wall"] / d["wall"] for d, f in zip(decodes, fulls, strict=True))
    rss = max(r["rss_mb"] for r in fulls)
    print(
        f"wall time ratio pipeline/decode (medians {full:.2f} s / {decode:.2f} s): "
        f"{full / decode:.2f}x (target <= 1.3x); per pair "
        + ", ".join(f"{r:.2f}x" for r in ratios)
    )
    print(f"pipeline peak RSS (highest run): {rss:.0f} MB (target <= 250 MB)")
    stop = measure("cancel", source)
    print(
        f"cancelled mid-decode (overall progress {stop['progress']:.2f}): job cancelled "
        f"{stop['cancel_s'] * 1000:.0f} ms after cancel()"
    )


if __name__ == "__main__":
    main()
