"""``RedisJobStore``: jobs as Redis hashes, shared by any number of processes.

Layout (prefix ``audioflow:`` by default)::

    audioflow:{<id>}:job      hash: one msgspec-JSON value per record field, one per
                              checkpoint window (checkpoint:<index>), plus private
                              fields: _lease_token, _lease_expires, _bytes (the size
                              of the public fields) and _op:<client> (see below)
    audioflow:{<id>}:events   capped stream of change events (what ``watch`` reads)
    audioflow:index:all       sorted set of every job, ordered by creation (``list``)
    audioflow:index:leases    sorted set of leased jobs scored by lease expiry

Every write to one job is a single Lua script over that job's two keys (same hash tag,
so one Cluster slot): it checks, writes only the named fields, bumps ``version``, appends
the change event and refreshes the TTL in one round trip. The two index sets are kept
beside: written before the job changes so no job is ever missing from them, checked
against the job on every read, and pruned lazily.

**Redis Cluster** (``cluster=True`` with a URL, or a ``RedisCluster``): jobs spread over
the slots by id, while each index set is one key, so it lives on one node. A call that
writes an index and then a job (``create``, ``claim``) thus spans two nodes; the
batcher still sends the job write only after the index write succeeded (``_batch``).

**Retries.** redis-py sends a command again when the connection drops before its reply
arrives, although the server may already have run it (its cluster client resends every
command of a pipeline still without a reply). Every write therefore carries an
operation id, ``<client>:<seq>``, with a sequence number that rises with each write of
this store object; the script records the last one per client in the job
(``_op:<client>``) and a write it has already seen reports its first outcome instead of
running again. A write whose every attempt lost its reply raises
``StoreUnavailableError`` with ``outcome_unknown=True``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from importlib import resources
from typing import Any, NoReturn, Unpack

from ..errors import (
    InvalidTransitionError,
    JobCorruptedError,
    JobExistsError,
    JobNotFoundError,
    JobTooLargeError,
    LeaseLostError,
    MissingDependencyError,
    StoreError,
    StoreUnavailableError,
)
from ..records import (
    FINISHED_STATUSES,
    EventKind,
    Job,
    JobEvent,
    JobPage,
    JobStatus,
    Lease,
    WindowTranscript,
)

# Before the modules that import redis themselves (._batch): without the extra, the
# error names it.
try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
except ImportError as exc:  # .ci/run checks it in a venv without the extra
    raise MissingDependencyError("redis", "redis") from exc

from ._batch import CLUSTER_UNAVAILABLE, CommandBatcher
from ._codec import (
    FIELDS,
    WINDOW_PREFIX,
    checkpoint_parts,
    decode_changes,
    decode_field,
    decode_job,
    encode_checkpoint_key,
    encode_field,
    encode_json,
    encode_window,
    text_of,
)
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
    order_key,
    to_datetime,
    transition_fields,
)
from .protocol import JobFields, check_fields

__all__ = ["RedisJobStore"]

_SCRIPTS = (
    "create",
    "update",
    "add_windows",
    "transition",
    "renew",
    "expire_lease",
    "snapshot",
    "events",
    "delete",
)
#: Scripts that write a job (they carry an operation id; see ``_batch``).
_WRITE_SCRIPTS = (
    "create", "update", "add_windows", "transition", "renew", "expire_lease", "delete",
)  # fmt: skip
_WATCH_BLOCK_MS = 1000
_WATCH_BATCH = 100
_LIST_SCAN_ROUNDS = 10  # index batches one ``list`` call reads at most
_PRUNE_GRACE = 60.0  # seconds
_CURSOR = re.compile(r"\d+(-\d+)?")
_READ_OP = "r:0"  # read-only scripts record nothing

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.TryAgainError,
    *CLUSTER_UNAVAILABLE,
    OSError,
)

#: A Redis client this store can work through.
RedisClient = aioredis.Redis | RedisCluster


def _load_script(name: str) -> str:
    lua = resources.files(__package__).joinpath("lua")
    prelude = lua.joinpath("_common.lua").read_text()
    return prelude + "\n" + lua.joinpath(f"{name}.lua").read_text()


def _pairs_to_dict(flat: Sequence[Any]) -> dict[str, Any]:
    return {text_of(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _status_json(status: JobStatus) -> str:
    return f'"{status.value}"'


class RedisJobStore:
    """A JobStore on Redis, safe to share between processes and machines.

    Args:
        redis: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
            you own (``decode_responses`` either way; it is not closed by ``aclose``),
            or a URL (``redis://``, ``rediss://``, ``unix://``) for a client this store
            creates and closes.
        cluster: the URL names one node of a Redis Cluster (``redis://`` or
            ``rediss://``, database 0): the store builds a ``RedisCluster``, which
            discovers the other nodes. With a client of your own, pass a
            ``RedisCluster`` instead.
        prefix: prepended to every key; give each application (and each test) its own.
            On a cluster, keep braces out of it: a ``{tag}`` in the prefix would put
            every job in one slot.
        ttl: seconds a job lives after its last write (at least 1); ``None`` keeps jobs
            forever.
        clock: epoch seconds for timestamps and lease expiry. Workers on several machines
            compare lease expiry against their own clocks: keep them NTP-synced and
            leases much longer than the skew.
        max_events: approximate cap of each job's change stream.
        max_field_bytes: largest value of one field (or one checkpoint window), in bytes
            of JSON; larger writes raise ``JobTooLargeError``.
        max_job_bytes: largest whole job, in bytes of JSON (checked inside the write).
        event_value_bytes: values larger than this are not copied into the change
            stream (the event names them in ``omitted``).

    Raises:
        StoreUnavailableError: from any method, when Redis cannot be reached (on a
            cluster also: no node reachable, or a slot no node serves).
        TypeError: ``cluster=True`` with a ``redis.asyncio.Redis``.

    Example::

        async with RedisJobStore("redis://localhost:6379/0") as store:
            await store.create(Job(id="a", source="talk.mp3"))
        async with RedisJobStore("redis://node-1:7000", cluster=True) as store:
            ...
    """

    def __init__(
        self,
        redis: RedisClient | str,
        *,
        cluster: bool = False,
        prefix: str = "audioflow:",
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
        if cluster and not isinstance(redis, str | RedisCluster):
            raise TypeError("cluster=True needs a URL or a RedisCluster, not a Redis client")
        self._redis: RedisClient
        if isinstance(redis, str):
            # Fail fast when the server is down: one quick retry, not redis-py's default
            # of three with up to ten seconds of backoff.
            retry = Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)
            if cluster:
                # redis-py's cluster client takes only the retry count from ``retry``
                # (each retry rebuilds the slot map first).
                self._redis = RedisCluster.from_url(redis, socket_connect_timeout=5, retry=retry)
            else:
                self._redis = aioredis.Redis.from_url(redis, socket_connect_timeout=5, retry=retry)
            self._owns_client = True
        else:
            self._redis = redis
            self._owns_client = False
        self.prefix = prefix
        self._ttl_arg = "" if ttl is None else str(int(ttl * 1000))
        self._clock = clock
        self._max_events = str(max_events)
        self.max_field_bytes = max_field_bytes
        self.max_job_bytes = max_job_bytes
        self.event_value_bytes = event_value_bytes
        self._client_id = uuid.uuid4().hex[:16]
        self._seq = itertools.count(1)
        sources = {name: _load_script(name) for name in _SCRIPTS}
        self._sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in sources.items()}
        writes = {self._sha[name] for name in _WRITE_SCRIPTS}
        self._batch = CommandBatcher(
            self._redis,
            {self._sha[name]: src for name, src in sources.items()},
            writes=lambda c: str(c[3]) if c[0] == "EVALSHA" and c[1] in writes else None,
        )
        self._index_all = f"{prefix}index:all"
        self._index_leases = f"{prefix}index:leases"

    def __repr__(self) -> str:
        return f"RedisJobStore(prefix={self.prefix!r}, ttl={self.ttl!r})"

    async def __aenter__(self) -> RedisJobStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis client if this store created it from a URL."""
        if self._owns_client:
            await self._redis.aclose()

    # ------------------------------------------------------------------ helpers

    def job_key(self, job_id: str) -> str:
        """The hash holding ``job_id`` (for inspection with ``redis-cli``)."""
        return f"{self.prefix}{{{job_id}}}:job"

    def events_key(self, job_id: str) -> str:
        """The stream of ``job_id``'s change events."""
        return f"{self.prefix}{{{job_id}}}:events"

    def _keys(self, job_id: str) -> list[str]:
        return [self.job_key(job_id), self.events_key(job_id)]

    def _head(self, now: float, omit: Collection[str] = (), *, write: bool = True) -> list[Any]:
        op = f"{self._client_id}:{next(self._seq)}" if write else _READ_OP
        return [
            repr(now),
            self._ttl_arg,
            self._max_events,
            op,
            str(self.max_job_bytes),
            " ".join(omit),
        ]

    def _script(self, name: str, job_id: str, args: Sequence[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self._sha[name], 2, *self._keys(job_id), *args)

    async def _exec(self, *commands: Sequence[Any], write: bool = True) -> list[Any]:
        """Run commands back to back (sharing a round trip with concurrent calls)."""
        try:
            replies = await self._batch.execute(*commands)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc, write) from exc
        for reply in replies:
            if isinstance(reply, _UNAVAILABLE):
                raise self._unavailable(reply, write) from reply
            if isinstance(reply, Exception):
                raise StoreError(f"redis rejected a store command: {reply}") from reply
        return replies

    @staticmethod
    def _unavailable(exc: BaseException, write: bool) -> StoreUnavailableError:
        if not write:
            return StoreUnavailableError(f"redis unavailable: {exc}")
        return StoreUnavailableError(
            f"redis unavailable: {exc}; the outcome of this write is unknown (it may "
            "have been applied): read the job back before acting on it",
            outcome_unknown=True,
        )

    async def _run(self, name: str, job_id: str, args: Sequence[Any], write: bool = True) -> Any:
        return (await self._exec(self._script(name, job_id, args), write=write))[0]

    def _encode(self, job_id: str, fields: Mapping[str, Any]) -> tuple[list[Any], list[str]]:
        """Field/value pairs to store (a checkpoint as key plus windows), and the fields
        too large to copy into the change event."""
        pairs: list[Any] = []
        omit: list[str] = []
        for name, value in fields.items():
            if name == "checkpoint":
                parts = checkpoint_parts(value, job_id=job_id, limit=self.max_field_bytes)
            else:
                raw = encode_field(name, value, job_id=job_id, limit=self.max_field_bytes)
                parts = [(name, raw)]
            for part, raw in parts:
                pairs += [part, raw]
            if sum(len(raw) for _, raw in parts) > self.event_value_bytes:
                omit.append(name)
        return pairs, omit

    def _fail(self, job_id: str, reply: Sequence[Any], to: JobStatus | None = None) -> NoReturn:
        code = text_of(reply[0])
        if code == "NOTFOUND":
            raise JobNotFoundError(job_id)
        if code == "LEASE":
            raise LeaseLostError(job_id, text_of(reply[1]))
        if code == "TOOLARGE":
            raise JobTooLargeError(job_id, None, int(reply[1]), self.max_job_bytes)
        if code == "UNKNOWN":
            raise StoreUnavailableError(
                f"job {job_id!r}: a write sent again after a lost reply found a later "
                "write of this store applied; its own outcome is unknown: read the job "
                "back before acting on it",
                outcome_unknown=True,
            )
        current = decode_field(job_id, "status", reply[1])
        if code == "TERMINAL":
            raise InvalidTransitionError(job_id, current, None, "it is immutable")
        if code == "CONFLICT":
            raise InvalidTransitionError(job_id, current, to, text_of(reply[2]))
        raise RuntimeError(f"unexpected reply from store script: {reply!r}")  # pragma: no cover

    # ------------------------------------------------------------------ contract

    async def create(self, job: Job, *, replace: bool = False) -> Job:
        check_job_id(job.id)
        if "{" in job.id or "}" in job.id:
            raise ValueError(f"job id must be free of braces: {job.id!r}")
        values = {name: getattr(job, name) for name in FIELDS if name not in ("id", "version")}
        pairs, omit = self._encode(job.id, values)
        lease_token, lease_expires = "", ""
        if job.lease is not None and job.status is JobStatus.RUNNING:
            lease_token = job.lease.token
            lease_expires = repr(job.lease.expires_at.timestamp())
        args = [*self._head(self._clock(), omit), "1" if replace else "0"]
        args += [lease_token, lease_expires, *pairs]
        # The index entry goes first, so a job is never missing from it.
        _, reply = await self._exec(
            ("ZADD", self._index_all, 0, order_key(job)),
            self._script("create", job.id, args),
        )
        code = text_of(reply[0])
        if code == "EXISTS":
            raise JobExistsError(job.id)
        if code != "OK":
            self._fail(job.id, reply)
        return decode_job(job.id, {**_pairs_to_dict(pairs), "version": b"1"})

    async def get(self, job_id: str) -> Job | None:
        (raw,) = await self._exec(("HGETALL", self.job_key(job_id)), write=False)
        return decode_job(job_id, raw) if raw else None

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        check_fields(fields)
        if not fields:
            raise TypeError("update() needs at least one field to write")
        pairs, omit = self._encode(job_id, fields)
        args = [*self._head(self._clock(), omit), lease_token or "", *pairs]
        reply = await self._run("update", job_id, args)
        if text_of(reply[0]) != "OK":
            self._fail(job_id, reply)
        return int(reply[1])

    async def add_windows(
        self,
        job_id: str,
        windows: Sequence[WindowTranscript],
        *,
        key: str,
        lease_token: str | None = None,
    ) -> int:
        key_field = encode_checkpoint_key(key)  # b'{"key":...,"windows":[]}'
        pairs: list[Any] = []
        raws: list[bytes] = []
        for window in windows:
            raw = encode_window(window, job_id=job_id, limit=self.max_field_bytes)
            pairs += [f"{WINDOW_PREFIX}{window.index}", raw]
            raws.append(raw)
        # The event's Checkpoint (key and added windows) from the windows encoded above.
        event = key_field[: -len(b"]}")] + b",".join(raws) + b"]}"
        omit = ["checkpoint"] if len(event) > self.event_value_bytes else []
        args = [*self._head(self._clock(), omit), lease_token or "", key_field]
        args += [b"" if omit else event, *pairs]
        reply = await self._run("add_windows", job_id, args)
        if text_of(reply[0]) != "OK":
            self._fail(job_id, reply)
        return int(reply[1])

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
        now = self._clock()
        values, drop = transition_fields(to, fields, to_datetime(now))
        return await self._transition(
            job_id, to, allowed_sources(to, expect), lease_token, values, now,
            mode="drop" if drop else "keep",
        )  # fmt: skip

    async def _transition(
        self,
        job_id: str,
        to: JobStatus,
        sources: Collection[JobStatus],
        lease_token: str | None,
        values: Mapping[str, Any],
        now: float,
        *,
        mode: str,
        lease: Lease | None = None,
    ) -> Job:
        pairs, omit = self._encode(job_id, values)
        args = [
            *self._head(now, omit),
            _status_json(to),
            " ".join(_status_json(s) for s in sources),
            lease_token or "",
            mode,
            lease.token if lease else "",
            repr(lease.expires_at.timestamp()) if lease else "",
            encode_field("lease", lease) if lease else "",
            *pairs,
        ]
        commands: list[Sequence[Any]] = [self._script("transition", job_id, args)]
        if lease is not None:
            # Index first, so a leased job is never missing from it; LT keeps the score
            # at or before the real expiry even when this claim loses, so the reaper may
            # look early (and re-score) but never late.
            score = repr(lease.expires_at.timestamp())
            commands.insert(0, ("ZADD", self._index_leases, "LT", score, job_id))
        reply = (await self._exec(*commands))[-1]
        if text_of(reply[0]) != "OK":
            self._fail(job_id, reply, to)
        if int(reply[3]):  # the job held a lease that this transition dropped
            await self._exec(("ZREM", self._index_leases, job_id))
        return decode_job(job_id, _pairs_to_dict(reply[2]))

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job:
        check_lease_seconds(lease_seconds)
        now = self._clock()
        lease = Lease(
            owner=owner, token=uuid.uuid4().hex, expires_at=to_datetime(now + lease_seconds)
        )
        values, _ = transition_fields(JobStatus.RUNNING, {}, to_datetime(now))
        return await self._transition(
            job_id, JobStatus.RUNNING, (JobStatus.QUEUED,), None, values, now,
            mode="claim", lease=lease,
        )  # fmt: skip

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        check_lease_seconds(lease_seconds)
        now = self._clock()
        expires = now + lease_seconds
        args = [
            *self._head(now),
            lease_token,
            repr(expires),
            encode_json(to_datetime(expires)),
        ]
        reply = await self._run("renew", job_id, args)
        if text_of(reply[0]) != "OK":
            self._fail(job_id, reply)
        lease: Lease = decode_field(job_id, "lease", reply[1])
        await self._exec(("ZADD", self._index_leases, repr(lease.expires_at.timestamp()), job_id))
        return lease

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]:
        check_max_attempts(max_attempts, limit)
        now = self._clock()
        now_json = encode_json(to_datetime(now))
        (due,) = await self._exec(
            ("ZRANGEBYSCORE", self._index_leases, "-inf", repr(now), "LIMIT", 0, limit),
            write=False,
        )
        if not due:
            return []
        ids = [text_of(d) for d in due]
        replies = await self._exec(
            *(
                self._script("expire_lease", i, [*self._head(now), str(max_attempts), now_json])
                for i in ids
            )
        )
        out: list[Job] = []
        gone: list[str] = []
        fix: list[Sequence[Any]] = []
        for job_id, reply in zip(ids, replies, strict=True):
            code = text_of(reply[0])
            if code == "LIVE":  # renewed since: re-score to the real expiry
                fix.append(("ZADD", self._index_leases, text_of(reply[1]), job_id))
                continue
            if code == "UNKNOWN":  # left in the index: the next sweep looks again
                continue
            gone.append(job_id)
            if code == "OK":
                out.append(decode_job(job_id, _pairs_to_dict(reply[2])))
        if gone:
            fix.append(("ZREM", self._index_leases, *gone))
        if fix:
            await self._exec(*fix)
        return out

    async def delete(self, job_id: str) -> bool:
        deleted = await self._run("delete", job_id, self._head(self._clock()))
        return bool(deleted)

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage:
        if not (isinstance(limit, int) and limit >= 1):
            raise ValueError("limit must be at least 1")
        jobs: list[Job] = []
        corrupt: list[tuple[str, str]] = []  # (index entry, job id), in index order

        def named(before: str | None = None) -> tuple[str, ...]:
            return tuple(i for m, i in corrupt if before is None or m < before)

        start = "-" if cursor is None else f"({cursor}"
        try:
            for _ in range(_LIST_SCAN_ROUNDS):
                found: list[Any] = await self._redis.zrange(
                    self._index_all, start, "+", bylex=True, offset=0, num=limit + 1
                )
                members = [text_of(m) for m in found]
                if not members:
                    return JobPage(jobs=tuple(jobs), corrupt=named())
                async with self._redis.pipeline(transaction=False) as pipe:
                    for member in members:
                        pipe.hgetall(self.job_key(member.partition("|")[2]))
                    raws = await pipe.execute()
                stale = []
                for member, raw in zip(members, raws, strict=True):
                    job_id = member.partition("|")[2]
                    try:
                        job = decode_job(job_id, raw) if raw else None
                    except JobCorruptedError:
                        corrupt.append((member, job_id))  # named, not allowed to block
                        start = f"({member}"
                        continue
                    if job is None or order_key(job) != member:
                        if self._prunable(member):
                            stale.append(member)  # expired, deleted or replaced
                    elif status is None or job.status is status:
                        jobs.append(job)
                        if len(jobs) > limit:
                            break
                    start = f"({member}"
                if stale:
                    await self._redis.zrem(self._index_all, *stale)
                if len(jobs) > limit:
                    # The page ends at its last job: a corrupt job past it belongs to
                    # the next page's stretch, and is named there (once).
                    end = order_key(jobs[limit - 1])
                    return JobPage(jobs=tuple(jobs[:limit]), cursor=end, corrupt=named(end))
                if len(members) <= limit:
                    return JobPage(jobs=tuple(jobs), corrupt=named())
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"redis unavailable: {exc}") from exc
        # Scanned the bounded number of batches: hand back what we have and a cursor.
        return JobPage(jobs=tuple(jobs), cursor=start[1:], corrupt=named())

    def _prunable(self, member: str) -> bool:
        # A create or replace adds its index entry just before it writes the job: an
        # entry younger than the grace period may belong to a write still under way.
        created = int(member.partition("|")[0]) / 1_000_000
        return created < self._clock() - _PRUNE_GRACE

    def _snapshot(self, job_id: str, raw: Any, cursor: Any, *, resync: bool) -> JobEvent:
        fields = _pairs_to_dict(raw)
        job = decode_job(job_id, fields)
        return JobEvent(
            cursor=text_of(cursor),
            kind=EventKind.SNAPSHOT,
            job_id=job_id,
            version=job.version,
            status=job.status,
            changes=decode_changes(job_id, fields),
            resync=resync,
        )

    async def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]:
        if cursor is not None and not (isinstance(cursor, str) and _CURSOR.fullmatch(cursor)):
            raise ValueError(f"not a watch cursor of this store: {cursor!r}")
        head = self._head(self._clock(), write=False)
        known = ""  # the version of the event at the cursor, once this watch knows it
        if cursor is None:
            raw, after = await self._run("snapshot", job_id, head, write=False)
            if not raw:
                return
            snapshot = self._snapshot(job_id, raw, after, resync=False)
            yield snapshot
            if snapshot.status in FINISHED_STATUSES:
                return
            cursor = snapshot.cursor
            known = str(snapshot.version)
        stream = self.events_key(job_id)
        while True:
            reply = await self._run(
                "events", job_id, [*head, cursor, known, str(_WATCH_BATCH)], write=False
            )
            if text_of(reply[0]) == "RESYNC":
                snapshot = self._snapshot(job_id, reply[1], reply[2], resync=True)
                yield snapshot
                if snapshot.status in FINISHED_STATUSES:
                    return
                cursor, known = snapshot.cursor, str(snapshot.version)
                continue
            entries, status = reply[1], reply[2]
            for entry_id, entry in entries:
                cursor = text_of(entry_id)
                event = self._event(job_id, cursor, _pairs_to_dict(entry))
                known = str(event.version)
                yield event
                if event.kind is EventKind.DELETED or event.status in FINISHED_STATUSES:
                    return
            if entries:
                continue
            if not status:
                return  # deleted or expired: no event will ever come
            if decode_field(job_id, "status", status) in FINISHED_STATUSES:
                return  # finished, and nothing after the cursor
            try:  # wait for the next event (read by the script above, in order)
                await self._redis.xread({stream: cursor}, count=1, block=_WATCH_BLOCK_MS)
            except _UNAVAILABLE as exc:
                raise StoreUnavailableError(f"redis unavailable: {exc}") from exc

    def _event(self, job_id: str, cursor: str, fields: Mapping[str, Any]) -> JobEvent:
        omitted = fields.get("_omitted")
        return JobEvent(
            cursor=cursor,
            kind=EventKind(text_of(fields["kind"])),
            job_id=job_id,
            version=int(fields["version"]),
            status=decode_field(job_id, "status", fields["status"]),
            changes=decode_changes(job_id, fields, skip=("kind",)),
            omitted=tuple(text_of(omitted).split()) if omitted else (),
        )
