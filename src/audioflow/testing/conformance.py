"""``JobStoreConformance``: the contract of ``JobStore`` as a pytest test class.

Subclass it in your test suite, give it a store factory, and pytest runs every check
that the built-in stores pass::

    import contextlib
    from audioflow.testing import JobStoreConformance

    class TestMyStore(JobStoreConformance):
        @contextlib.asynccontextmanager
        async def make_store(self, *, clock):
            store = MyStore(clock=clock)   # lease expiry must follow ``clock``
            try:
                yield store
            finally:
                await store.aclose()

The factory gets a ``clock`` (a :class:`FakeClock`: epoch seconds that move only when
the test says) which the store must use for lease expiry, so lease tests need no
sleeping. Tests are ``anyio`` tests: define an ``anyio_backend`` fixture to choose the
event loops (the default of anyio's plugin is asyncio only). Override ``ttl_of`` to also
check TTL handling. Requires pytest (``pip install 'audioflow[test]'``).

If ``make_store`` also accepts the keyword arguments ``max_events``,
``max_field_bytes``, ``max_job_bytes`` and ``event_value_bytes`` (the built-in stores'
constructor arguments of those names), the suite also checks history trimming and
resyncs, size limits, and values left out of events; otherwise those tests are skipped.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import anyio
import msgspec
import pytest

from ..errors import (
    InvalidTransitionError,
    JobExistsError,
    JobNotFoundError,
    JobTooLargeError,
    LeaseLostError,
)
from ..records import (
    Checkpoint,
    EventKind,
    Job,
    JobError,
    JobEvent,
    JobResult,
    JobStatus,
    Progress,
    TranscriptSegment,
    Usage,
    WindowTranscript,
)
from ..store.protocol import LEGAL_TRANSITIONS, JobStore

__all__ = ["FakeClock", "JobStoreConformance"]

S = JobStatus


class FakeClock:
    """Epoch seconds that advance only through :meth:`advance`."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now!r})"


def _new_id() -> str:
    return f"conf-{uuid.uuid4().hex[:12]}"


async def _drive_to(store: JobStore, job_id: str, status: JobStatus) -> None:
    """Move a fresh (queued) job to ``status`` along legal transitions."""
    path = {
        S.QUEUED: [],
        S.RUNNING: [S.RUNNING],
        S.COMPLETED: [S.RUNNING, S.COMPLETED],
        S.FAILED: [S.RUNNING, S.FAILED],
        S.CANCELLED: [S.CANCELLED],
    }[status]
    for step in path:
        await store.transition(job_id, step)


def _window(index: int, text: str = "hello") -> WindowTranscript:
    segment = TranscriptSegment(start=0.0, end=1.0, text=text)
    return WindowTranscript(
        index=index, segments=(segment,), language="en", usage=Usage(audio_seconds=1.0)
    )


_LIMITS = ("max_events", "max_field_bytes", "max_job_bytes", "event_value_bytes")


def _versions_are_whole(events: list[JobEvent], final: int) -> None:
    """``events`` (a watch from a cursor) miss nothing silently and reach ``final``.

    Every event follows the one before it (version + 1), unless it is a resync
    snapshot, which stands for everything up to its version.
    """
    assert events, "the watch yielded nothing"
    seen = 0
    for event in events:
        if event.kind is EventKind.SNAPSHOT:
            assert event.resync or seen == 0, event
            assert event.version >= seen, event
        elif event.kind is EventKind.CREATED:
            assert event.version == 1, event
        else:
            assert event.version == seen + 1, f"gap after version {seen}: {event}"
        seen = event.version
    assert seen == final


class JobStoreConformance:
    """The JobStore contract (docs/stores.md). Subclass and implement :meth:`make_store`."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    def make_store(
        self, *, clock: Callable[[], float]
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        """An async context manager yielding a fresh, empty store that uses ``clock``."""
        raise NotImplementedError("subclasses of JobStoreConformance implement make_store")

    async def ttl_of(self, store: Any, job_id: str) -> float | None:
        """Seconds left before ``job_id`` expires (``None``: never). Override to test TTL."""
        pytest.skip("this store's subclass does not override ttl_of")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @contextlib.asynccontextmanager
    async def _limited(self, clock: FakeClock, **limits: int) -> AsyncIterator[JobStore]:
        """A store built with the given limits, or a skip if ``make_store`` takes none."""
        params = inspect.signature(self.make_store).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if not takes_all and not all(name in params for name in _LIMITS):
            pytest.skip("make_store does not accept " + ", ".join(_LIMITS))
        async with self.make_store(clock=clock, **limits) as store:
            yield store

    @pytest.fixture
    async def store(self, clock: FakeClock) -> AsyncIterator[JobStore]:
        async with self.make_store(clock=clock) as store:
            yield store

    async def _job(self, store: JobStore, **fields: Any) -> Job:
        return await store.create(Job(id=_new_id(), source="talk.mp3", **fields))

    async def _job_at(self, store: JobStore, clock: FakeClock) -> Job:
        """A job created "now" on the test clock (so creation order is the clock's)."""
        created = datetime.fromtimestamp(clock(), UTC)
        return await store.create(Job(id=_new_id(), source="talk.mp3", created_at=created))

    # ------------------------------------------------------------------ create / get

    async def test_create_keeps_the_callers_created_at(self, store: JobStore) -> None:
        # The store does not stamp its own clock over the caller's creation time.
        when = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
        created = await store.create(Job(id=_new_id(), source="a.wav", created_at=when))
        assert (created.created_at, created.version) == (when, 1)
        got = await store.get(created.id)
        assert got is not None and got.created_at == when

    async def test_create_then_get_round_trips(self, store: JobStore) -> None:
        job = Job(id=_new_id(), source="a.wav", meta={"team": "x"}, progress=Progress(stage="v"))
        created = await store.create(job)
        assert created.version == 1
        assert await store.get(job.id) == created
        assert created.meta == {"team": "x"}
        assert created.status is S.QUEUED

    async def test_create_existing_id_raises(self, store: JobStore) -> None:
        job = await self._job(store)
        with pytest.raises(JobExistsError) as info:
            await store.create(job)
        assert info.value.job_id == job.id

    async def test_create_replace_swaps_every_field(self, store: JobStore) -> None:
        job = await self._job(store, meta={"old": "1"})
        await store.update(job.id, progress=Progress(stage="decode", fraction=0.5))
        new = await store.create(Job(id=job.id, source="b.wav"), replace=True)
        got = await store.get(job.id)
        assert got == new
        assert got.meta == {}
        assert got.progress == Progress()
        assert got.version == 1

    async def test_get_missing_is_none(self, store: JobStore) -> None:
        assert await store.get(_new_id()) is None

    # ------------------------------------------------------------------ update

    async def test_update_writes_only_named_fields(self, store: JobStore) -> None:
        job = await self._job(store, meta={"keep": "me"})
        version = await store.update(job.id, progress=Progress(stage="vad", fraction=0.25))
        assert version == 2
        got = await store.get(job.id)
        assert got is not None
        assert got.progress == Progress(stage="vad", fraction=0.25)
        assert got.meta == {"keep": "me"}
        assert got.source == job.source
        assert got.version == 2

    async def test_update_missing_job_creates_nothing(self, store: JobStore) -> None:
        job_id = _new_id()
        with pytest.raises(JobNotFoundError):
            await store.update(job_id, meta={"a": "b"})
        assert await store.get(job_id) is None

    async def test_update_rejects_bad_fields(self, store: JobStore) -> None:
        job = await self._job(store)
        with pytest.raises(TypeError):
            await store.update(job.id, status=S.RUNNING)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            await store.update(job.id, version=7)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            await store.update(job.id, progress="half way")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await store.update(job.id)
        assert (await store.get(job.id)) == job

    async def test_update_values_read_back_typed(self, store: JobStore) -> None:
        job = await self._job(store)
        await store.update(job.id, progress={"stage": "vad", "fraction": 0.5})  # type: ignore[arg-type]
        got = await store.get(job.id)
        assert got is not None
        assert got.progress == Progress(stage="vad", fraction=0.5)

    @pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED])
    async def test_update_terminal_job_rejected(self, store: JobStore, status: JobStatus) -> None:
        job = await self._job(store)
        await _drive_to(store, job.id, status)
        before = await store.get(job.id)
        with pytest.raises(InvalidTransitionError):
            await store.update(job.id, meta={"late": "write"})
        assert await store.get(job.id) == before

    async def test_update_failed_job_allowed(self, store: JobStore) -> None:
        job = await self._job(store)
        await _drive_to(store, job.id, S.FAILED)
        await store.update(job.id, meta={"note": "post-mortem"})
        got = await store.get(job.id)
        assert got is not None
        assert got.meta == {"note": "post-mortem"}

    async def test_concurrent_updates_of_different_fields_all_land(self, store: JobStore) -> None:
        job = await self._job(store)
        rounds = 25

        async def write_meta() -> None:
            for i in range(rounds):
                await store.update(job.id, meta={"i": str(i)})

        async def write_progress() -> None:
            for i in range(rounds):
                await store.update(job.id, progress=Progress(fraction=i / rounds))

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_meta)
            tg.start_soon(write_progress)
        got = await store.get(job.id)
        assert got is not None
        assert got.meta == {"i": str(rounds - 1)}
        assert got.progress.fraction == (rounds - 1) / rounds
        assert got.version == 1 + 2 * rounds

    # ------------------------------------------------------------------ transition

    async def test_transition_path_sets_timestamps(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        job = await self._job(store)
        running = await store.transition(job.id, S.RUNNING, expect={S.QUEUED})
        assert running.status is S.RUNNING
        assert running.started_at is not None
        assert running.started_at.timestamp() == pytest.approx(clock())
        clock.advance(5)
        done = await store.transition(job.id, S.COMPLETED, result=JobResult())
        assert done.status is S.COMPLETED
        assert done.result == JobResult()
        assert done.finished_at is not None
        assert done.finished_at - running.started_at == timedelta(seconds=5)
        assert done.version == 3
        assert await store.get(job.id) == done

    @pytest.mark.parametrize("src", list(S))
    @pytest.mark.parametrize("dst", list(S))
    async def test_transition_table(self, store: JobStore, src: JobStatus, dst: JobStatus) -> None:
        job = await self._job(store)
        await _drive_to(store, job.id, src)
        if src in LEGAL_TRANSITIONS[dst]:
            moved = await store.transition(job.id, dst)
            assert moved.status is dst
        else:
            before = await store.get(job.id)
            with pytest.raises(InvalidTransitionError) as info:
                await store.transition(job.id, dst)
            assert info.value.current == src
            assert await store.get(job.id) == before

    async def test_transition_expect_takes_several_statuses(self, store: JobStore) -> None:
        # ``expect`` is a collection: any of its statuses may be the current one.
        job = await self._job(store)
        moved = await store.transition(job.id, S.CANCELLED, expect={S.QUEUED, S.RUNNING})
        assert moved.status is S.CANCELLED
        other = await self._job(store)
        await store.transition(other.id, S.RUNNING)
        moved = await store.transition(other.id, S.CANCELLED, expect=[S.QUEUED, S.RUNNING])
        assert moved.status is S.CANCELLED

    async def test_transition_expect_mismatch(self, store: JobStore) -> None:
        job = await self._job(store)
        with pytest.raises(InvalidTransitionError) as info:
            await store.transition(job.id, S.CANCELLED, expect={S.RUNNING})
        assert info.value.current == S.QUEUED

    async def test_transition_missing_job(self, store: JobStore) -> None:
        with pytest.raises(JobNotFoundError):
            await store.transition(_new_id(), S.RUNNING)

    async def test_concurrent_transitions_exactly_one_wins(self, store: JobStore) -> None:
        job = await self._job(store)
        wins: list[Job] = []
        losses: list[InvalidTransitionError] = []

        async def contend() -> None:
            try:
                wins.append(await store.transition(job.id, S.RUNNING, expect={S.QUEUED}))
            except InvalidTransitionError as exc:
                losses.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(contend)
        assert len(wins) == 1
        assert len(losses) == 99
        assert all(exc.current == S.RUNNING for exc in losses)
        got = await store.get(job.id)
        assert got is not None
        assert got.version == 2

    # ------------------------------------------------------------------ leases

    async def test_claim_sets_lease_and_counts_attempt(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="worker-1", lease_seconds=30)
        assert claimed.status is S.RUNNING
        assert claimed.attempts == 1
        assert claimed.lease is not None
        assert claimed.lease.owner == "worker-1"
        assert claimed.lease.expires_at.timestamp() == pytest.approx(clock() + 30)
        with pytest.raises(InvalidTransitionError):
            await store.claim(job.id, owner="worker-2", lease_seconds=30)

    async def test_writes_with_wrong_or_expired_token_lose(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        token = claimed.lease.token
        await store.update(job.id, lease_token=token, progress=Progress(fraction=0.1))
        with pytest.raises(LeaseLostError):
            await store.update(job.id, lease_token="not-the-token", meta={"x": "y"})
        clock.advance(11)
        with pytest.raises(LeaseLostError):
            await store.update(job.id, lease_token=token, meta={"x": "y"})
        with pytest.raises(LeaseLostError):
            await store.transition(job.id, S.COMPLETED, lease_token=token)
        got = await store.get(job.id)
        assert got is not None
        assert got.meta == {}
        assert got.status is S.RUNNING

    async def test_renew_extends_live_lease_only(self, store: JobStore, clock: FakeClock) -> None:
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        clock.advance(8)
        lease = await store.renew(job.id, lease_token=claimed.lease.token, lease_seconds=10)
        assert lease.token == claimed.lease.token
        assert lease.owner == "w"
        assert lease.expires_at.timestamp() == pytest.approx(clock() + 10)
        clock.advance(8)  # past the first expiry, inside the renewed one
        await store.update(job.id, lease_token=lease.token, meta={"still": "mine"})
        got = await store.get(job.id)
        assert got is not None
        assert got.lease == lease
        clock.advance(3)
        with pytest.raises(LeaseLostError):
            await store.renew(job.id, lease_token=lease.token, lease_seconds=10)

    async def test_renew_is_a_write_that_watchers_see(self, store: JobStore) -> None:
        # A renewal bumps the version and emits an UPDATED event carrying the lease.
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        lease = await store.renew(job.id, lease_token=claimed.lease.token, lease_seconds=20)
        got = await store.get(job.id)
        assert got is not None and got.version == claimed.version + 1
        await store.transition(job.id, S.COMPLETED, lease_token=lease.token)  # ends the watch
        with anyio.fail_after(10):
            history = [e async for e in store.watch(job.id, cursor="0")]
        [renewal] = [e for e in history if e.version == got.version]
        assert renewal.kind is EventKind.UPDATED
        assert renewal.changes.lease == lease

    async def test_requeue_expired_then_fail_after_max_attempts(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        job = await self._job(store)
        live = await self._job(store)
        await store.claim(live.id, owner="w-live", lease_seconds=1000)
        first = await store.claim(job.id, owner="w1", lease_seconds=10)
        assert first.lease is not None
        assert await store.requeue_expired(max_attempts=2) == []
        clock.advance(11)
        requeued = await store.requeue_expired(max_attempts=2)
        assert [j.id for j in requeued] == [job.id]
        assert requeued[0].status is S.QUEUED
        assert requeued[0].lease is None
        assert requeued[0].attempts == 1
        second = await store.claim(job.id, owner="w2", lease_seconds=10)
        assert second.attempts == 2
        assert second.lease is not None
        assert second.lease.token != first.lease.token
        with pytest.raises(LeaseLostError):  # the first worker is fenced off
            await store.update(job.id, lease_token=first.lease.token, meta={"z": "1"})
        clock.advance(11)
        failed = await store.requeue_expired(max_attempts=2)
        assert [j.status for j in failed] == [S.FAILED]
        assert failed[0].error is not None
        assert failed[0].error.type == "LeaseExpired"
        assert failed[0].finished_at is not None
        still = await store.get(live.id)
        assert still is not None
        assert still.status is S.RUNNING

    async def test_release_to_queue_needs_lease_or_expiry(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        with pytest.raises(InvalidTransitionError):
            await store.transition(job.id, S.QUEUED)
        back = await store.transition(job.id, S.QUEUED, lease_token=claimed.lease.token)
        assert back.status is S.QUEUED
        assert back.lease is None

    async def test_finishing_drops_the_lease(self, store: JobStore) -> None:
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        failed = await store.transition(
            job.id,
            S.FAILED,
            lease_token=claimed.lease.token,
            error=JobError(type="ValueError", message="boom", stage="decode"),
        )
        assert failed.lease is None
        assert failed.error is not None
        retried = await store.transition(job.id, S.QUEUED, expect={S.FAILED})
        assert retried.status is S.QUEUED
        assert retried.finished_at is None

    # ------------------------------------------------------------------ delete / list

    async def test_delete(self, store: JobStore) -> None:
        job = await self._job(store)
        assert await store.delete(job.id) is True
        assert await store.get(job.id) is None
        assert await store.delete(job.id) is False
        await store.create(job)  # the id is free again

    async def test_a_page_holds_its_jobs_in_a_tuple(self, store: JobStore) -> None:
        await self._job(store)
        page = await store.list(limit=1)
        assert isinstance(page.jobs, tuple) and isinstance(page.corrupt, tuple)
        assert len(page.jobs) == 1

    async def test_list_pages_in_creation_order(self, store: JobStore, clock: FakeClock) -> None:
        ids = []
        for _ in range(7):
            clock.advance(1)
            ids.append((await self._job_at(store, clock)).id)
        await store.transition(ids[1], S.RUNNING)
        await store.transition(ids[4], S.RUNNING)
        await store.delete(ids[6])
        seen, cursor, pages = [], None, 0
        while True:
            page = await store.list(limit=2, cursor=cursor)
            assert len(page.jobs) <= 2
            seen += [j.id for j in page.jobs]
            pages += 1
            if page.cursor is None:
                break
            cursor = page.cursor
        assert [i for i in seen if i in ids] == ids[:6]
        running = await store.list(status=S.RUNNING, limit=10)
        assert [j.id for j in running.jobs if j.id in ids] == [ids[1], ids[4]]
        assert all(j.status is S.RUNNING for j in running.jobs)
        with pytest.raises(ValueError, match="limit"):
            await store.list(limit=0)

    # ------------------------------------------------------------------ watch

    async def test_watch_yields_every_change_in_order(self, store: JobStore) -> None:
        job = await self._job(store)
        events: list[JobEvent] = []
        snapshot_seen = anyio.Event()

        async def watcher() -> None:
            async for event in store.watch(job.id):
                events.append(event)
                if event.kind is EventKind.SNAPSHOT:
                    snapshot_seen.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watcher)
                await snapshot_seen.wait()
                await store.transition(job.id, S.RUNNING)
                for i in range(10):
                    await store.update(job.id, progress=Progress(fraction=i / 10))
                await store.transition(job.id, S.COMPLETED)
        assert events[0].kind is EventKind.SNAPSHOT
        assert events[0].version == 1
        assert [e.version for e in events] == list(range(1, 14))
        assert [e.kind for e in events[1:]] == [EventKind.TRANSITIONED] + [
            EventKind.UPDATED
        ] * 10 + [EventKind.TRANSITIONED]
        assert [e.changes.progress.fraction for e in events[2:12]] == [  # type: ignore[union-attr]
            i / 10 for i in range(10)
        ]
        assert events[-1].status is S.COMPLETED

    async def test_watch_after_completion_sees_terminal_state(self, store: JobStore) -> None:
        job = await self._job(store)
        await _drive_to(store, job.id, S.COMPLETED)
        with anyio.fail_after(10):
            events = [e async for e in store.watch(job.id)]
        assert len(events) == 1
        assert events[0].status is S.COMPLETED
        assert events[0].kind is EventKind.SNAPSHOT
        assert events[0].changes.finished_at is not None

    async def test_watch_replays_from_cursor(self, store: JobStore) -> None:
        job = await self._job(store)
        await store.update(job.id, meta={"a": "1"})
        await store.update(job.id, meta={"a": "2"})
        await _drive_to(store, job.id, S.CANCELLED)
        with anyio.fail_after(10):
            everything = [e async for e in store.watch(job.id, cursor="0")]
        assert [e.kind for e in everything] == [
            EventKind.CREATED,
            EventKind.UPDATED,
            EventKind.UPDATED,
            EventKind.TRANSITIONED,
        ]
        assert [e.version for e in everything] == [1, 2, 3, 4]
        with anyio.fail_after(10):
            rest = [e async for e in store.watch(job.id, cursor=everything[1].cursor)]
        assert rest == everything[2:]

    async def test_watch_ends_when_job_deleted(self, store: JobStore) -> None:
        job = await self._job(store)
        events: list[JobEvent] = []
        started = anyio.Event()

        async def watcher() -> None:
            async for event in store.watch(job.id):
                events.append(event)
                started.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watcher)
                await started.wait()
                await store.delete(job.id)
        assert [e.kind for e in events] == [EventKind.SNAPSHOT, EventKind.DELETED]

    async def test_the_deleted_event_carries_the_last_version_and_status(
        self, store: JobStore
    ) -> None:
        job = await self._job(store)
        await store.transition(job.id, S.RUNNING)
        version = await store.update(job.id, meta={"last": "write"})
        events: list[JobEvent] = []
        started = anyio.Event()

        async def watcher() -> None:
            async for event in store.watch(job.id):
                events.append(event)
                started.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watcher)
                await started.wait()
                await store.delete(job.id)
        deleted = events[-1]
        assert deleted.kind is EventKind.DELETED
        # The delete does not bump the version, and changes nothing a watcher could apply.
        assert (deleted.version, deleted.status) == (version, S.RUNNING)
        assert deleted.changes.fields() == ()

    async def test_watch_missing_job_yields_nothing(self, store: JobStore) -> None:
        with anyio.fail_after(10):
            assert [e async for e in store.watch(_new_id())] == []

    # ------------------------------------------------------------------ checkpoints

    async def test_add_windows_merges_by_index_and_bumps_version(self, store: JobStore) -> None:
        job = await self._job(store)
        assert await store.add_windows(job.id, [_window(1), _window(0)], key="k1") == 2
        assert await store.add_windows(job.id, [_window(2), _window(1, "again")], key="k1") == 3
        got = await store.get(job.id)
        assert got is not None and got.checkpoint is not None
        assert got.checkpoint.key == "k1"
        assert [w.index for w in got.checkpoint.windows] == [0, 1, 2]
        assert got.checkpoint.windows[1] == _window(1, "again")
        assert got.version == 3

    async def test_add_windows_with_another_key_replaces_the_checkpoint(
        self, store: JobStore
    ) -> None:
        job = await self._job(store)
        await store.add_windows(job.id, [_window(0), _window(1)], key="old")
        await store.add_windows(job.id, [_window(5)], key="new")
        got = await store.get(job.id)
        assert got is not None
        assert got.checkpoint == Checkpoint(key="new", windows=(_window(5),))

    async def test_add_windows_event_carries_only_the_added_windows(self, store: JobStore) -> None:
        job = await self._job(store)
        await store.add_windows(job.id, [_window(0)], key="k")
        await store.add_windows(job.id, [_window(1)], key="k")
        await _drive_to(store, job.id, S.CANCELLED)
        with anyio.fail_after(10):
            events = [e async for e in store.watch(job.id, cursor="0")]
        kinds = [e.kind for e in events]
        assert kinds == [EventKind.CREATED, EventKind.CHECKPOINTED, EventKind.CHECKPOINTED,
                         EventKind.TRANSITIONED]  # fmt: skip
        assert events[2].changes.checkpoint == Checkpoint(key="k", windows=(_window(1),))
        assert events[2].version == 3

    async def test_add_windows_is_fenced_like_update(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        with pytest.raises(JobNotFoundError):
            await store.add_windows(_new_id(), [_window(0)], key="k")
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        with pytest.raises(LeaseLostError):
            await store.add_windows(job.id, [_window(0)], key="k", lease_token="stale")
        await store.add_windows(job.id, [_window(0)], key="k", lease_token=claimed.lease.token)
        await store.transition(job.id, S.COMPLETED, lease_token=claimed.lease.token)
        with pytest.raises(InvalidTransitionError):
            await store.add_windows(job.id, [_window(1)], key="k")
        got = await store.get(job.id)
        assert got is not None and got.checkpoint is not None
        assert [w.index for w in got.checkpoint.windows] == [0]

    async def test_a_token_that_no_longer_holds_the_job_loses_every_write(
        self, store: JobStore
    ) -> None:
        # Once the job left ``running`` (finished, requeued, taken over), a writer that
        # still carries the old token learns that it lost the lease, whatever the
        # job's status: that is the news it must act on (stop, write nothing more).
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        token = claimed.lease.token
        await store.transition(job.id, S.COMPLETED, lease_token=token)
        with pytest.raises(LeaseLostError):
            await store.update(job.id, lease_token=token, meta={"late": "1"})
        with pytest.raises(LeaseLostError):
            await store.add_windows(job.id, [_window(0)], key="k", lease_token=token)
        with pytest.raises(LeaseLostError):
            await store.transition(job.id, S.FAILED, lease_token=token)

    async def test_whole_checkpoint_writes_replace_the_windows(self, store: JobStore) -> None:
        job = await self._job(store)
        await store.add_windows(job.id, [_window(0), _window(1)], key="k")
        await store.update(job.id, checkpoint=Checkpoint(key="k", windows=(_window(7),)))
        got = await store.get(job.id)
        assert got is not None
        assert got.checkpoint == Checkpoint(key="k", windows=(_window(7),))
        await store.update(job.id, checkpoint=None)
        got = await store.get(job.id)
        assert got is not None and got.checkpoint is None
        await store.add_windows(job.id, [_window(3)], key="k")
        got = await store.get(job.id)
        assert got is not None
        assert got.checkpoint == Checkpoint(key="k", windows=(_window(3),))

    async def test_usage_round_trips(self, store: JobStore) -> None:
        job = await self._job(store)
        usage = Usage(audio_seconds=12.5, billed_seconds=12.0, cost=0.01, requests=3)
        await store.update(job.id, usage=usage)
        got = await store.get(job.id)
        assert got is not None and got.usage == usage

    # ------------------------------------------------------------------ validation

    @pytest.mark.parametrize(
        ("fields", "error"),
        [
            ({"progress": Progress(fraction=7.5)}, ValueError),
            ({"progress": Progress(fraction=-0.1)}, ValueError),
            ({"progress": Progress(fraction=math.nan)}, ValueError),
            ({"attempts": -5}, ValueError),
            ({"started_at": datetime(2030, 1, 1)}, ValueError),
            ({"progress": Progress(updated_at=datetime(2030, 1, 1))}, ValueError),
            ({"source": b"x"}, TypeError),
            ({"meta": {"a": 1}}, TypeError),
            ({"attempts": True}, TypeError),
        ],
        ids=lambda v: type(v).__name__ if isinstance(v, type) else "-".join(v),
    )
    async def test_update_refuses_bad_values(
        self, store: JobStore, fields: dict[str, Any], error: type[Exception]
    ) -> None:
        job = await self._job(store)
        with pytest.raises(error):
            await store.update(job.id, **fields)
        assert await store.get(job.id) == job

    async def test_create_refuses_bad_values(self, store: JobStore) -> None:
        job_id = _new_id()
        with pytest.raises(TypeError):
            await store.create(Job(id=job_id, source=b"x"))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="naive"):
            await store.create(Job(id=job_id, created_at=datetime(2030, 1, 1)))
        with pytest.raises(ValueError, match="attempts"):
            await store.create(Job(id=job_id, attempts=-1))
        assert await store.get(job_id) is None

    @pytest.mark.parametrize("seconds", [0, -1, math.inf, math.nan, 1e12])
    async def test_unusable_lease_lengths_are_refused(
        self, store: JobStore, seconds: float
    ) -> None:
        job = await self._job(store)
        with pytest.raises(ValueError, match="lease_seconds"):
            await store.claim(job.id, owner="w", lease_seconds=seconds)
        got = await store.get(job.id)
        assert got is not None and got.status is S.QUEUED and got.attempts == 0

    # ------------------------------------------------------------------ boundaries

    async def test_lease_expires_exactly_at_expires_at(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        job = await self._job(store)
        claimed = await store.claim(job.id, owner="w", lease_seconds=10)
        assert claimed.lease is not None
        clock.advance(10)  # now == expires_at: expired
        with pytest.raises(LeaseLostError):
            await store.update(job.id, lease_token=claimed.lease.token, meta={"x": "y"})
        with pytest.raises(LeaseLostError):
            await store.renew(job.id, lease_token=claimed.lease.token, lease_seconds=10)
        requeued = await store.requeue_expired()
        assert [j.id for j in requeued] == [job.id]

    async def test_create_after_delete_starts_a_new_history(self, store: JobStore) -> None:
        job = await self._job(store)
        await store.update(job.id, meta={"old": "1"})
        await store.delete(job.id)
        await store.create(Job(id=job.id, source="new.wav"))
        await store.transition(job.id, S.CANCELLED)
        with anyio.fail_after(10):
            events = [e async for e in store.watch(job.id, cursor="0")]
        assert [e.kind for e in events] == [EventKind.CREATED, EventKind.TRANSITIONED]
        assert events[0].changes.source == "new.wav"

    async def test_list_breaks_creation_time_ties_by_id(
        self, store: JobStore, clock: FakeClock
    ) -> None:
        created = datetime.fromtimestamp(clock(), UTC)
        tag = uuid.uuid4().hex[:8]
        for suffix in ("c", "a", "b"):
            await store.create(Job(id=f"tie-{tag}-{suffix}", created_at=created))
        seen, cursor = [], None
        while True:
            page = await store.list(limit=1, cursor=cursor)
            seen += [j.id for j in page.jobs if j.id.startswith(f"tie-{tag}")]
            if page.cursor is None:
                break
            cursor = page.cursor
        assert seen == [f"tie-{tag}-a", f"tie-{tag}-b", f"tie-{tag}-c"]

    # ------------------------------------------------------------------ watch edges

    @pytest.mark.parametrize("status", [S.COMPLETED, S.FAILED, S.CANCELLED])
    async def test_watch_of_a_finished_job_ends_at_once_for_any_cursor(
        self, store: JobStore, status: JobStatus
    ) -> None:
        job = await self._job(store)
        await store.update(job.id, meta={"a": "1"})
        await _drive_to(store, job.id, status)
        with anyio.fail_after(10):
            history = [e async for e in store.watch(job.id, cursor="0")]
            assert history[-1].status is status
            for event in history:
                rest = [e async for e in store.watch(job.id, cursor=event.cursor)]
                assert rest == history[history.index(event) + 1 :]
            snapshot = [e async for e in store.watch(job.id)]
        assert [e.kind for e in snapshot] == [EventKind.SNAPSHOT]
        assert [e async for e in store.watch(job.id, cursor=snapshot[0].cursor)] == []

    @pytest.mark.parametrize("cursor", ["abc", "", "-1", "1.5", "0-x"])
    async def test_watch_refuses_a_malformed_cursor(self, store: JobStore, cursor: str) -> None:
        job = await self._job(store)
        with anyio.fail_after(10), pytest.raises(ValueError, match="cursor"):
            async for _ in store.watch(job.id, cursor=cursor):
                pass

    async def test_watch_from_the_start_of_a_trimmed_history_resyncs(
        self, clock: FakeClock
    ) -> None:
        async with self._limited(clock, max_events=5) as store:
            job = await self._job(store)
            for i in range(300):
                await store.update(job.id, progress=Progress(fraction=i / 300))
            await store.transition(job.id, S.CANCELLED)
            with anyio.fail_after(30):
                events = [e async for e in store.watch(job.id, cursor="0")]
        # 302 events cannot all be kept under max_events=5, however loosely it trims.
        assert events[0].kind is EventKind.SNAPSHOT and events[0].resync
        _versions_are_whole(events, final=302)
        assert events[-1].status is S.CANCELLED

    async def test_watcher_that_falls_behind_gets_a_resync_snapshot(
        self, clock: FakeClock
    ) -> None:
        async with self._limited(clock, max_events=5) as store:
            job = await self._job(store)
            events: list[JobEvent] = []
            first = anyio.Event()
            written = anyio.Event()

            async def watcher() -> None:
                async for event in store.watch(job.id):
                    events.append(event)
                    if len(events) == 1:
                        first.set()
                        await written.wait()  # fall behind: every write lands meanwhile

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watcher)
                    await first.wait()
                    for i in range(300):
                        await store.update(job.id, meta={"i": str(i)})
                    await store.transition(job.id, S.CANCELLED)
                    written.set()
        assert any(e.resync for e in events)
        _versions_are_whole(events, final=302)
        assert events[-1].status is S.CANCELLED
        assert events[-1].changes.meta in ({"i": "299"}, msgspec.UNSET)

    # ------------------------------------------------------------------ sizes

    async def test_oversized_field_is_refused_before_writing(self, clock: FakeClock) -> None:
        async with self._limited(clock, max_field_bytes=1000, max_job_bytes=100_000) as store:
            job = await self._job(store)
            with pytest.raises(JobTooLargeError) as info:
                await store.update(job.id, meta={"big": "x" * 2000})
            assert info.value.field == "meta" and info.value.limit == 1000
            with pytest.raises(JobTooLargeError):
                await store.add_windows(job.id, [_window(0, "x" * 2000)], key="k")
            with pytest.raises(JobTooLargeError):
                await store.create(Job(id=_new_id(), meta={"big": "x" * 2000}))
            assert await store.get(job.id) == job

    async def test_job_over_its_total_limit_is_refused(self, clock: FakeClock) -> None:
        async with self._limited(clock, max_field_bytes=10_000, max_job_bytes=20_000) as store:
            job = await self._job(store)
            for i in range(3):
                await store.add_windows(job.id, [_window(i, "x" * 5000)], key="k")
            before = await store.get(job.id)
            with pytest.raises(JobTooLargeError) as info:
                await store.update(job.id, meta={"big": "y" * 8000})
            assert info.value.field is None and info.value.limit == 20_000
            with pytest.raises(JobTooLargeError):
                await store.add_windows(job.id, [_window(3, "x" * 8000)], key="k")
            assert await store.get(job.id) == before
            # Replacing a window by a same-sized one fits: the old one's bytes are freed.
            await store.add_windows(job.id, [_window(0, "z" * 5000)], key="k")

    async def test_large_values_are_named_not_copied_in_events(self, clock: FakeClock) -> None:
        async with self._limited(clock, event_value_bytes=1000) as store:
            job = await self._job(store)
            await store.update(job.id, meta={"big": "x" * 5000}, progress=Progress(fraction=0.5))
            await _drive_to(store, job.id, S.CANCELLED)
            with anyio.fail_after(10):
                events = [e async for e in store.watch(job.id, cursor="0")]
            update = events[1]
            assert update.omitted == ("meta",)
            assert update.changes.meta is msgspec.UNSET
            assert update.changes.progress == Progress(fraction=0.5)
            got = await store.get(job.id)
            assert got is not None and got.meta == {"big": "x" * 5000}

    # ------------------------------------------------------------------ TTL (optional)

    async def test_ttl_set_by_create_and_refreshed_by_writes(self, store: JobStore) -> None:
        job = await self._job(store)
        first = await self.ttl_of(store, job.id)
        assert first is not None
        assert first > 0
        await store.update(job.id, meta={"touch": "1"})
        second = await self.ttl_of(store, job.id)
        assert second is not None
        assert second > 0
