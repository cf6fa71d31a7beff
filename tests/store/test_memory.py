"""MemoryJobStore passes the shipped conformance suite, plus its own TTL behaviour."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from audioflow import Job, MemoryJobStore
from audioflow.testing import FakeClock, JobStoreConformance

pytestmark = pytest.mark.anyio


class TestMemoryJobStore(JobStoreConformance):
    @contextlib.asynccontextmanager
    async def make_store(
        self, *, clock: Callable[[], float], **limits: int
    ) -> AsyncIterator[MemoryJobStore]:
        async with MemoryJobStore(clock=clock, ttl=3600, **limits) as store:
            yield store

    async def ttl_of(self, store: MemoryJobStore, job_id: str) -> float | None:
        entry = store._jobs[job_id]
        return None if entry.expires_at is None else entry.expires_at - store._clock()


async def test_jobs_expire_after_ttl_and_writes_refresh_it() -> None:
    clock = FakeClock()
    store = MemoryJobStore(clock=clock, ttl=100)
    await store.create(Job(id="a"))
    clock.advance(90)
    await store.update("a", meta={"k": "v"})
    clock.advance(90)
    assert await store.get("a") is not None  # refreshed by the write at t=90
    clock.advance(11)
    assert await store.get("a") is None
    assert (await store.list()).jobs == ()


async def test_ttl_none_keeps_jobs_forever() -> None:
    clock = FakeClock()
    store = MemoryJobStore(clock=clock, ttl=None)
    await store.create(Job(id="a"))
    clock.advance(10**9)
    assert await store.get("a") is not None


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl"):
        MemoryJobStore(ttl=0)
