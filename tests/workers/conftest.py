"""Fixtures for the worker tests: media of tone bursts, stores, the test transcriber."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from worker_procs import burst_media

from audioflow import JobStore, MemoryJobStore, RedisJobStore
from support.redis_server import delete_prefix, redis_url


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
