"""RedisJobStore on a real three-node Redis Cluster of this module's own.

The conformance suite runs twice: through a client the store builds (``cluster=True``)
and through a caller-owned ``RedisCluster`` with ``decode_responses``. The rest checks
what only a cluster can show: jobs spread over the nodes, an index write on one node
held or failing while the job lives on another, scripts lost on every node, a job whose
slot migrates (``ASK``, then ``MOVED``) mid-use, a node killed and restarted (on a
cluster of that test's own), and an unreachable cluster.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from audioflow import (
    Job,
    JobEvent,
    JobStatus,
    Progress,
    RedisJobStore,
    StoreError,
    StoreUnavailableError,
)
from audioflow.testing import FakeClock, JobStoreConformance
from support.redis_cluster import Cluster, missing_binaries, redis_cluster

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        bool(missing_binaries()),
        reason=f"Redis Cluster tests need {' and '.join(missing_binaries())} on PATH",
    ),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is bound to asyncio


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with redis_cluster() as running:
        yield running


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own (no braces: the job id is the hash tag)."""
    return f"af-cluster-test:{uuid.uuid4().hex[:12]}:"


@contextlib.asynccontextmanager
async def cluster_client(url: str, **options: object) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(url, **options)
    try:
        yield await client.initialize()
    finally:
        await client.aclose()


class TestRedisJobStoreOnCluster(JobStoreConformance):
    """The suite through a client the store builds from a URL (``cluster=True``)."""

    @pytest.fixture(autouse=True)
    def _cluster(self, cluster: Cluster, prefix: str) -> None:
        self.cluster = cluster
        self.key_prefix = prefix

    @contextlib.asynccontextmanager
    async def make_store(
        self, *, clock: Callable[[], float], **limits: int
    ) -> AsyncIterator[RedisJobStore]:
        async with RedisJobStore(
            self.cluster.url, cluster=True, prefix=self.key_prefix, clock=clock, **limits
        ) as store:
            yield store

    async def ttl_of(self, store: RedisJobStore, job_id: str) -> float | None:
        async with cluster_client(self.cluster.url) as client:
            ms = await client.pttl(store.job_key(job_id))
        assert ms != -2, "the job key does not exist"
        return None if ms == -1 else ms / 1000


class TestRedisJobStoreOnCallerOwnedCluster(TestRedisJobStoreOnCluster):
    """The same suite through a caller-owned ``RedisCluster`` with ``decode_responses``."""

    @contextlib.asynccontextmanager
    async def make_store(
        self, *, clock: Callable[[], float], **limits: int
    ) -> AsyncIterator[RedisJobStore]:
        async with cluster_client(self.cluster.url, decode_responses=True) as client:
            async with RedisJobStore(
                client, prefix=self.key_prefix, clock=clock, **limits
            ) as store:
                yield store
            assert await client.ping()  # a caller-owned client is left open


async def _keys_by_node(cluster: Cluster, prefix: str) -> dict[int, set[str]]:
    """The keys under ``prefix`` that each node holds (asked of each node alone)."""
    held: dict[int, set[str]] = {}
    for port in cluster.ports:
        async with cluster.node(port) as node:
            held[port] = {k.decode() async for k in node.scan_iter(match=f"{prefix}*")}
    return held


async def test_jobs_spread_over_the_nodes_and_cross_node_calls_work(
    cluster: Cluster, prefix: str
) -> None:
    clock = FakeClock()
    async with RedisJobStore(cluster.url, cluster=True, prefix=prefix, clock=clock) as store:
        ids = [f"job-{i:02d}" for i in range(30)]
        for job_id in ids:
            clock.advance(1)
            await store.create(Job(id=job_id, source=f"{job_id}.mp3"))

        held = await _keys_by_node(cluster, prefix)
        node_of = {
            job_id: next(port for port, keys in held.items() if store.job_key(job_id) in keys)
            for job_id in ids
        }
        assert set(node_of.values()) == set(cluster.ports), held  # all three nodes hold jobs
        for job_id, port in node_of.items():  # a job's hash and stream sit together
            assert store.events_key(job_id) in held[port]

        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list(limit=7, cursor=cursor)
            seen += [job.id for job in page.jobs]
            if page.cursor is None:
                break
            cursor = page.cursor
        assert seen == ids

        # One job from each node: watched, claimed concurrently, left to expire.
        picked = [next(i for i in ids if node_of[i] == port) for port in cluster.ports]
        events: dict[str, list[JobEvent]] = {job_id: [] for job_id in picked}

        async def watcher(job_id: str, ready: anyio.Event) -> None:
            async for event in store.watch(job_id):
                events[job_id].append(event)
                ready.set()

        async def claim(job_id: str) -> None:
            await store.claim(job_id, owner="w", lease_seconds=5)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for job_id in picked:
                    ready = anyio.Event()
                    tg.start_soon(watcher, job_id, ready)
                    await ready.wait()  # the snapshot arrived: the watch is live
                async with anyio.create_task_group() as claims:
                    for job_id in picked:
                        claims.start_soon(claim, job_id)
                for job_id in picked:
                    await store.update(job_id, progress=Progress(fraction=0.5))
                clock.advance(6)
                expired = await store.requeue_expired(max_attempts=1)
                # The watchers end by themselves once their job is finished (FAILED).
        assert sorted(job.id for job in expired) == sorted(picked)
        assert all(job.status is JobStatus.FAILED for job in expired)
        for job_id in picked:
            assert [(e.version, e.status) for e in events[job_id]] == [
                (1, JobStatus.QUEUED),
                (2, JobStatus.RUNNING),
                (3, JobStatus.RUNNING),
                (4, JobStatus.FAILED),
            ]
        assert await store.requeue_expired() == []
        failed = await store.list(status=JobStatus.FAILED)
        assert sorted(job.id for job in failed.jobs) == sorted(picked)


def _id_off_the_node_of(client: RedisCluster, store: RedisJobStore, key: str) -> str:
    """A job id whose keys live on another node than ``key``."""
    return next(
        f"j{i}"
        for i in range(1000)
        if client.get_node_from_key(store.job_key(f"j{i}")) != client.get_node_from_key(key)
    )


async def test_a_held_index_write_holds_the_job_write_on_another_node(
    cluster: Cluster, prefix: str
) -> None:
    # redis-py's cluster pipeline sends each node its commands concurrently; the store
    # must still write an index entry before the job it covers, or a job could exist
    # that list() never shows, a lease that requeue_expired never finds.
    index = f"{prefix}index:all"
    async with (
        RedisJobStore(cluster.url, cluster=True, prefix=prefix) as store,
        cluster_client(cluster.url) as client,
    ):
        index_node = client.get_node_from_key(index)
        assert index_node is not None
        job_id = _id_off_the_node_of(client, store, index)
        async with cluster.node(int(index_node.port)) as paused:
            await paused.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(store.create, Job(id=job_id))
                    with anyio.fail_after(5):  # until the index ZADD waits on the pause
                        # Polling the server: there is no event to wait on.
                        while not any(  # noqa: ASYNC110
                            c["cmd"] == "zadd" and "b" in c["flags"]
                            for c in await paused.client_list()
                        ):
                            await anyio.sleep(0.005)
                    assert await client.exists(store.job_key(job_id)) == 0
                    await paused.execute_command("CLIENT", "UNPAUSE")
            finally:
                await paused.execute_command("CLIENT", "UNPAUSE")
        assert [j.id for j in (await store.list()).jobs] == [job_id]


async def test_a_failed_index_write_stops_the_job_write_on_another_node(
    cluster: Cluster, prefix: str
) -> None:
    async with (
        RedisJobStore(cluster.url, cluster=True, prefix=prefix) as store,
        cluster_client(cluster.url) as client,
    ):
        job_id = _id_off_the_node_of(client, store, f"{prefix}index:all")
        await client.set(f"{prefix}index:all", "not a sorted set")  # every ZADD fails
        with pytest.raises(StoreError, match="WRONGTYPE"):
            await store.create(Job(id=job_id))
        assert await client.exists(store.job_key(job_id)) == 0

        await client.delete(f"{prefix}index:all")
        await store.create(Job(id=job_id))
        await client.set(f"{prefix}index:leases", "not a sorted set")
        with pytest.raises(StoreError, match="WRONGTYPE"):
            await store.claim(job_id, owner="w", lease_seconds=30)
        job = await store.get(job_id)
        assert job is not None and job.status is JobStatus.QUEUED and job.lease is None


async def test_scripts_flushed_on_every_node_are_loaded_again(
    cluster: Cluster, prefix: str
) -> None:
    async with RedisJobStore(cluster.url, cluster=True, prefix=prefix) as store:
        ids = [f"s{i}" for i in range(12)]
        for job_id in ids:
            await store.create(Job(id=job_id))
        for port in cluster.ports:
            async with cluster.node(port) as node:
                await node.script_flush()

        async def update(job_id: str) -> None:
            await store.update(job_id, meta={"after": "flush"})

        async with anyio.create_task_group() as tg:  # one batch over every node
            for job_id in ids:
                tg.start_soon(update, job_id)
        for job_id in ids:
            job = await store.get(job_id)
            assert job is not None and job.meta == {"after": "flush"} and job.version == 2
        cached = []
        for port in cluster.ports:
            async with cluster.node(port) as node:
                cached.append((await node.info("memory"))["number_of_cached_scripts"])
        assert cached[0] > 0 and len(set(cached)) == 1, cached  # every primary got them


async def test_a_job_whose_slot_migrates_stays_usable(cluster: Cluster, prefix: str) -> None:
    async with RedisJobStore(cluster.url, cluster=True, prefix=prefix) as store:
        await store.create(Job(id="mover"))
        keys = [store.job_key("mover"), store.events_key("mover")]
        slot = key_slot(keys[0].encode())
        held = await _keys_by_node(cluster, prefix)
        (source,) = (port for port, found in held.items() if keys[0] in found)
        target = next(port for port in cluster.ports if port != source)
        node_ids = {}
        for port in cluster.ports:
            async with cluster.node(port) as node:
                node_ids[port] = (await node.execute_command("CLUSTER", "MYID")).decode()
        async with cluster.node(source) as src, cluster.node(target) as dst:
            await dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_ids[source])
            await src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_ids[target])
            await src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            # Mid-migration the client still maps the slot to the source, which answers
            # ASK; the write follows it to the target.
            assert await store.update("mover", meta={"during": "ask"}) == 2
        for port in cluster.ports:
            async with cluster.node(port) as node:
                await node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", node_ids[target])
        # Done: the source answers MOVED and the client learns the new owner.
        assert await store.update("mover", meta={"after": "moved"}) == 3
        job = await store.get("mover")
        assert job is not None and job.meta == {"after": "moved"} and job.version == 3
        assert [j.id for j in (await store.list()).jobs] == ["mover"]
        assert set(keys) <= (await _keys_by_node(cluster, prefix))[target]


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster for one test that takes a node down."""
    with redis_cluster() as running:
        yield running


async def test_a_killed_node_fails_its_calls_until_it_is_back(own_cluster: Cluster) -> None:
    cluster = own_cluster
    async with cluster_client(cluster.url) as client:

        def port_of(key: str) -> int:
            node = client.get_node_from_key(key)
            assert node is not None
            return int(node.port)

        # The victim holds jobs but neither index set (nothing here is persisted, so a
        # restarted node comes back empty), and is not the owner of slot 0: redis-py
        # 8.1's cluster pipeline rebuilds its slot map through that node ("COMMAND" to
        # the first primary), so while it is down every call fails, not just its own.
        slot0 = client.nodes_manager.get_node_from_slot(0).port
        for _ in range(100):
            prefix = f"af-kill:{uuid.uuid4().hex[:8]}:"
            taken = {slot0, port_of(f"{prefix}index:all"), port_of(f"{prefix}index:leases")}
            if len(taken) < len(cluster.ports):
                break
        else:
            pytest.fail("no prefix leaves a node free of both index sets")
        victim = next(port for port in cluster.ports if port not in taken)
    async with RedisJobStore(cluster.url, cluster=True, prefix=prefix) as store:
        ids = [f"k{i}" for i in range(12)]
        for job_id in ids:
            await store.create(Job(id=job_id))
        on_victim = {job_id for job_id in ids if port_of(store.job_key(job_id)) == victim}
        assert 0 < len(on_victim) < len(ids)
        await anyio.to_thread.run_sync(cluster.kill, victim)
        # One call at a time: redis-py's cluster pipeline fails as a whole when it meets
        # a refused connection, so a batch mixing dead and live nodes fails entirely.
        with anyio.fail_after(10):  # a bound, not a timing claim: it must not hang
            for job_id in ids:
                if job_id in on_victim:
                    with pytest.raises(StoreUnavailableError) as info:
                        await store.update(job_id, meta={"while": "down"})
                    assert info.value.outcome_unknown
                else:
                    assert await store.update(job_id, meta={"while": "down"}) == 2
        await anyio.to_thread.run_sync(cluster.restart, victim)
        with anyio.fail_after(10):  # back on its slots, empty, without the scripts
            for job_id in ids:
                job = await store.get(job_id)
                if job_id in on_victim:
                    assert job is None
                    await store.create(Job(id=job_id))
                else:
                    assert job is not None and job.version == 2
            assert len((await store.list()).jobs) == len(ids)


async def test_unreachable_cluster_raises_store_unavailable_promptly() -> None:
    with anyio.fail_after(15):  # a bound, not a timing claim: it must not hang
        async with RedisJobStore("redis://127.0.0.1:1", cluster=True) as store:
            with pytest.raises(StoreUnavailableError):
                await store.get("x")
            with pytest.raises(StoreUnavailableError) as info:
                await store.create(Job(id="x"))
            assert info.value.outcome_unknown
            with pytest.raises(StoreUnavailableError):
                await store.list()


def test_cluster_flag_with_a_plain_redis_client_is_refused() -> None:
    with pytest.raises(TypeError, match="RedisCluster"):
        RedisJobStore(aioredis.Redis(), cluster=True)
