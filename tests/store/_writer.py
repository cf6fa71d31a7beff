"""One OS process of the multi-process update test: writes its own field N times.

Usage: python _writer.py URL PREFIX JOB_ID FIELD N
Prints "ready", waits for a line on stdin (so that all writers start together), then
prints the JSON list of versions its updates returned.
"""

from __future__ import annotations

import sys

import anyio
import msgspec

from audioflow import JobError, JobOptions, JobResult, Progress, RedisJobStore


def value(field: str, i: int) -> object:
    return {
        "meta": {"w": str(i)},
        "progress": Progress(fraction=i / 1000, message=str(i)),
        "artifacts": {"i": str(i)},
        "source": f"s{i}",
        "options": JobOptions(extra={"i": str(i)}),
        "error": JobError(type="T", message=str(i)),
        "result": JobResult(artifacts={"i": str(i)}),
        "attempts": i,
    }[field]


async def main(url: str, prefix: str, job_id: str, field: str, n: int) -> None:
    async with RedisJobStore(url, prefix=prefix) as store:
        await store.get(job_id)  # connect before the start signal
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        versions = [await store.update(job_id, **{field: value(field, i)}) for i in range(n)]
    print(msgspec.json.encode(versions).decode(), flush=True)


if __name__ == "__main__":
    url, prefix, job_id, field, n = sys.argv[1:]
    anyio.run(main, url, prefix, job_id, field, int(n))
