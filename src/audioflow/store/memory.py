"""``MemoryJobStore``: the JobStore of one process, and the reference model of the contract.

Every method does its whole read-check-write without an ``await`` in between, so on one
event loop each operation is atomic. It is not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

import anyio
import msgspec

from ..errors import (
    InvalidTransitionError,
    JobExistsError,
    JobNotFoundError,
    JobTooLargeError,
    LeaseLostError,
)
from ..records import (
    FINISHED_STATUSES,
    TERMINAL_STATUSES,
    Checkpoint,
    EventKind,
    Job,
    JobChanges,
    JobEvent,
    JobPage,
    JobStatus,
    Lease,
    WindowTranscript,
)
from ._codec import WINDOW_PREFIX, normalize_values
from ._rules import (
    DEFAULT_EVENT_VALUE_BYTES,
    DEFAULT_MAX_FIELD_BYTES,
    DEFAULT_MAX_JOB_BYTES,
    DEFAULT_TTL,
    Clock,
    allowed_sources,
    check_job_id,
    check_lease_seconds,
    check_limits,
    check_max_attempts,
    check_ttl,
    lease_expired_error,
    order_key,
    to_datetime,
    transition_fields,
)
from .protocol import JobFields, check_fields

__all__ = ["MemoryJobStore"]

_WATCH_POLL = 1.0  # seconds a watcher waits before re-checking expiry


def changes_of(job: Job, names: Collection[str]) -> JobChanges:
    return JobChanges(**{n: getattr(job, n) for n in names})


ALL_FIELDS: tuple[str, ...] = JobChanges.__struct_fields__

#: A checked write: field name -> (typed value, {stored part: bytes}).
_Values = dict[str, tuple[Any, dict[str, int]]]


@dataclass(eq=False)
class _Entry:
    job: Job
    expires_at: float | None
    events: deque[JobEvent]
    sizes: dict[str, int]  # stored part (field, or checkpoint window) -> bytes of JSON
    dropped: int = 0  # cursor of the newest event trimmed from ``events``
    deleted: bool = False
    changed: anyio.Event | None = field(default=None)

    def notify(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None


class MemoryJobStore:
    """A JobStore that keeps jobs in this process's memory.

    Args:
        ttl: seconds a job lives after its last write; ``None`` keeps jobs forever.
        clock: returns the current time as epoch seconds (inject a fake one in tests).
        max_events: change events kept per job for ``watch`` replays.
        max_field_bytes: largest value of one field (or one checkpoint window), in
            bytes of JSON; larger writes raise ``JobTooLargeError``.
        max_job_bytes: largest whole job, in bytes of JSON.
        event_value_bytes: values larger than this are not copied into change events
            (the event names them in ``omitted``).

    Example::

        store = MemoryJobStore()
        await store.create(Job(id="a", source="talk.mp3"))
    """

    def __init__(
        self,
        *,
        ttl: float | None = DEFAULT_TTL,
        clock: Clock = time.time,
        max_events: int = 1000,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        max_job_bytes: int = DEFAULT_MAX_JOB_BYTES,
        event_value_bytes: int = DEFAULT_EVENT_VALUE_BYTES,
    ) -> None:
        self.ttl = check_ttl(ttl)
        check_limits(max_field_bytes, max_job_bytes, event_value_bytes)
        if not (isinstance(max_events, int) and max_events >= 1):
            raise ValueError(f"max_events must be an int >= 1, not {max_events!r}")
        self._clock = clock
        self._max_events = max_events
        self.max_field_bytes = max_field_bytes
        self.max_job_bytes = max_job_bytes
        self.event_value_bytes = event_value_bytes
        self._jobs: dict[str, _Entry] = {}
        self._cursor = 0  # store-wide, so a new job under an old id never reuses cursors

    def __repr__(self) -> str:
        return f"MemoryJobStore(jobs={len(self._jobs)}, ttl={self.ttl!r})"

    async def __aenter__(self) -> MemoryJobStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release; present so every store can be used the same way."""

    # ------------------------------------------------------------------ helpers

    def _live(self, job_id: str) -> _Entry | None:
        entry = self._jobs.get(job_id)
        if entry is None:
            return None
        if entry.expires_at is not None and self._clock() >= entry.expires_at:
            del self._jobs[job_id]
            entry.deleted = True
            entry.notify()
            return None
        return entry

    def _require(self, job_id: str) -> _Entry:
        entry = self._live(job_id)
        if entry is None:
            raise JobNotFoundError(job_id)
        return entry

    def _expiry(self) -> float | None:
        return None if self.ttl is None else self._clock() + self.ttl

    def _check(self, job_id: str, fields: Mapping[str, Any]) -> _Values:
        return normalize_values(fields, job_id=job_id, limit=self.max_field_bytes)

    def _sized(self, job_id: str, old: Mapping[str, int], values: _Values) -> dict[str, int]:
        """The job's part sizes after writing ``values`` (``JobTooLargeError`` if too big)."""
        sizes = dict(old)
        if "checkpoint" in values:  # a whole checkpoint replaces every stored window
            sizes = {k: v for k, v in sizes.items() if not k.startswith(WINDOW_PREFIX)}
        for _, parts in values.values():
            sizes.update(parts)
        total = sum(sizes.values())
        if total > self.max_job_bytes:
            raise JobTooLargeError(job_id, None, total, self.max_job_bytes)
        return sizes

    def _emit(
        self,
        entry: _Entry,
        kind: EventKind,
        changes: Mapping[str, Any],
        sizes: Mapping[str, int] | None = None,
    ) -> None:
        """Record one change event; values over ``event_value_bytes`` are left out."""
        sizes = sizes or {}
        omitted = tuple(n for n in changes if sizes.get(n, 0) > self.event_value_bytes)
        carried = {n: v for n, v in changes.items() if n not in omitted}
        if len(entry.events) == entry.events.maxlen:
            entry.dropped = int(entry.events[0].cursor)
        self._cursor += 1
        job = entry.job
        entry.events.append(
            JobEvent(
                cursor=str(self._cursor),
                kind=kind,
                job_id=job.id,
                version=job.version,
                status=job.status,
                changes=JobChanges(**carried),
                omitted=omitted,
            )
        )
        entry.notify()

    def _write(
        self,
        entry: _Entry,
        kind: EventKind,
        values: _Values,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Apply checked ``values`` (and store-owned ``extra`` fields) as one write."""
        sizes = self._sized(entry.job.id, entry.sizes, values)
        typed = {name: value for name, (value, _) in values.items()}
        entry.job = msgspec.structs.replace(
            entry.job, version=entry.job.version + 1, **typed, **(extra or {})
        )
        entry.sizes = sizes
        entry.expires_at = self._expiry()
        field_sizes = {name: sum(parts.values()) for name, (_, parts) in values.items()}
        changes = {n: v for n, v in {**typed, **(extra or {})}.items() if n in ALL_FIELDS}
        self._emit(entry, kind, changes, field_sizes)

    def _check_lease(self, entry: _Entry, token: str) -> None:
        lease = entry.job.lease
        if entry.job.status is not JobStatus.RUNNING or lease is None:
            raise LeaseLostError(entry.job.id, "the job holds no lease")
        if lease.token != token:
            raise LeaseLostError(entry.job.id, "another worker holds the lease")
        if lease.expires_at.timestamp() <= self._clock():
            raise LeaseLostError(entry.job.id, "the lease expired")

    # ------------------------------------------------------------------ contract

    async def create(self, job: Job, *, replace: bool = False) -> Job:
        check_job_id(job.id)
        names = [n for n in Job.__struct_fields__ if n not in ("id", "version")]
        values = self._check(job.id, {n: getattr(job, n) for n in names})
        old = self._live(job.id)
        if old is not None and not replace:
            raise JobExistsError(job.id)
        sizes = self._sized(job.id, {}, values)
        typed = {name: value for name, (value, _) in values.items()}
        job = Job(id=job.id, version=1, **typed)
        if old is not None:  # same entry: watchers of the old job see the replacement
            entry = old
            entry.job, entry.expires_at, entry.sizes = job, self._expiry(), sizes
        else:
            entry = _Entry(
                job=job,
                expires_at=self._expiry(),
                events=deque(maxlen=self._max_events),
                sizes=sizes,
            )
            self._jobs[job.id] = entry
        field_sizes = {name: sum(parts.values()) for name, (_, parts) in values.items()}
        self._emit(entry, EventKind.CREATED, {n: getattr(job, n) for n in ALL_FIELDS}, field_sizes)
        return job

    async def get(self, job_id: str) -> Job | None:
        entry = self._live(job_id)
        return None if entry is None else entry.job

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        check_fields(fields)
        if not fields:
            raise TypeError("update() needs at least one field to write")
        values = self._check(job_id, fields)
        entry = self._require(job_id)
        if lease_token is not None:  # first: a stale token is the writer's real news
            self._check_lease(entry, lease_token)
        if entry.job.status in TERMINAL_STATUSES:
            raise InvalidTransitionError(job_id, entry.job.status, None, "it is immutable")
        self._write(entry, EventKind.UPDATED, values)
        return entry.job.version

    async def add_windows(
        self,
        job_id: str,
        windows: Sequence[WindowTranscript],
        *,
        key: str,
        lease_token: str | None = None,
    ) -> int:
        # One check of the added windows gives them typed and their stored sizes.
        added, parts = self._check(
            job_id, {"checkpoint": Checkpoint(key=key, windows=tuple(windows))}
        )["checkpoint"]
        new_windows = added.windows
        key_size = parts.pop("checkpoint")
        entry = self._require(job_id)
        job = entry.job
        if lease_token is not None:
            self._check_lease(entry, lease_token)
        if job.status in TERMINAL_STATUSES:
            raise InvalidTransitionError(job_id, job.status, None, "it is immutable")
        kept: dict[int, WindowTranscript] = {}
        sizes = dict(entry.sizes)
        if job.checkpoint is not None and job.checkpoint.key == key:
            kept = {w.index: w for w in job.checkpoint.windows}
        else:  # another key: the stored windows are of no use to this checkpoint
            sizes = {k: v for k, v in sizes.items() if not k.startswith(WINDOW_PREFIX)}
        sizes["checkpoint"] = key_size
        sizes.update(parts)
        total = sum(sizes.values())
        if total > self.max_job_bytes:
            raise JobTooLargeError(job_id, None, total, self.max_job_bytes)
        kept.update((w.index, w) for w in new_windows)
        merged = Checkpoint(key=key, windows=tuple(kept[i] for i in sorted(kept)))
        entry.job = msgspec.structs.replace(job, version=job.version + 1, checkpoint=merged)
        entry.sizes = sizes
        entry.expires_at = self._expiry()
        self._emit(
            entry,
            EventKind.CHECKPOINTED,
            {"checkpoint": Checkpoint(key=key, windows=new_windows)},
            {"checkpoint": key_size + sum(parts.values())},
        )
        return entry.job.version

    async def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        lease_token: str | None = None,
        **fields: Unpack[JobFields],
    ) -> Job:
        to = JobStatus(to)
        sources = allowed_sources(to, expect)
        raw, drop_lease = transition_fields(to, fields, to_datetime(self._clock()))
        values = self._check(job_id, raw)
        entry = self._require(job_id)
        return self._transition(entry, to, sources, lease_token, values, drop_lease)

    def _transition(
        self,
        entry: _Entry,
        to: JobStatus,
        sources: frozenset[JobStatus],
        lease_token: str | None,
        values: _Values,
        drop_lease: bool,
        extra: Mapping[str, Any] | None = None,
    ) -> Job:
        job = entry.job
        if lease_token is not None:
            self._check_lease(entry, lease_token)
        if job.status not in sources:
            raise InvalidTransitionError(job.id, job.status, to)
        live = job.lease is not None and job.lease.expires_at.timestamp() > self._clock()
        if lease_token is None and job.status is JobStatus.RUNNING and to is JobStatus.QUEUED:
            if live:
                raise InvalidTransitionError(
                    job.id, job.status, to, "another worker holds a live lease"
                )
        extra = {"status": to, **(extra or {})}
        if drop_lease:
            extra["lease"] = None
        self._write(entry, EventKind.TRANSITIONED, values, extra)
        return entry.job

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job:
        check_lease_seconds(lease_seconds)
        now = self._clock()
        entry = self._require(job_id)
        lease = Lease(
            owner=owner, token=uuid.uuid4().hex, expires_at=to_datetime(now + lease_seconds)
        )
        raw, _ = transition_fields(JobStatus.RUNNING, {}, to_datetime(now))
        values = self._check(job_id, raw)
        extra = {"lease": lease, "attempts": entry.job.attempts + 1}
        return self._transition(
            entry, JobStatus.RUNNING, frozenset({JobStatus.QUEUED}), None, values, False, extra
        )

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        check_lease_seconds(lease_seconds)
        entry = self._require(job_id)
        self._check_lease(entry, lease_token)
        assert entry.job.lease is not None
        lease = msgspec.structs.replace(
            entry.job.lease, expires_at=to_datetime(self._clock() + lease_seconds)
        )
        self._write(entry, EventKind.UPDATED, {}, {"lease": lease})
        return lease

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]:
        check_max_attempts(max_attempts, limit)
        now = self._clock()
        expired = sorted(
            (e.job.lease.expires_at, e.job.id)
            for e in list(self._jobs.values())
            if e.job.status is JobStatus.RUNNING
            and e.job.lease is not None
            and e.job.lease.expires_at.timestamp() <= now
        )
        out = []
        for _, job_id in expired[:limit]:
            entry = self._live(job_id)
            if entry is None:
                continue
            out.append(self._expire_lease(entry, max_attempts, now))
        return out

    def _expire_lease(self, entry: _Entry, max_attempts: int, now: float) -> Job:
        running = frozenset({JobStatus.RUNNING})
        if entry.job.attempts >= max_attempts:
            error = lease_expired_error(entry.job.attempts, max_attempts)
            raw, drop = transition_fields(JobStatus.FAILED, {"error": error}, to_datetime(now))
            values = self._check(entry.job.id, raw)
            return self._transition(entry, JobStatus.FAILED, running, None, values, drop)
        raw, drop = transition_fields(JobStatus.QUEUED, {}, to_datetime(now))
        values = self._check(entry.job.id, raw)
        return self._transition(entry, JobStatus.QUEUED, running, None, values, drop)

    async def delete(self, job_id: str) -> bool:
        entry = self._live(job_id)
        if entry is None:
            return False
        del self._jobs[job_id]
        entry.deleted = True
        self._emit(entry, EventKind.DELETED, {})
        return True

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage:
        if not (isinstance(limit, int) and limit >= 1):
            raise ValueError("limit must be at least 1")
        keyed = sorted(
            (order_key(e.job), e.job)
            for job_id in list(self._jobs)
            if (e := self._live(job_id)) is not None
            and (status is None or e.job.status is status)
            and (cursor is None or order_key(e.job) > cursor)
        )
        page = keyed[:limit]
        next_cursor = page[-1][0] if len(keyed) > limit else None
        return JobPage(jobs=tuple(job for _, job in page), cursor=next_cursor)

    def _snapshot(self, entry: _Entry, *, resync: bool) -> JobEvent:
        job = entry.job
        last = entry.events[-1].cursor if entry.events else str(entry.dropped)
        return JobEvent(
            cursor=last,
            kind=EventKind.SNAPSHOT,
            job_id=job.id,
            version=job.version,
            status=job.status,
            changes=changes_of(job, ALL_FIELDS),
            resync=resync,
        )

    async def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]:
        after = _parse_cursor(cursor)
        entry = self._live(job_id)
        if entry is None:
            return
        if after is None:
            snapshot = self._snapshot(entry, resync=False)
            yield snapshot
            if snapshot.status in FINISHED_STATUSES:
                return
            after = int(snapshot.cursor)
        while True:
            if after < entry.dropped:  # events after the cursor were trimmed: resync
                if entry.deleted:
                    return
                snapshot = self._snapshot(entry, resync=True)
                yield snapshot
                if snapshot.status in FINISHED_STATUSES:
                    return
                after = int(snapshot.cursor)
                continue
            pending = [e for e in entry.events if int(e.cursor) > after]
            for event in pending:
                after = int(event.cursor)
                yield event
                if event.kind is EventKind.DELETED or event.status in FINISHED_STATUSES:
                    return
                if after < entry.dropped:
                    break  # the consumer fell behind while this batch was yielded
            if pending:
                continue
            if entry.deleted or self._live(job_id) is not entry:
                return
            if entry.job.status in FINISHED_STATUSES:
                return  # finished and nothing after the cursor: nothing will come
            if entry.changed is None:
                entry.changed = anyio.Event()
            with anyio.move_on_after(_WATCH_POLL):
                await entry.changed.wait()


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor.isascii() or not cursor.isdigit():
        raise ValueError(f"not a watch cursor of this store: {cursor!r}")
    return int(cursor)
