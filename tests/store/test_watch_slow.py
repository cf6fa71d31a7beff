"""Slow consumers: a watcher that falls behind a burst of writes misses nothing silently.

A writer makes 5,000 updates to one job, more than the 1,000 events a store keeps by
default, then completes it. Three watchers consume slower than the writer, made slow
deterministically: every ``PAUSE_EVERY`` events they stop until the writer is ``LAG``
versions past the event in hand, so the events right after it are no longer retained
(Redis trims its stream approximately, keeping up to ~100 more than asked). Each watcher
must see every version in order, or a ``resync`` snapshot standing for the ones it
could no longer be given, and must end with the completed job.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from audioflow import (
    EventKind,
    Job,
    JobEvent,
    JobStatus,
    JobStore,
    MemoryJobStore,
    Progress,
    RedisJobStore,
)
from support.redis_server import redis_url

pytestmark = pytest.mark.anyio

UPDATES = 5_000
FINAL = UPDATES + 3  # created (1), running (2), the updates (3 … 5002), completed
PAUSE_EVERY = 250
LAG = 2_000  # > the 1,000 events kept, plus Redis's approximate slack
_BOUND = 60  # seconds; a bound against hangs, not a timing claim
# Less than the second either store waits before it looks again for a new event: a
# finished job's watch that waited even once would overrun it.
_AT_ONCE = 0.9


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, anyio_backend: tuple[str, object]
) -> AsyncIterator[JobStore]:
    """Each store with its defaults (``max_events=1000``)."""
    if request.param == "memory":
        async with MemoryJobStore() as memory:
            yield memory
        return
    if anyio_backend[0] != "asyncio":
        pytest.skip("redis.asyncio runs on asyncio only")
    prefix = request.getfixturevalue("key_prefix")
    async with RedisJobStore(redis_url(), prefix=prefix) as redis_store:
        yield redis_store


class WriterPosition:
    """The version the writer's last write returned; watchers wait on it, not on time."""

    def __init__(self) -> None:
        self.version = 0
        self._moved = anyio.Event()

    def advance(self, version: int) -> None:
        self.version = version
        self._moved.set()
        self._moved = anyio.Event()

    async def reached(self, version: int) -> None:
        while self.version < version:
            await self._moved.wait()


def _progress(i: int) -> Progress:
    return Progress(fraction=i / UPDATES, message=str(i))


async def _burst(store: JobStore, job_id: str, writer: WriterPosition, updates: int) -> None:
    writer.advance((await store.transition(job_id, JobStatus.RUNNING)).version)
    for i in range(1, updates + 1):
        writer.advance(await store.update(job_id, progress=_progress(i)))
        # MemoryJobStore.update never suspends: let the watchers run between writes.
        await anyio.lowlevel.checkpoint()


async def _watch_slowly(
    store: JobStore,
    job_id: str,
    cursor: str | None,
    writer: WriterPosition,
    seen: list[JobEvent],
    first: anyio.Event,
) -> None:
    """Collect the watch into ``seen``; every PAUSE_EVERY events, fall LAG behind."""
    async for event in store.watch(job_id, cursor=cursor):
        seen.append(event)
        first.set()
        if len(seen) % PAUSE_EVERY == 0:
            await writer.reached(min(event.version + LAG, FINAL))


def _assert_whole(events: list[JobEvent], *, after: int | None) -> None:
    """Nothing skipped silently, and the end is the completed job.

    ``after`` is the version of the event at the watcher's cursor (0 for ``"0"``), or
    ``None`` for a watch without a cursor (which starts with a plain snapshot).
    """
    assert events, "the watch yielded nothing"
    seen = 0 if after is None else after
    for i, event in enumerate(events):
        if event.kind is EventKind.SNAPSHOT:
            assert event.resync or (i == 0 and after is None), event
            assert event.version >= seen, event
        elif event.kind is EventKind.CREATED:
            assert event.version == 1, event
        else:
            assert event.version == seen + 1, f"gap after version {seen}: {event}"
        if event.kind in (EventKind.SNAPSHOT, EventKind.UPDATED) and event.version > 2:
            # the state carried is the state at that version (update i made version i+2)
            assert event.changes.progress == _progress(event.version - 2), event
        seen = event.version
    last = events[-1]
    assert last.version == FINAL and last.status is JobStatus.COMPLETED, last
    assert last.kind in (EventKind.TRANSITIONED, EventKind.SNAPSHOT), last


async def test_slow_watchers_resync_over_what_they_missed(store: JobStore) -> None:
    job = await store.create(Job(id="burst"))
    writer = WriterPosition()
    writer.advance(job.version)
    live: list[JobEvent] = []  # watching since before the burst
    stale: list[JobEvent] = []  # from a cursor taken then, started halfway through
    replay: list[JobEvent] = []  # cursor "0", started after the burst
    live_first, stale_first, replay_first = anyio.Event(), anyio.Event(), anyio.Event()

    with anyio.fail_after(_BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_slowly, store, job.id, None, writer, live, live_first)
            await live_first.wait()
            early = live[0].cursor  # the snapshot's: the created event's cursor

            async def stale_watcher() -> None:
                await writer.reached(UPDATES // 2)
                await _watch_slowly(store, job.id, early, writer, stale, stale_first)

            tg.start_soon(stale_watcher)
            await _burst(store, job.id, writer, UPDATES)
            tg.start_soon(_watch_slowly, store, job.id, "0", writer, replay, replay_first)
            await replay_first.wait()
            done = await store.transition(job.id, JobStatus.COMPLETED)
            writer.advance(done.version)

    assert done.version == FINAL
    assert live[0].kind is EventKind.SNAPSHOT and live[0].version == 1
    _assert_whole(live, after=None)
    _assert_whole(stale, after=1)
    _assert_whole(replay, after=0)
    # The slow watchers were given resyncs, not every event: the path is exercised.
    assert any(e.resync for e in live) and len(live) < FINAL
    assert stale[0].resync  # its cursor's successors were long gone
    # Started after the burst: the state at the end of it, then the completion.
    assert [(e.kind, e.resync, e.version) for e in replay] == [
        (EventKind.SNAPSHOT, True, FINAL - 1),
        (EventKind.TRANSITIONED, False, FINAL),
    ]


async def test_finished_job_watch_returns_at_once_for_any_cursor(store: JobStore) -> None:
    updates = 1_500  # enough that the first events are trimmed away
    job = await store.create(Job(id="done"))
    writer = WriterPosition()
    async with contextlib.aclosing(store.watch(job.id)) as watch:  # type: ignore[type-var]
        early = (await anext(watch)).cursor  # the created event's cursor
    await _burst(store, job.id, writer, updates)
    async with contextlib.aclosing(store.watch(job.id)) as watch:  # type: ignore[type-var]
        before_end = (await anext(watch)).cursor  # the last update's cursor
    done = await store.transition(job.id, JobStatus.COMPLETED)

    async def at_once(cursor: str | None) -> list[JobEvent]:
        with anyio.fail_after(_AT_ONCE):
            return [e async for e in store.watch(job.id, cursor=cursor)]

    (last,) = await at_once(before_end)
    assert last.version == done.version and last.status is JobStatus.COMPLETED
    assert await at_once(last.cursor) == []
    (snapshot,) = await at_once(None)
    assert snapshot.kind is EventKind.SNAPSHOT and not snapshot.resync
    assert snapshot.version == done.version and snapshot.status is JobStatus.COMPLETED
    assert await at_once(snapshot.cursor) == []
    for cursor in ("0", early):  # from before the history kept: the final state
        (resync,) = await at_once(cursor)
        assert resync.kind is EventKind.SNAPSHOT and resync.resync, resync
        assert resync.version == done.version and resync.status is JobStatus.COMPLETED


async def test_slow_watcher_of_a_job_deleted_behind_it_ends_without_a_gap(
    store: JobStore,
) -> None:
    """Deleted while its watcher lags: no state is left to resync to, so the watch ends
    (without going on past the trimmed events as if none were missing)."""
    job = await store.create(Job(id="gone"))
    writer = WriterPosition()
    seen: list[JobEvent] = []
    first = anyio.Event()
    deleted = anyio.Event()

    async def lagging() -> None:
        async for event in store.watch(job.id):
            seen.append(event)
            first.set()
            await deleted.wait()

    with anyio.fail_after(_BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lagging)
            await first.wait()
            await _burst(store, job.id, writer, 3_000)
            assert await store.delete(job.id)
            deleted.set()
    version = 0
    for event in seen:
        if event.kind is EventKind.SNAPSHOT:
            assert event is seen[0] or event.resync, event
        elif event.kind is EventKind.DELETED:
            assert event.version == version, f"gap after version {version}: {event}"
        else:
            assert event.version == version + 1, f"gap after version {version}: {event}"
        version = event.version
    assert seen[-1].kind in (EventKind.SNAPSHOT, EventKind.DELETED), seen[-1]
