"""``MemoryJobStore``: the JobStore of one process, and the reference model of the contract.

Every method does its whole read-check-write without an ``await`` in between, so on one
event loop each operation is atomic. It is not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any, Unpack

import anyio
import msgspec

from ..errors import (
    InvalidTransitionError,
    JobExistsError,
    JobNotFoundError,
    LeaseLostError,
)
from ..records import (
    FINISHED_STATUSES,
    TERMINAL_STATUSES,
    EventKind,
    Job,
    JobChanges,
    JobError,
    JobEvent,
    JobPage,
    JobStatus,
    Lease,
)
from ._rules import (
    DEFAULT_TTL,
    Clock,
    allowed_sources,
    check_lease_seconds,
    check_ttl,
    to_datetime,
    transition_fields,
)
from .protocol import JobFields, check_fields

__all__ = ["MemoryJobStore"]

_WATCH_POLL = 1.0  # seconds a watcher waits before re-checking expiry


def order_key(job: Job) -> str:
    """The key ``list`` orders by (creation time, then id), also used as its cursor."""
    micros = int(job.created_at.timestamp() * 1_000_000)
    return f"{micros:020d}|{job.id}"


def changes_of(job: Job, names: Collection[str]) -> JobChanges:
    return JobChanges(**{n: getattr(job, n) for n in names})


ALL_FIELDS: tuple[str, ...] = JobChanges.__struct_fields__


@dataclass(eq=False)
class _Entry:
    job: Job
    expires_at: float | None
    events: deque[JobEvent]
    seq: int = 0
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
    ) -> None:
        self.ttl = check_ttl(ttl)
        self._clock = clock
        self._max_events = max_events
        self._jobs: dict[str, _Entry] = {}

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

    def _emit(self, entry: _Entry, kind: EventKind, names: Collection[str]) -> None:
        entry.seq += 1
        job = entry.job
        entry.events.append(
            JobEvent(
                cursor=str(entry.seq),
                kind=kind,
                job_id=job.id,
                version=job.version,
                status=job.status,
                changes=changes_of(job, names),
            )
        )
        entry.notify()

    def _write(
        self, entry: _Entry, kind: EventKind, values: dict[str, Any], names: Collection[str]
    ) -> None:
        entry.job = msgspec.structs.replace(entry.job, version=entry.job.version + 1, **values)
        entry.expires_at = self._expiry()
        self._emit(entry, kind, names)

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
        old = self._live(job.id)
        if old is not None and not replace:
            raise JobExistsError(job.id)
        job = msgspec.structs.replace(job, version=1)
        if old is not None:  # same entry: watchers of the old job see the replacement
            entry = old
            entry.job, entry.expires_at = job, self._expiry()
        else:
            entry = _Entry(
                job=job, expires_at=self._expiry(), events=deque(maxlen=self._max_events)
            )
            self._jobs[job.id] = entry
        self._emit(entry, EventKind.CREATED, ALL_FIELDS)
        return job

    async def get(self, job_id: str) -> Job | None:
        entry = self._live(job_id)
        return None if entry is None else entry.job

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        check_fields(fields)
        entry = self._require(job_id)
        if entry.job.status in TERMINAL_STATUSES:
            raise InvalidTransitionError(job_id, entry.job.status, None, "it is immutable")
        if lease_token is not None:
            self._check_lease(entry, lease_token)
        self._write(entry, EventKind.UPDATED, dict(fields), fields.keys())
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
        values, drop_lease = transition_fields(to, fields, to_datetime(self._clock()))
        entry = self._require(job_id)
        return self._transition(entry, to, sources, lease_token, values, drop_lease)

    def _transition(
        self,
        entry: _Entry,
        to: JobStatus,
        sources: frozenset[JobStatus],
        lease_token: str | None,
        values: dict[str, Any],
        drop_lease: bool,
    ) -> Job:
        job = entry.job
        if job.status not in sources:
            raise InvalidTransitionError(job.id, job.status, to)
        if lease_token is not None:
            self._check_lease(entry, lease_token)
        elif job.status is JobStatus.RUNNING and to is JobStatus.QUEUED and job.lease:
            if job.lease.expires_at.timestamp() > self._clock():
                raise InvalidTransitionError(
                    job.id, job.status, to, "another worker holds a live lease"
                )
        if drop_lease:
            values["lease"] = None
        self._write(entry, EventKind.TRANSITIONED, {"status": to, **values}, values.keys())
        return entry.job

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job:
        check_lease_seconds(lease_seconds)
        now = self._clock()
        entry = self._require(job_id)
        lease = Lease(
            owner=owner, token=uuid.uuid4().hex, expires_at=to_datetime(now + lease_seconds)
        )
        values, _ = transition_fields(JobStatus.RUNNING, {}, to_datetime(now))
        values.update(lease=lease, attempts=entry.job.attempts + 1)
        return self._transition(
            entry, JobStatus.RUNNING, frozenset({JobStatus.QUEUED}), None, values, False
        )

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        check_lease_seconds(lease_seconds)
        entry = self._require(job_id)
        self._check_lease(entry, lease_token)
        assert entry.job.lease is not None
        lease = msgspec.structs.replace(
            entry.job.lease, expires_at=to_datetime(self._clock() + lease_seconds)
        )
        self._write(entry, EventKind.UPDATED, {"lease": lease}, ("lease",))
        return lease

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]:
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
            error = JobError(
                type="LeaseExpired",
                message=f"lease expired after {entry.job.attempts} attempt(s)",
                stage=entry.job.progress.stage,
            )
            values, drop = transition_fields(JobStatus.FAILED, {"error": error}, to_datetime(now))
            return self._transition(entry, JobStatus.FAILED, running, None, values, drop)
        values, drop = transition_fields(JobStatus.QUEUED, {}, to_datetime(now))
        return self._transition(entry, JobStatus.QUEUED, running, None, values, drop)

    async def delete(self, job_id: str) -> bool:
        entry = self._live(job_id)
        if entry is None:
            return False
        del self._jobs[job_id]
        entry.deleted = True
        self._emit(entry, EventKind.DELETED, ())
        return True

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage:
        if limit < 1:
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

    async def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]:
        entry = self._live(job_id)
        if entry is None:
            return
        if cursor is None:
            job = entry.job
            after = entry.seq
            yield JobEvent(
                cursor=str(after),
                kind=EventKind.SNAPSHOT,
                job_id=job.id,
                version=job.version,
                status=job.status,
                changes=changes_of(job, ALL_FIELDS),
            )
            if job.status in FINISHED_STATUSES:
                return
        else:
            after = int(cursor)
        while True:
            pending = [e for e in entry.events if int(e.cursor) > after]
            for event in pending:
                after = int(event.cursor)
                yield event
                if event.kind is EventKind.DELETED or event.status in FINISHED_STATUSES:
                    return
            if entry.deleted or self._live(job_id) is not entry:
                return
            if entry.changed is None:
                entry.changed = anyio.Event()
            with anyio.move_on_after(_WATCH_POLL):
                await entry.changed.wait()
