"""Fixtures for store tests: a real Redis server and a key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from support.redis_server import delete_prefix
from support.redis_server import redis_url as _redis_url


@pytest.fixture
def redis_url() -> str:
    return _redis_url()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards."""
    prefix = f"audioflow-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
