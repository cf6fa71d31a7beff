"""A JobStore written the way a third party would write one, proven by the shipped suite.

``SqliteJobStore`` uses only audioflow's public API: no base class, no private helpers.
It keeps one row per job (``msgspec.json.encode(job)`` plus the columns its queries
need) and one row per change in an ``events`` table that ``watch`` reads from a cursor.
Every SQLite call runs in a worker thread, one at a time, as one SQL transaction: that
is what makes each operation's read-check-write atomic. Walkthrough:
``docs/custom-jobstore.md``.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, Unpack

import anyio
import msgspec
import pytest

from audioflow import (
    EventKind,
    InvalidTransitionError,
    Job,
    JobChanges,
    JobCorruptedError,
    JobError,
    JobEvent,
    JobExistsError,
    JobFields,
    JobNotFoundError,
    JobPage,
    JobStatus,
    JobStore,
    Lease,
    LeaseLostError,
    StoreUnavailableError,
)
from audioflow.store import LEGAL_TRANSITIONS, UPDATABLE_FIELDS
from audioflow.testing import JobStoreConformance

T = TypeVar("T")
Db = sqlite3.Connection
S = JobStatus
FINISHED = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})  # a watch ends on these
TERMINAL = frozenset({S.COMPLETED, S.CANCELLED})  # immutable: every write is refused
ALL_FIELDS = JobChanges.__struct_fields__  # what CREATED and SNAPSHOT events carry
WATCH_POLL = 1.0  # seconds; a watcher also notices writes made by other processes

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,     -- for list(status=...) and requeue_expired
    created_us    INTEGER NOT NULL,  -- list order: creation time, then id
    lease_expires REAL,              -- for requeue_expired
    body          BLOB NOT NULL      -- msgspec.json.encode(job)
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_us, id);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_us, id);
CREATE INDEX IF NOT EXISTS jobs_by_lease ON jobs (status, lease_expires);
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,  -- the watch cursor; never reused
    job_id TEXT NOT NULL,
    event  BLOB NOT NULL                       -- msgspec.json.encode(JobEvent)
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
"""
# Keep a job's newest ``max_events`` events (a no-op while it has fewer).
TRIM_EVENTS = """DELETE FROM events WHERE job_id = ?1 AND seq <=
    (SELECT seq FROM events WHERE job_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)"""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _checked(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the names and value types of ``update``/``transition`` fields."""
    bad = set(fields) - UPDATABLE_FIELDS
    if bad:
        raise TypeError(f"cannot write job field(s) {sorted(bad)}")
    try:  # JobChanges types every field, so msgspec checks the values for us
        changes = msgspec.convert(dict(fields), JobChanges)
    except msgspec.ValidationError as exc:
        raise TypeError(f"bad job field value: {exc}") from None
    return {name: getattr(changes, name) for name in fields}


def _decode(job_id: str, body: bytes) -> Job:
    try:
        return msgspec.json.decode(body, type=Job)
    except msgspec.DecodeError as exc:  # name the field if msgspec's error path does
        match = re.search(r"\$\.(\w+)", str(exc))
        raise JobCorruptedError(job_id, match[1] if match else "body", str(exc)) from exc


def _event_of(job: Job, kind: EventKind, names: Iterable[str], cursor: str = "") -> JobEvent:
    changes = JobChanges(**{name: getattr(job, name) for name in names})
    return JobEvent(
        cursor=cursor,
        kind=kind,
        job_id=job.id,
        version=job.version,
        status=job.status,
        changes=changes,
    )


class SqliteJobStore:
    """A JobStore in one SQLite database file (or ``":memory:"``). No TTL: jobs stay."""

    def __init__(
        self, path: str | Path, *, clock: Callable[[], float] = time.time, max_events: int = 1000
    ) -> None:
        self.path, self._clock, self._max_events = str(path), clock, max_events
        self._db: Db | None = None
        self._limiter = anyio.CapacityLimiter(1)  # one SQLite call at a time
        self._changed: anyio.Event | None = None  # set (and dropped) after every write

    async def aclose(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await anyio.to_thread.run_sync(close, limiter=self._limiter)  # after calls in flight

    # ------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(db, *args)`` in a worker thread, as one SQL transaction."""

        def in_transaction() -> T:
            try:
                if self._db is None:
                    self._db = sqlite3.connect(
                        self.path, isolation_level=None, check_same_thread=False
                    )
                    self._db.executescript(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + SCHEMA
                    )
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = fn(self._db, *args)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:  # translate backend errors at the boundary
                raise StoreUnavailableError(f"sqlite: {exc}") from exc

        try:
            return await anyio.to_thread.run_sync(in_transaction, limiter=self._limiter)
        finally:
            if write and self._changed is not None:  # wake the watchers
                self._changed.set()
                self._changed = None

    def _load(self, db: Db, job_id: str) -> Job | None:
        row = db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _decode(job_id, row[0])

    def _require(self, db: Db, job_id: str) -> Job:
        job = self._load(db, job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def _save(self, db: Db, job: Job, kind: EventKind, names: Iterable[str]) -> Job:
        """Write the whole row and append the change event."""
        lease_expires = None if job.lease is None else job.lease.expires_at.timestamp()
        created_us = round(job.created_at.timestamp() * 1_000_000)
        row = (job.id, job.status, created_us, lease_expires, msgspec.json.encode(job))
        db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)", row)
        self._append(db, _event_of(job, kind, names))
        return job

    def _append(self, db: Db, event: JobEvent) -> None:
        sql = "INSERT INTO events (job_id, event) VALUES (?, ?)"
        db.execute(sql, (event.job_id, msgspec.json.encode(event)))
        db.execute(TRIM_EVENTS, (event.job_id, self._max_events))

    def _check_lease(self, job: Job, token: str) -> None:
        if job.status is not S.RUNNING or job.lease is None:
            raise LeaseLostError(job.id, "the job holds no lease")
        if job.lease.token != token:
            raise LeaseLostError(job.id, "another worker holds the lease")
        if job.lease.expires_at.timestamp() <= self._clock():
            raise LeaseLostError(job.id, "the lease expired")

    def _move(
        self, db: Db, job: Job, to: S, sources: Collection[S], token: str | None, **values: Any
    ) -> Job:
        """The compare-and-set that every status change goes through."""
        if job.status not in sources:
            raise InvalidTransitionError(job.id, job.status, to)
        now = self._clock()
        if token is not None:
            self._check_lease(job, token)
        elif to is S.QUEUED and job.lease and job.lease.expires_at.timestamp() > now:
            raise InvalidTransitionError(job.id, job.status, to, "a worker holds a live lease")
        if to is S.RUNNING:
            values.setdefault("started_at", _dt(now))
        else:
            values["lease"] = None  # leaving running drops the lease
            values.setdefault("finished_at", None if to is S.QUEUED else _dt(now))
        new = msgspec.structs.replace(job, status=to, version=job.version + 1, **values)
        return self._save(db, new, EventKind.TRANSITIONED, values)

    # ------------------------------------------------------------ the contract

    async def create(self, job: Job, *, replace: bool = False) -> Job:
        try:  # a round trip validates the record and returns exactly what get() will
            job = msgspec.json.decode(msgspec.json.encode(job), type=Job)
        except msgspec.ValidationError as exc:
            raise TypeError(f"bad job: {exc}") from None
        job = msgspec.structs.replace(job, version=1)

        def tx(db: Db) -> Job:
            if self._load(db, job.id) is None:  # forget the history of an earlier job
                db.execute("DELETE FROM events WHERE job_id = ?", (job.id,))
            elif not replace:
                raise JobExistsError(job.id)
            return self._save(db, job, EventKind.CREATED, ALL_FIELDS)

        return await self._run(tx)

    async def get(self, job_id: str) -> Job | None:
        return await self._run(self._load, job_id, write=False)

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        values = _checked(fields)
        if not values:
            raise TypeError("update() needs at least one field to write")

        def tx(db: Db) -> int:
            job = self._require(db, job_id)
            if job.status in TERMINAL:
                raise InvalidTransitionError(job_id, job.status, None, "it is immutable")
            if lease_token is not None:
                self._check_lease(job, lease_token)
            new = msgspec.structs.replace(job, version=job.version + 1, **values)
            return self._save(db, new, EventKind.UPDATED, values).version

        return await self._run(tx)

    async def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        lease_token: str | None = None,
        **fields: Unpack[JobFields],
    ) -> Job:
        to, values = S(to), _checked(fields)
        sources = LEGAL_TRANSITIONS[to]
        if expect is not None:
            sources = sources & {S(status) for status in expect}

        def tx(db: Db) -> Job:
            return self._move(db, self._require(db, job_id), to, sources, lease_token, **values)

        return await self._run(tx)

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job:
        def tx(db: Db) -> Job:
            job = self._require(db, job_id)
            expires_at = _dt(self._clock() + lease_seconds)
            lease = Lease(owner=owner, token=uuid.uuid4().hex, expires_at=expires_at)
            return self._move(
                db, job, S.RUNNING, {S.QUEUED}, None, lease=lease, attempts=job.attempts + 1
            )

        return await self._run(tx)

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        def tx(db: Db) -> Lease:
            job = self._require(db, job_id)
            self._check_lease(job, lease_token)
            assert job.lease is not None
            expires_at = _dt(self._clock() + lease_seconds)
            lease = msgspec.structs.replace(job.lease, expires_at=expires_at)
            new = msgspec.structs.replace(job, lease=lease, version=job.version + 1)
            self._save(db, new, EventKind.UPDATED, ["lease"])
            return lease

        return await self._run(tx)

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]:
        def tx(db: Db) -> list[Job]:
            sql = """SELECT id, body FROM jobs WHERE status = ? AND lease_expires <= ?
                     ORDER BY lease_expires, id LIMIT ?"""
            out = []
            for job_id, body in db.execute(sql, (S.RUNNING, self._clock(), limit)).fetchall():
                job = _decode(job_id, body)
                if job.attempts < max_attempts:
                    out.append(self._move(db, job, S.QUEUED, {S.RUNNING}, None))
                    continue
                message = f"lease expired after {job.attempts} attempt(s)"
                error = JobError(type="LeaseExpired", message=message)
                out.append(self._move(db, job, S.FAILED, {S.RUNNING}, None, error=error))
            return out

        return await self._run(tx)

    async def delete(self, job_id: str) -> bool:
        def tx(db: Db) -> bool:
            job = self._load(db, job_id)
            if job is None:
                return False
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            self._append(db, _event_of(job, EventKind.DELETED, ()))  # the history stays
            return True

        return await self._run(tx)

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        sql, args = "SELECT id, body, created_us FROM jobs WHERE 1", list[Any]()
        if status is not None:
            sql += " AND status = ?"
            args.append(S(status))
        if cursor is not None:  # our cursor is "<created_us>|<id>" of a page's last job
            created_us, _, after_id = cursor.partition("|")
            sql += " AND (created_us, id) > (?, ?)"
            args += [int(created_us), after_id]
        sql += " ORDER BY created_us, id LIMIT ?"
        args.append(limit + 1)
        rows = await self._run(lambda db: db.execute(sql, args).fetchall(), write=False)
        jobs = tuple(_decode(job_id, body) for job_id, body, _ in rows[:limit])
        last = rows[limit - 1] if len(rows) > limit else None
        return JobPage(jobs=jobs, cursor=None if last is None else f"{last[2]}|{last[0]}")

    async def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]:
        def start(db: Db) -> tuple[Job | None, int]:  # the state and its cursor, together
            sql = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?"
            return self._load(db, job_id), db.execute(sql, (job_id,)).fetchone()[0]

        def poll(db: Db, after: int) -> list[tuple[int, bytes]]:
            sql = "SELECT seq, event FROM events WHERE job_id = ? AND seq > ? ORDER BY seq"
            return db.execute(sql, (job_id, after)).fetchall()

        job, after = await self._run(start, write=False)
        if job is None:
            return
        if cursor is None:
            yield _event_of(job, EventKind.SNAPSHOT, ALL_FIELDS, cursor=str(after))
            if job.status in FINISHED:
                return
        else:
            after = int(cursor)
        while True:
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed  # taken before reading, so no wake-up is lost
            for seq, raw in await self._run(poll, after, write=False):
                after, event = seq, msgspec.json.decode(raw, type=JobEvent)
                yield msgspec.structs.replace(event, cursor=str(seq))
                if event.kind is EventKind.DELETED or event.status in FINISHED:
                    return
            with anyio.move_on_after(WATCH_POLL):  # a write through this store wakes us
                await changed.wait()


# ---------------------------------------------------------------- proving it


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every test on both event loops (anyio's plugin defaults to asyncio only)."""
    return request.param  # type: ignore[no-any-return]


class TestSqliteJobStore(JobStoreConformance):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.db_path = tmp_path / "jobs.sqlite3"

    @contextlib.asynccontextmanager
    async def make_store(self, *, clock: Callable[[], float]) -> AsyncIterator[SqliteJobStore]:
        async with contextlib.aclosing(SqliteJobStore(self.db_path, clock=clock)) as store:
            assert isinstance(store, JobStore)  # structurally: no base class involved
            yield store


@pytest.mark.anyio
async def test_survives_reopening_and_reports_corrupt_rows(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        created = await store.create(Job(id="a", source="talk.mp3"))
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        assert await store.get("a") == created

    def corrupt() -> None:  # what a bad migration or a stray writer might leave behind
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("""UPDATE jobs SET body = '{"id": "a", "progress": {"fraction": "x"}}'""")
            db.commit()

    await anyio.to_thread.run_sync(corrupt)
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        with pytest.raises(JobCorruptedError) as info:
            await store.get("a")
    assert (info.value.job_id, info.value.field) == ("a", "progress")
