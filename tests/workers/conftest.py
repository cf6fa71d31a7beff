"""Fixtures for the worker tests: media of tone bursts, stores, the test transcriber."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from audioflow import JobStore, MemoryJobStore, RedisJobStore
from audioflow.testing.media import AudioTrack, write_media
from redis_helpers import delete_prefix, redis_url

RATE = 16_000
#: Bursts of tone in ``burst_media`` (two a window with ``max_window=2.0``).
BURSTS = 6


def burst_media(path: Path, base: int = 400, count: int = BURSTS) -> Path:
    """``count`` 0.4 s tone bursts, 2.3 s apart, as a real file."""
    seconds = 1.0 + 2.3 * count + 1.0
    audio = np.zeros(round(seconds * RATE), dtype=np.float32)
    for i in range(count):
        start = round((1.0 + 2.3 * i) * RATE)
        t = np.arange(round(0.4 * RATE)) / RATE
        audio[start : start + len(t)] = 0.5 * np.sin(2 * np.pi * (base + 40 * i) * t)
    return write_media(path, AudioTrack(samples=audio, sample_rate=RATE))


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return burst_media(tmp_path / "bursts.flac")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, anyio_backend: object) -> AsyncIterator[JobStore]:
    if request.param == "memory":
        yield MemoryJobStore()
        return
    backend = anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend
    if backend != "asyncio":
        pytest.skip("redis.asyncio runs on asyncio only")
    prefix = f"audioflow-test:{os.urandom(6).hex()}:"
    async with RedisJobStore(redis_url(), prefix=prefix) as redis_store:
        yield redis_store
    delete_prefix(redis_url(), prefix)
