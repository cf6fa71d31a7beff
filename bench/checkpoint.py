"""Checkpoint bytes written per window, for 15-minute to 2-hour inputs.

    python bench/checkpoint.py [--minutes 15,30,60,120] [--url redis://127.0.0.1:6379/0]

Runs ``Pipeline.run`` on each input (tone bursts over noise, the same generator as
``bench/pipeline.py``, cached under bench/.cache) against a real RedisJobStore, with a
transcriber that answers at once with about one word per 0.4 s of window (so a
30-second window's transcript is a few kilobytes, as a real one is). A wrapper counts
the bytes of JSON every checkpoint write carries. The baseline, from the same writes:
what they would have carried if each held every window so far (the layout before
``add_windows``, where the checkpoint was one field).

Target: bytes per window stay flat from 15 minutes to 2 hours (within 1.5x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import msgspec

sys.path.insert(0, str(Path(__file__).parent))
from audioflow import (
    JobStore,
    Pipeline,
    RedisJobStore,
    TranscriptSegment,
    Usage,
    WindowTranscript,
    Word,
)
from audioflow.testing import FaultyStore
from audioflow.transcribers import AudioWindow, WindowCallback
from pipeline import make_source


class Wordy:
    """Answers every window at once: one word per 0.4 s, without reading the audio."""

    name, max_window, max_batch = "wordy", 30.0, 4

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        out = []
        for w in windows:
            n = max(1, int(w.duration / 0.4))
            words = tuple(
                Word(text=f" word{i}", start=i * 0.4, end=i * 0.4 + 0.3, confidence=0.93)
                for i in range(n)
            )
            segment = TranscriptSegment(
                start=0.0, end=w.duration, text="".join(x.text for x in words), words=words
            )
            out.append(
                WindowTranscript(
                    index=w.index,
                    segments=(segment,),
                    language="en",
                    usage=Usage(audio_seconds=w.duration, requests=1),
                )
            )
        for result in out if on_window is not None else ():
            on_window(result)
        return out

    async def aclose(self) -> None:
        pass


class Counting(FaultyStore):
    """Counts the JSON bytes of every checkpoint write (no faults)."""

    def __init__(self, inner: JobStore) -> None:
        super().__init__(inner, fail={})
        self.writes: list[int] = []  # bytes of each write's windows

    async def add_windows(
        self,
        job_id: str,
        windows: Sequence[WindowTranscript],
        *,
        key: str,
        lease_token: str | None = None,
    ) -> int:
        self.writes.append(sum(len(msgspec.json.encode(w)) for w in windows))
        return await super().add_windows(job_id, windows, key=key, lease_token=lease_token)


async def measure(path: Path, url: str) -> dict[str, float]:
    prefix = f"audioflow-bench:{os.urandom(4).hex()}:"
    async with RedisJobStore(url, prefix=prefix) as redis_store:
        store = Counting(redis_store)
        begin = time.perf_counter()
        result = await Pipeline(Wordy(), store=store).run(path, job_id="bench")
        wall = time.perf_counter() - begin
        job = await redis_store.get("bench")
        assert job is not None and job.checkpoint is not None
        windows = len(job.checkpoint.windows)
        await redis_store.delete("bench")
    assert result.transcript is not None
    new = sum(store.writes)
    old, so_far = 0, 0
    for size in store.writes:  # each write carrying every window so far
        so_far += size
        old += so_far
    return {
        "windows": windows,
        "writes": len(store.writes),
        "bytes": new,
        "old_bytes": old,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="15,30,60,120")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    minutes = [int(m) for m in args.minutes.split(",")]
    print(
        f"{'input':>8}{'windows':>9}{'writes':>8}{'bytes':>12}{'bytes/window':>14}"
        f"{'one-field bytes':>17}{'one-field/window':>18}{'wall s':>8}"
    )
    per_window = {}
    for m in minutes:
        source = make_source(m / 60)
        r = anyio.run(measure, source, args.url)
        per_window[m] = r["bytes"] / r["windows"]
        print(
            f"{m:>5} min{r['windows']:>9.0f}{r['writes']:>8.0f}{r['bytes']:>12,.0f}"
            f"{per_window[m]:>14,.0f}{r['old_bytes']:>17,.0f}"
            f"{r['old_bytes'] / r['windows']:>18,.0f}{r['wall']:>8.1f}"
        )
    first, last = minutes[0], minutes[-1]
    ratio = per_window[last] / per_window[first]
    print(
        f"checkpoint bytes per window, {last} min / {first} min: {ratio:.2f}x "
        "(target <= 1.5x: flat)"
    )


if __name__ == "__main__":
    main()
