"""The reference third-party JobStore: SQLite, written only against audioflow's public API.

``SqliteJobStore`` has no base class and uses no private helper: it is what
``docs/custom-jobstore.md`` builds, shipped so that it can be read, subclassed or used
where one machine is enough (tests, a single-process service). It passes
:class:`~audioflow.testing.JobStoreConformance` on asyncio and trio.

It keeps one row per job (``msgspec.json.encode(job)`` without its checkpoint's windows,
plus the columns its queries need), one row per checkpoint window, so that
``add_windows`` writes the windows it adds and nothing else, and one row per change in
an ``events`` table that ``watch`` reads from a cursor. Every SQLite call runs in a
worker thread, one at a time, as one SQL transaction: that is what makes each
operation's read-check-write atomic. Jobs never expire (no TTL); ``watch`` polls the
table once a second for writes made by other processes.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, Unpack

import anyio
import msgspec

from .. import (
    Checkpoint,
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
    Lease,
    LeaseLostError,
    StoreUnavailableError,
    WindowTranscript,
)
from ..errors import JobTooLargeError
from ..store import (
    FINISHED_STATUSES,
    LEGAL_TRANSITIONS,
    TERMINAL_STATUSES,
    check_fields,
    check_values,
)

__all__ = ["SqliteJobStore"]

T = TypeVar("T")
Db = sqlite3.Connection
S = JobStatus
ALL_FIELDS = JobChanges.__struct_fields__  # what CREATED and SNAPSHOT events carry
WATCH_POLL = 1.0  # seconds; a watcher also notices writes made by other processes
MAX_LEASE_SECONDS = 30 * 24 * 3600  # a lease is a heartbeat: renewed, never long
KiB, MiB = 1024, 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,     -- for list(status=...) and requeue_expired
    created_us    INTEGER NOT NULL,  -- list order: creation time, then id
    lease_expires REAL,              -- for requeue_expired
    window_bytes  INTEGER NOT NULL,  -- JSON bytes of its rows in `windows`
    body          BLOB NOT NULL      -- msgspec.json.encode(job), checkpoint key only
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_us, id);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_us, id);
CREATE INDEX IF NOT EXISTS jobs_by_lease ON jobs (status, lease_expires);
CREATE TABLE IF NOT EXISTS windows (
    job_id TEXT NOT NULL,
    idx    INTEGER NOT NULL,         -- WindowTranscript.index
    body   BLOB NOT NULL,            -- msgspec.json.encode(window)
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,  -- the watch cursor; never reused
    job_id TEXT NOT NULL,
    event  BLOB NOT NULL                       -- msgspec.json.encode(JobEvent)
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS trims (
    job_id  TEXT PRIMARY KEY,
    trimmed INTEGER NOT NULL         -- seq of the newest event trimmed from its history
);
"""

# One encoder and one typed decoder per record, made once.
_ENCODER = msgspec.json.Encoder()
_JOB = msgspec.json.Decoder(Job)
_WINDOW = msgspec.json.Decoder(WindowTranscript)
_EVENT = msgspec.json.Decoder(JobEvent)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _check_lease_seconds(seconds: float) -> None:
    if not (isinstance(seconds, int | float) and 0 < seconds <= MAX_LEASE_SECONDS):
        raise ValueError(f"lease_seconds must be in (0, {MAX_LEASE_SECONDS}], not {seconds!r}")


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not (isinstance(cursor, str) and cursor.isascii() and cursor.isdigit()):
        raise ValueError(f"not a watch cursor of this store: {cursor!r}")
    return int(cursor)


def _decode(job_id: str, body: bytes) -> Job:
    try:
        return _JOB.decode(body)
    except msgspec.DecodeError as exc:  # name the field if msgspec's error path does
        match = re.search(r"\$\.(\w+)", str(exc))
        raise JobCorruptedError(job_id, match[1] if match else "body", str(exc)) from exc


def _event(
    job: Job,
    kind: EventKind,
    changes: Mapping[str, Any],
    *,
    cursor: str = "",
    omitted: tuple[str, ...] = (),
    resync: bool = False,
) -> JobEvent:
    return JobEvent(
        cursor=cursor,
        kind=kind,
        job_id=job.id,
        version=job.version,
        status=job.status,
        changes=JobChanges(**changes),
        omitted=omitted,
        resync=resync,
    )


def _snapshot(job: Job, cursor: int, *, resync: bool = False) -> JobEvent:
    changes = {name: getattr(job, name) for name in ALL_FIELDS}
    return _event(job, EventKind.SNAPSHOT, changes, cursor=str(cursor), resync=resync)


class SqliteJobStore:
    """A JobStore in one SQLite database file (or ``":memory:"``). No TTL: jobs stay.

    Args:
        path: the database file.
        clock: returns epoch seconds; every "now" (lease expiry, timestamps) is read
            from it.
        max_events: change events kept per job for ``watch`` replays.
        max_field_bytes: largest field value (or checkpoint window), in bytes of JSON;
            larger writes raise ``JobTooLargeError``.
        max_job_bytes: largest whole job, in bytes of JSON.
        event_value_bytes: values larger than this are not copied into change events;
            the event names them in ``omitted``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        max_events: int = 1000,
        max_field_bytes: int = 16 * MiB,
        max_job_bytes: int = 64 * MiB,
        event_value_bytes: int = 64 * KiB,
    ) -> None:
        limits = {
            "max_events": max_events,
            "max_field_bytes": max_field_bytes,
            "max_job_bytes": max_job_bytes,
            "event_value_bytes": event_value_bytes,
        }
        for name, value in limits.items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")
        self.path, self._clock = str(path), clock
        self.max_events, self.max_field_bytes = max_events, max_field_bytes
        self.max_job_bytes, self.event_value_bytes = max_job_bytes, event_value_bytes
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

    def _load(self, db: Db, job_id: str, *, windows: bool = True) -> Job | None:
        """The job, or ``None``. ``windows=False`` leaves its checkpoint's windows unread."""
        row = db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        job = _decode(job_id, row[0])
        return self._with_windows(db, job) if windows else job

    def _with_windows(self, db: Db, job: Job) -> Job:
        """``job`` with its checkpoint's windows read back from the ``windows`` table."""
        if job.checkpoint is None:
            return job
        sql = "SELECT body FROM windows WHERE job_id = ? ORDER BY idx"
        try:
            windows = tuple(_WINDOW.decode(raw) for (raw,) in db.execute(sql, (job.id,)))
        except msgspec.DecodeError as exc:
            raise JobCorruptedError(job.id, "checkpoint", str(exc)) from exc
        checkpoint = Checkpoint(key=job.checkpoint.key, windows=windows)
        return msgspec.structs.replace(job, checkpoint=checkpoint)

    def _require(self, db: Db, job_id: str) -> Job:
        """The job without its windows (writes never need them), or ``JobNotFoundError``."""
        job = self._load(db, job_id, windows=False)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def _window_bytes(self, db: Db, job_id: str, indices: Sequence[int] | None = None) -> int:
        """JSON bytes of the job's stored windows: all of them, or those of ``indices``."""
        if indices is None:  # kept up to date in the job's row: no scan of its windows
            row = db.execute("SELECT window_bytes FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return 0 if row is None else int(row[0])
        sql = """SELECT COALESCE(SUM(length(body)), 0) FROM windows
                 WHERE job_id = ? AND idx IN (SELECT value FROM json_each(?))"""
        return int(db.execute(sql, (job_id, _ENCODER.encode(indices).decode())).fetchone()[0])

    def _save(
        self,
        db: Db,
        job: Job,
        kind: EventKind,
        changes: Mapping[str, Any],
        *,
        merge: bool = False,
    ) -> None:
        """Write ``job`` and append the event of this write; every write but ``delete`` ends here.

        ``changes`` are the values this write set; the event carries them. A
        ``checkpoint`` among them stores its windows as rows of ``windows``, in place of
        the job's stored windows, or with ``merge`` beside them (one of the same index
        is replaced). The job's row keeps only the checkpoint's key. Sizes are checked
        before anything is written, without reading the stored windows, so the cost of
        a write follows what it writes.
        """
        # Sizes first: a write refused here has written nothing.
        encoded = {name: _ENCODER.encode(value) for name, value in changes.items()}
        checkpoint = changes.get("checkpoint")
        windows = [(w.index, _ENCODER.encode(w)) for w in checkpoint.windows] if checkpoint else []
        parts = [(name, raw) for name, raw in encoded.items() if name != "checkpoint"]
        parts += [("checkpoint", raw) for _, raw in windows]  # a checkpoint: per window
        for name, raw in parts:
            if len(raw) > self.max_field_bytes:
                raise JobTooLargeError(job.id, name, len(raw), self.max_field_bytes)
        replace_all = "checkpoint" in changes and not merge  # a whole checkpoint was written
        kept = 0 if replace_all else self._window_bytes(db, job.id)
        if merge:  # stored windows replaced by ones of the same index free their bytes
            kept -= self._window_bytes(db, job.id, [index for index, _ in windows])
        window_bytes = kept + sum(len(raw) for _, raw in windows)
        key_only = None if job.checkpoint is None else Checkpoint(key=job.checkpoint.key)
        body = _ENCODER.encode(msgspec.structs.replace(job, checkpoint=key_only))
        if len(body) + window_bytes > self.max_job_bytes:
            raise JobTooLargeError(job.id, None, len(body) + window_bytes, self.max_job_bytes)

        # Then the windows, the job's row and the event, in the caller's transaction.
        if replace_all:
            db.execute("DELETE FROM windows WHERE job_id = ?", (job.id,))
        rows = [(job.id, index, raw) for index, raw in windows]
        db.executemany("INSERT OR REPLACE INTO windows VALUES (?, ?, ?)", rows)
        lease_expires = None if job.lease is None else job.lease.expires_at.timestamp()
        created_us = round(job.created_at.timestamp() * 1_000_000)
        row = (job.id, job.status, created_us, lease_expires, window_bytes, body)
        db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?)", row)
        omitted = tuple(name for name, raw in encoded.items() if len(raw) > self.event_value_bytes)
        carried = {name: value for name, value in changes.items() if name not in omitted}
        self._append(db, _event(job, kind, carried, omitted=omitted))

    def _append(self, db: Db, event: JobEvent) -> None:
        """Append ``event`` to its job's history and trim that to ``max_events``."""
        sql = "INSERT INTO events (job_id, event) VALUES (?, ?)"
        db.execute(sql, (event.job_id, _ENCODER.encode(event)))
        sql = "SELECT seq FROM events WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"
        trimmed = db.execute(sql, (event.job_id, self.max_events)).fetchone()
        if trimmed is not None:  # remember how far: a watch from before it must resync
            sql = "DELETE FROM events WHERE job_id = ? AND seq <= ?"
            db.execute(sql, (event.job_id, trimmed[0]))
            db.execute("INSERT OR REPLACE INTO trims VALUES (?, ?)", (event.job_id, trimmed[0]))

    def _newest(self, db: Db, job_id: str) -> int:
        """The cursor of the job's newest event (0 if it has none)."""
        sql = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?"
        return int(db.execute(sql, (job_id,)).fetchone()[0])

    def _check_lease(self, job: Job, token: str) -> None:
        if job.status is not S.RUNNING or job.lease is None:
            raise LeaseLostError(job.id, "the job holds no lease")
        if job.lease.token != token:
            raise LeaseLostError(job.id, "another worker holds the lease")
        if job.lease.expires_at.timestamp() <= self._clock():
            raise LeaseLostError(job.id, "the lease expired")

    def _check_writable(self, job: Job, token: str | None) -> None:
        """The checks of ``update`` and ``add_windows``."""
        if token is not None:  # first: a stale token is the writer's real news
            self._check_lease(job, token)
        if job.status in TERMINAL_STATUSES:
            raise InvalidTransitionError(job.id, job.status, None, "it is immutable")

    def _move(
        self, db: Db, job: Job, to: S, sources: Collection[S], token: str | None, **values: Any
    ) -> Job:
        """The compare-and-set that every status change goes through."""
        if token is not None:  # first: a stale token is the writer's real news
            self._check_lease(job, token)
        if job.status not in sources:
            raise InvalidTransitionError(job.id, job.status, to)
        now = self._clock()
        live = job.lease is not None and job.lease.expires_at.timestamp() > now
        if token is None and to is S.QUEUED and live:  # only the holder releases a live lease
            raise InvalidTransitionError(job.id, job.status, to, "a worker holds a live lease")
        if to is S.RUNNING:
            values.setdefault("started_at", _dt(now))
        else:
            values["lease"] = None  # leaving running drops the lease
            values.setdefault("finished_at", None if to is S.QUEUED else _dt(now))
        new = msgspec.structs.replace(job, status=to, version=job.version + 1, **values)
        self._save(db, new, EventKind.TRANSITIONED, values)
        return self._with_windows(db, new)

    # ------------------------------------------------------------ the contract

    async def create(self, job: Job, *, replace: bool = False) -> Job:
        fields = msgspec.structs.asdict(job)
        del fields["version"]  # the store owns it
        job = Job(**check_values(fields), version=1)  # checked, typed, windows in order

        def tx(db: Db) -> Job:
            exists = db.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone()
            if exists and not replace:
                raise JobExistsError(job.id)
            if not exists:  # a new job under this id: forget the history of an earlier one
                db.execute("DELETE FROM events WHERE job_id = ?", (job.id,))
                db.execute("DELETE FROM trims WHERE job_id = ?", (job.id,))
            self._save(db, job, EventKind.CREATED, {n: getattr(job, n) for n in ALL_FIELDS})
            return job

        return await self._run(tx)

    async def get(self, job_id: str) -> Job | None:
        return await self._run(self._load, job_id, write=False)

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        check_fields(fields)
        if not fields:
            raise TypeError("update() needs at least one field to write")
        values = check_values(fields)

        def tx(db: Db) -> int:
            job = self._require(db, job_id)
            self._check_writable(job, lease_token)
            new = msgspec.structs.replace(job, version=job.version + 1, **values)
            self._save(db, new, EventKind.UPDATED, values)
            return new.version

        return await self._run(tx)

    async def add_windows(
        self,
        job_id: str,
        windows: Sequence[WindowTranscript],
        *,
        key: str,
        lease_token: str | None = None,
    ) -> int:
        added = check_values({"checkpoint": Checkpoint(key=key, windows=tuple(windows))})

        def tx(db: Db) -> int:
            job = self._require(db, job_id)  # the row only: the stored windows stay unread
            self._check_writable(job, lease_token)
            same_key = job.checkpoint is not None and job.checkpoint.key == key
            new = msgspec.structs.replace(
                job, version=job.version + 1, checkpoint=Checkpoint(key=key)
            )
            self._save(db, new, EventKind.CHECKPOINTED, added, merge=same_key)
            return new.version

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
        check_fields(fields)
        to, values = S(to), check_values(fields)
        sources = LEGAL_TRANSITIONS[to]
        if expect is not None:
            sources = sources & {S(status) for status in expect}

        def tx(db: Db) -> Job:
            return self._move(db, self._require(db, job_id), to, sources, lease_token, **values)

        return await self._run(tx)

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job:
        _check_lease_seconds(lease_seconds)

        def tx(db: Db) -> Job:
            job = self._require(db, job_id)
            expires_at = _dt(self._clock() + lease_seconds)
            lease = Lease(owner=owner, token=uuid.uuid4().hex, expires_at=expires_at)
            return self._move(
                db, job, S.RUNNING, {S.QUEUED}, None, lease=lease, attempts=job.attempts + 1
            )

        return await self._run(tx)

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        _check_lease_seconds(lease_seconds)

        def tx(db: Db) -> Lease:
            job = self._require(db, job_id)
            self._check_lease(job, lease_token)
            assert job.lease is not None
            expires_at = _dt(self._clock() + lease_seconds)
            lease = msgspec.structs.replace(job.lease, expires_at=expires_at)
            new = msgspec.structs.replace(job, lease=lease, version=job.version + 1)
            self._save(db, new, EventKind.UPDATED, {"lease": lease})
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
            row = db.execute("SELECT status, body FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            try:
                version = _decode(job_id, row[1]).version
            except JobCorruptedError:  # a row that no longer decodes can still be deleted
                version = 0
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM windows WHERE job_id = ?", (job_id,))
            status = S(row[0])
            gone = JobEvent(
                cursor="", kind=EventKind.DELETED, job_id=job_id, version=version, status=status
            )
            self._append(db, gone)  # the history stays
            return True

        return await self._run(tx)

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage:
        if not (isinstance(limit, int) and limit >= 1):
            raise ValueError("limit must be at least 1")
        sql, args = "SELECT id, body, created_us FROM jobs WHERE 1", list[Any]()
        if status is not None:
            sql += " AND status = ?"
            args.append(S(status))
        if cursor is not None:  # our cursor is "<created_us>|<id>" of a page's last job
            created_us, _, after_id = cursor.partition("|")
            sql += " AND (created_us, id) > (?, ?)"
            args += [int(created_us), after_id]
        sql += " ORDER BY created_us, id"

        def page(db: Db) -> JobPage:
            jobs, corrupt, last = list[Job](), list[str](), ""
            for job_id, body, created_us in db.execute(sql, args):  # rows read one by one
                if len(jobs) == limit:  # a row beyond a full page: there is a next page
                    return JobPage(jobs=tuple(jobs), cursor=last, corrupt=tuple(corrupt))
                try:
                    jobs.append(self._with_windows(db, _decode(job_id, body)))
                except JobCorruptedError:
                    corrupt.append(job_id)  # reported, not allowed to block the page
                    continue
                last = f"{created_us}|{job_id}"
            return JobPage(jobs=tuple(jobs), corrupt=tuple(corrupt))

        return await self._run(page, write=False)

    async def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]:
        after = _parse_cursor(cursor)

        def start(db: Db) -> tuple[Job | None, int]:  # the state and its cursor, together
            return self._load(db, job_id), self._newest(db, job_id)

        job, newest = await self._run(start, write=False)
        if job is None:
            return
        if after is None:
            yield _snapshot(job, newest)
            if job.status in FINISHED_STATUSES:
                return
            after = newest
        while True:
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed  # taken before reading, so no wake-up is lost
            events, status = await self._run(self._events_after, job_id, after, write=False)
            for event in events:
                after = int(event.cursor)
                yield event
                if event.kind is EventKind.DELETED or event.status in FINISHED_STATUSES:
                    return
            if events:
                continue
            if status is None or status in FINISHED_STATUSES:
                return  # gone, or finished with nothing after the cursor: nothing will come
            with anyio.move_on_after(WATCH_POLL):  # a write through this store wakes us
                await changed.wait()

    def _events_after(
        self, db: Db, job_id: str, after: int
    ) -> tuple[Sequence[JobEvent], S | None]:
        """The job's events after cursor ``after``, and its status (``None``: deleted).

        If some of those events were trimmed, one resync snapshot of the job stands in
        for all of them (or nothing, if the job is gone: its watch is over).
        """
        row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        status = None if row is None else S(row[0])
        trim = db.execute("SELECT trimmed FROM trims WHERE job_id = ?", (job_id,)).fetchone()
        if trim is not None and after < trim[0]:  # the events after the cursor are not all kept
            job = self._load(db, job_id)
            resync = [] if job is None else [_snapshot(job, self._newest(db, job_id), resync=True)]
            return resync, status
        sql = "SELECT seq, event FROM events WHERE job_id = ? AND seq > ? ORDER BY seq"
        rows = db.execute(sql, (job_id, after))
        events = [
            msgspec.structs.replace(_EVENT.decode(raw), cursor=str(seq)) for seq, raw in rows
        ]
        return events, status
