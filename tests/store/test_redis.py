"""RedisJobStore against the real Redis server: the conformance suite and Redis specifics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
import redis.asyncio as aioredis

from audioflow import (
    Job,
    JobCorruptedError,
    JobNotFoundError,
    JobStatus,
    JobTooLargeError,
    Progress,
    RedisJobStore,
    StoreUnavailableError,
)
from audioflow.testing import FakeClock, JobStoreConformance

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is bound to asyncio


class TestRedisJobStore(JobStoreConformance):
    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, key_prefix: str) -> None:
        self.redis_url = redis_url
        self.key_prefix = key_prefix

    @contextlib.asynccontextmanager
    async def make_store(
        self, *, clock: Callable[[], float], **limits: int
    ) -> AsyncIterator[RedisJobStore]:
        async with RedisJobStore(
            self.redis_url, prefix=self.key_prefix, clock=clock, **limits
        ) as store:
            yield store

    async def ttl_of(self, store: RedisJobStore, job_id: str) -> float | None:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            ms = await client.pttl(store.job_key(job_id))
        finally:
            await client.aclose()
        assert ms != -2, "the job key does not exist"
        return None if ms == -1 else ms / 1000


class TestRedisJobStoreDecodedResponses(TestRedisJobStore):
    """The same suite through a caller-owned client with ``decode_responses=True``."""

    @contextlib.asynccontextmanager
    async def make_store(
        self, *, clock: Callable[[], float], **limits: int
    ) -> AsyncIterator[RedisJobStore]:
        client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            async with RedisJobStore(
                client, prefix=self.key_prefix, clock=clock, **limits
            ) as store:
                yield store
            assert await client.ping()  # a caller-owned client is left open
        finally:
            await client.aclose()


@pytest.fixture
async def store(redis_client: aioredis.Redis, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    async with RedisJobStore(redis_client, prefix=key_prefix, ttl=600) as store:
        yield store


async def test_layout_is_one_hash_with_one_json_field_per_record_field(
    store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="j1", source="talk.mp3", meta={"a": "b"}))
    raw = await redis_client.hgetall(store.job_key("j1"))
    assert store.job_key("j1") == f"{store.prefix}{{j1}}:job"
    assert raw[b"source"] == b'"talk.mp3"'
    assert raw[b"status"] == b'"queued"'
    assert raw[b"meta"] == b'{"a":"b"}'
    assert raw[b"version"] == b"1"
    assert b"id" not in raw  # the id is the key
    assert await redis_client.type(store.events_key("j1")) == b"stream"


async def test_corrupt_field_raises_job_corrupted(
    store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="j2"))
    await redis_client.hset(store.job_key("j2"), "progress", "{not json")
    with pytest.raises(JobCorruptedError) as info:
        await store.get("j2")
    assert info.value.job_id == "j2"
    assert info.value.field == "progress"
    assert "j2" in str(info.value) and "progress" in str(info.value)
    await redis_client.hset(store.job_key("j2"), "progress", '{"fraction": "half"}')
    with pytest.raises(JobCorruptedError) as info:
        await store.get("j2")
    assert info.value.field == "progress"


async def test_update_missing_creates_no_key(
    store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    with pytest.raises(JobNotFoundError):
        await store.update("ghost", progress=Progress(fraction=0.5))
    assert await redis_client.exists(store.job_key("ghost"), store.events_key("ghost")) == 0


async def test_ttl_set_refreshed_and_absent_only_with_none(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisJobStore(redis_client, prefix=key_prefix, ttl=600)
    await store.create(Job(id="t"))
    keys = (store.job_key("t"), store.events_key("t"))
    for key in keys:
        assert 590_000 < await redis_client.pttl(key) <= 600_000
    for key in keys:  # let time "pass", then a write must refresh both keys
        await redis_client.pexpire(key, 5_000)
    await store.update("t", meta={"x": "1"})
    for key in keys:
        assert 590_000 < await redis_client.pttl(key) <= 600_000
    await redis_client.pexpire(keys[0], 5_000)
    await store.transition("t", JobStatus.RUNNING)
    assert await redis_client.pttl(keys[0]) > 590_000

    forever = RedisJobStore(redis_client, prefix=key_prefix, ttl=None)
    await forever.create(Job(id="f"))
    await forever.update("f", meta={"x": "1"})
    assert await redis_client.pttl(forever.job_key("f")) == -1
    assert await redis_client.pttl(forever.events_key("f")) == -1


async def test_unreachable_server_raises_store_unavailable_promptly() -> None:
    store = RedisJobStore("redis://127.0.0.1:1/0")
    with anyio.fail_after(15):  # a bound, not a timing claim: it must not hang
        with pytest.raises(StoreUnavailableError):
            await store.get("x")
        with pytest.raises(StoreUnavailableError):
            await store.create(Job(id="x"))
        with pytest.raises(StoreUnavailableError):
            await store.update("x", meta={})
    await store.aclose()


async def test_list_prunes_index_entries_of_vanished_jobs(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    clock = FakeClock()
    store = RedisJobStore(redis_client, prefix=key_prefix, clock=clock)
    for i in range(3):
        await store.create(Job(id=f"p{i}"))
    await redis_client.delete(store.job_key("p1"))  # as if its TTL ran out
    clock.advance(3600)  # past the grace period for half-finished creates
    page = await store.list()
    assert [j.id for j in page.jobs] == ["p0", "p2"]
    assert await redis_client.zcard(f"{key_prefix}index:all") == 2


async def test_list_keeps_index_entry_of_create_in_flight(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisJobStore(redis_client, prefix=key_prefix)
    job = Job(id="inflight")
    from audioflow.store._rules import order_key

    # The entry a create writes just before its script runs: not yet a job, kept.
    await redis_client.zadd(f"{key_prefix}index:all", {order_key(job): 0})
    assert (await store.list()).jobs == ()
    assert await redis_client.zcard(f"{key_prefix}index:all") == 1


async def test_list_skips_and_names_a_corrupt_job(
    store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    for name in ("c1", "c2", "c3"):
        await store.create(Job(id=name))
    await redis_client.hset(store.job_key("c2"), "meta", "{not json")
    page = await store.list()
    assert [j.id for j in page.jobs] == ["c1", "c3"]
    assert page.corrupt == ("c2",)
    with pytest.raises(JobCorruptedError):
        await store.get("c2")
    # One job a page: the corrupt one is named once, on the page whose stretch holds it.
    seen, named, cursor = [], [], None
    while True:
        page = await store.list(limit=1, cursor=cursor)
        seen += [j.id for j in page.jobs]
        named += page.corrupt
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == ["c1", "c3"] and named == ["c2"]


@pytest.mark.parametrize("ttl", [0.0004, 0, -1, float("inf"), True])
async def test_unusable_ttl_is_refused(redis_client: aioredis.Redis, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RedisJobStore(redis_client, ttl=ttl)


async def test_job_larger_than_its_limit_leaves_memory_alone(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    # Ten 10 MB meta writes grew Redis by 144 MB when events kept copies and nothing
    # bounded a field: now the write is refused before it is sent, and values that are
    # stored are not copied into the change stream.
    store = RedisJobStore(redis_client, prefix=key_prefix, max_field_bytes=1_000_000)
    await store.create(Job(id="big"))
    with pytest.raises(JobTooLargeError):
        await store.update("big", meta={"x": "y" * 10_000_000})
    for i in range(10):
        await store.update("big", meta={"x": str(i) * 900_000})
    # samples=0: count every element. By default MEMORY USAGE estimates a hash from 5
    # of its fields, and one that picks the 900 kB field multiplies it by the count.
    stream = await redis_client.memory_usage(store.events_key("big"), samples=0)
    assert stream is not None and stream < 100_000  # no megabyte copies in events
    job_hash = await redis_client.memory_usage(store.job_key("big"), samples=0)
    assert job_hash is not None and job_hash < 2_000_000  # one copy of the value, not ten


async def test_a_retry_that_meets_a_later_write_of_its_client_reports_outcome_unknown(
    store: RedisJobStore,
) -> None:
    # The batcher keeps two writes of one store to one job out of one pipeline, so a
    # retry never meets a later operation id of its own client. Should one ever do
    # (here: the sequence is wound back by hand), the store says it cannot know.
    import itertools

    await store.create(Job(id="u"))
    await store.update("u", meta={"a": "1"})
    store._seq = itertools.count(1)
    with pytest.raises(StoreUnavailableError, match="unknown") as info:
        await store.update("u", meta={"a": "2"})
    assert info.value.outcome_unknown
    job = await store.get("u")
    assert job is not None and job.meta == {"a": "1"} and job.version == 2
