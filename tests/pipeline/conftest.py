"""Fixtures for pipeline tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from burst_media import bursts, write_bursts

from audioflow import JobStore, MemoryJobStore, RedisJobStore
from support.redis_server import delete_prefix, redis_url


@pytest.fixture
def burst_file(tmp_path: Path) -> tuple[Path, list[tuple[int, float, float]]]:
    """25 s of FLAC with ten tone bursts at known times."""
    plan = bursts(400)
    return write_bursts(tmp_path / "bursts.flac", plan, 25.0), plan


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
