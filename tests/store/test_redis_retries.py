"""Lost replies: redis-py sends a write again, and the store applies it once.

A proxy between the store and Redis lets a script run on the server, drops its reply
and closes the connection; redis-py reconnects and sends the same command again (the
store's ``Retry``). Each write must report its first outcome, once: one version bump,
one change event. The proxy also checks that the retry was the very same request (same
operation id), so the tests prove the scripts' replay, not a second, different write.

The last two tests issue two writes of one store to one job together, the case where
a retry could meet a newer operation id of its own client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis
from _proxy import ReplyDroppingProxy, open_proxy  # type: ignore[import-not-found]
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from audioflow import (
    InvalidTransitionError,
    Job,
    JobStatus,
    Progress,
    RedisJobStore,
    StoreUnavailableError,
    TranscriptSegment,
    Usage,
    WindowTranscript,
)

pytestmark = pytest.mark.anyio

_BOUND = 10  # seconds; a bound against hangs, not a timing claim


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is bound to asyncio


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[ReplyDroppingProxy]:
    async with open_proxy(redis_url) as proxy:
        yield proxy


@pytest.fixture
async def store(proxy: ReplyDroppingProxy, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    """A URL-built store (so with the store's own ``Retry``) connected through ``proxy``.

    One write first: the connection is open and the scripts are loaded before any test
    arms the proxy, so the reply dropped is a script's, not a handshake's or NOSCRIPT.
    """
    async with RedisJobStore(proxy.url, prefix=key_prefix) as store:
        await store.create(Job(id="warm-up"))
        assert proxy.connections == 1
        yield store


async def _events(
    client: aioredis.Redis, store: RedisJobStore, job_id: str
) -> list[tuple[str, int]]:
    """(kind, version) of each event in the job's change stream, read on the server
    directly (not through the proxy)."""
    entries = await client.xrange(store.events_key(job_id))
    return [(fields[b"kind"].decode(), int(fields[b"version"])) for _, fields in entries]


def _assert_resent_once(proxy: ReplyDroppingProxy) -> None:
    """The reply was lost once, and the retry was the same request on a new connection."""
    assert proxy.lost.is_set()
    assert proxy.connections == 2
    first, *again = proxy.requests
    assert again == [first], "the retry must re-send the same operation (same op id)"


class OutcomeMisreported(AssertionError):
    """A re-sent write reported an outcome other than its first one."""


def _window(index: int) -> WindowTranscript:
    return WindowTranscript(
        index=index,
        segments=(TranscriptSegment(start=0.0, end=1.0, text=f"w{index}"),),
        language="en",
        usage=Usage(audio_seconds=1.0),
    )


async def test_update_whose_reply_was_lost_is_applied_once(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="u"))
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        version = await store.update("u", progress=Progress(fraction=0.5))
    _assert_resent_once(proxy)
    assert proxy.dropped.endswith(b":2\r\n")  # the first attempt ran: version 2, lost
    assert version == 2
    job = await store.get("u")
    assert job is not None and job.version == 2 and job.progress.fraction == 0.5
    events = await _events(redis_client, store, "u")
    assert events == [("created", 1), ("updated", 2)]


async def test_create_whose_reply_was_lost_returns_the_job(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        job = await store.create(Job(id="c", meta={"a": "1"}))  # no JobExistsError
    _assert_resent_once(proxy)
    assert b"OK" in proxy.dropped
    assert job.version == 1 and job.meta == {"a": "1"}
    assert await store.get("c") == job
    events = await _events(redis_client, store, "c")
    assert events == [("created", 1)]


async def test_transition_whose_reply_was_lost_reports_that_it_won(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="t"))
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        job = await store.transition("t", JobStatus.RUNNING, expect=[JobStatus.QUEUED])
    _assert_resent_once(proxy)
    assert b"OK" in proxy.dropped
    assert job.status is JobStatus.RUNNING and job.version == 2
    assert job.started_at is not None
    assert await store.get("t") == job
    events = await _events(redis_client, store, "t")
    assert events == [
        ("created", 1),
        ("transitioned", 2),
    ]


async def test_claim_whose_reply_was_lost_returns_the_stored_lease(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="l"))
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        job = await store.claim("l", owner="w1", lease_seconds=30)
    _assert_resent_once(proxy)
    assert b"OK" in proxy.dropped
    assert job.status is JobStatus.RUNNING and job.version == 2 and job.attempts == 1
    assert job.lease is not None and job.lease.owner == "w1"
    stored = await store.get("l")
    assert stored == job  # the lease returned is the lease stored
    events = await _events(redis_client, store, "l")
    assert events == [
        ("created", 1),
        ("transitioned", 2),
    ]
    lease = await store.renew("l", lease_token=job.lease.token, lease_seconds=60)
    assert lease.token == job.lease.token and lease.expires_at > job.lease.expires_at


async def test_add_windows_whose_reply_was_lost_is_applied_once(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="w"))
    await store.add_windows("w", [_window(0)], key="k")
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        version = await store.add_windows("w", [_window(1)], key="k")
    _assert_resent_once(proxy)
    assert proxy.dropped.endswith(b":3\r\n")
    assert version == 3
    job = await store.get("w")
    assert job is not None and job.version == 3 and job.checkpoint is not None
    assert [w.index for w in job.checkpoint.windows] == [0, 1]
    events = await _events(redis_client, store, "w")
    assert events == [
        ("created", 1),
        ("checkpointed", 2),
        ("checkpointed", 3),
    ]


async def test_renew_whose_reply_was_lost_is_applied_once(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="r"))
    claimed = await store.claim("r", owner="w1", lease_seconds=30)
    assert claimed.lease is not None
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        lease = await store.renew("r", lease_token=claimed.lease.token, lease_seconds=90)
    _assert_resent_once(proxy)
    assert b"OK" in proxy.dropped
    assert lease.token == claimed.lease.token
    assert lease.expires_at > claimed.lease.expires_at
    job = await store.get("r")
    assert job is not None and job.version == 3 and job.lease == lease
    events = await _events(redis_client, store, "r")
    assert events == [
        ("created", 1),
        ("transitioned", 2),
        ("updated", 3),
    ]
    # The lease index carries the renewed expiry (written after the script's reply).
    score = await redis_client.zscore(f"{store.prefix}index:leases", "r")
    assert score == lease.expires_at.timestamp()


async def test_delete_whose_reply_was_lost_returns_true(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="d"))
    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        deleted = await store.delete("d")
    _assert_resent_once(proxy)
    assert proxy.dropped == b":1\r\n"  # the first attempt deleted the job
    assert deleted is True
    assert await store.get("d") is None
    events = await _events(redis_client, store, "d")
    assert events == [("created", 1), ("deleted", 1)]
    # A later delete of the same, gone job is a new operation: it deleted nothing.
    assert await store.delete("d") is False


async def test_lost_reply_and_no_reconnect_is_an_unknown_outcome(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    await store.create(Job(id="x"))
    proxy.drop_next_reply(refuse_reconnects=True)
    with anyio.fail_after(_BOUND), pytest.raises(StoreUnavailableError) as info:
        await store.update("x", meta={"k": "v"})
    assert proxy.lost.is_set() and proxy.refused >= 1  # it did try again
    assert info.value.outcome_unknown is True
    assert "outcome of this write is unknown" in str(info.value)
    # Rightly "unknown": the write did land.
    assert await redis_client.hget(store.job_key("x"), "version") == b"2"


async def test_without_the_operation_record_the_resent_update_runs_twice(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    """The hazard is real: erase the script's record of the operation between the two
    attempts (as a script without operation ids would have none) and the same re-sent
    update is applied twice: two versions, two events, and a reply for the second."""
    await store.create(Job(id="twice"))
    key = store.job_key("twice")

    async def forget_operations() -> None:
        ops = [f for f in await redis_client.hkeys(key) if f.startswith(b"_op:")]
        assert ops, "the first attempt recorded its operation"
        await redis_client.hdel(key, *ops)

    proxy.drop_next_reply(before_close=forget_operations)
    with anyio.fail_after(_BOUND):
        version = await store.update("twice", progress=Progress(fraction=0.5))
    _assert_resent_once(proxy)
    assert version == 3  # not 2: the one update was applied twice
    events = await _events(redis_client, store, "twice")
    assert events == [
        ("created", 1),
        ("updated", 2),
        ("updated", 3),
    ]


async def test_plain_redis_client_resends_a_command_the_server_already_ran(
    proxy: ReplyDroppingProxy, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """The transport under the store: redis-py's retry of a lost reply runs a
    non-idempotent command twice (what every store write would do without op ids)."""
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)  # the store's
    client = aioredis.Redis.from_url(proxy.url, retry=retry)
    try:
        await client.ping()  # connect (and handshake) before arming
        proxy.drop_next_reply(b"HINCRBY")
        with anyio.fail_after(_BOUND):
            reply = await client.hincrby(f"{key_prefix}counter", "n", 1)
    finally:
        await client.aclose()
    assert proxy.lost.is_set() and proxy.dropped == b":1\r\n"
    assert reply == 2  # incremented once by the lost attempt, once by the retry
    assert await redis_client.hget(f"{key_prefix}counter", "n") == b"2"


# Two writes of one store to one job, issued together. Each job remembers only the
# newest operation id per client (``_op:<client>``), so had they shared the lost
# pipeline, the older one, sent again, would have found the newer id and could not
# have known its own outcome. The batcher keeps them in separate pipelines
# (``_batch``), so each one's retry finds its own id.


def _assert_lost_and_resent(proxy: ReplyDroppingProxy) -> None:
    """Like ``_assert_resent_once``: the lost pipeline was sent again as it was."""
    assert proxy.lost.is_set() and proxy.connections == 2
    assert proxy.requests[1] == proxy.requests[0]


async def test_refused_claim_that_shared_a_lost_pipeline_is_still_refused(
    proxy: ReplyDroppingProxy, store: RedisJobStore, redis_url: str, key_prefix: str
) -> None:
    async with RedisJobStore(redis_url, prefix=key_prefix) as other:
        await other.create(Job(id="s"))
        theirs = await other.claim("s", owner="other", lease_seconds=60)
    assert theirs.lease is not None
    outcome: dict[str, object] = {}

    async def claim() -> None:  # refused: another worker holds the job
        try:
            outcome["claim"] = await store.claim("s", owner="me", lease_seconds=60)
        except InvalidTransitionError as exc:
            outcome["claim"] = exc

    async def update() -> None:  # the same store's next write to the job, same batch
        outcome["update"] = await store.update("s", meta={"k": "v"})

    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(claim)
            tg.start_soon(update)
    _assert_lost_and_resent(proxy)
    assert b"CONFLICT" in proxy.dropped  # the claim's first (and only) outcome
    assert outcome["update"] == 3
    won = outcome["claim"]
    if not isinstance(won, InvalidTransitionError):
        assert isinstance(won, Job) and won.lease is not None
        raise OutcomeMisreported(
            f"the refused claim was reported as won, with {won.lease.owner!r}'s lease "
            f"(the same token: {won.lease.token == theirs.lease.token})"
        )


async def test_updates_that_shared_a_lost_pipeline_keep_their_own_versions(
    proxy: ReplyDroppingProxy, store: RedisJobStore
) -> None:
    await store.create(Job(id="v"))
    versions: list[int] = []

    async def update(n: int) -> None:
        versions.append(await store.update("v", meta={"n": str(n)}))

    proxy.drop_next_reply()
    with anyio.fail_after(_BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(update, 1)
            tg.start_soon(update, 2)
    _assert_lost_and_resent(proxy)
    job = await store.get("v")
    assert job is not None and job.version == 3  # applied once each
    if sorted(versions) != [2, 3]:
        raise OutcomeMisreported(f"the two updates reported versions {versions}")
