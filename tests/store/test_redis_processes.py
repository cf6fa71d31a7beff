"""Eight OS processes write their own field of one job: no write may be lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from _writer import value  # type: ignore[import-not-found]

from audioflow import Job, RedisJobStore

FIELDS = ["meta", "progress", "artifacts", "source", "options", "error", "result", "attempts"]
WRITES = 500


@pytest.mark.slow
def test_processes_writing_different_fields_lose_nothing(redis_url: str, key_prefix: str) -> None:
    async def create() -> None:
        async with RedisJobStore(redis_url, prefix=key_prefix) as store:
            await store.create(Job(id="shared"))

    anyio.run(create)
    script = Path(__file__).with_name("_writer.py")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), redis_url, key_prefix, "shared", f, str(WRITES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for f in FIELDS
    ]
    try:
        for p in procs:  # every writer is connected before any starts
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * len(FIELDS)
    versions = [v for out in outputs for v in json.loads(out)]

    async def read() -> Job | None:
        async with RedisJobStore(redis_url, prefix=key_prefix) as store:
            return await store.get("shared")

    job = anyio.run(read)
    assert job is not None
    total = len(FIELDS) * WRITES
    assert job.version == 1 + total
    # Every update got its own version: none was swallowed by another.
    assert sorted(versions) == list(range(2, 2 + total))
    for field in FIELDS:
        assert getattr(job, field) == value(field, WRITES - 1), field
