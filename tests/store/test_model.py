"""Random operation sequences on RedisJobStore and MemoryJobStore side by side.

Hypothesis drives both stores through the same calls on the same fake clock; after
every step the outcomes (value or exception type) and the stores' contents must agree.
The memory store is the model; the Redis store is the real thing under test.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import msgspec
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from audioflow import (
    Job,
    JobError,
    JobEvent,
    JobOptions,
    JobStatus,
    MemoryJobStore,
    Progress,
    RedisJobStore,
    StoreError,
)
from audioflow.testing import FakeClock
from support.redis_server import delete_prefix, redis_url

IDS = st.sampled_from(["a", "b", "c"])
STATUSES = st.sampled_from(list(JobStatus))
TOKEN = st.sampled_from(["none", "current", "stale"])
FIELD_VALUES = st.one_of(
    st.builds(lambda m: {"meta": {"k": m}}, st.text(max_size=5)),
    st.builds(
        lambda f, s: {"progress": Progress(stage=s, fraction=f)},
        st.floats(0, 1),
        st.sampled_from([None, "decode", "vad"]),
    ),
    st.builds(lambda a: {"artifacts": {"srt": a}}, st.text(max_size=5)),
    st.builds(lambda m: {"error": JobError(type="E", message=m)}, st.text(max_size=5)),
    st.just({"error": None}),
    st.builds(lambda n: {"attempts": n}, st.integers(0, 5)),
)


def _normal(value: Any) -> Any:
    """Lease tokens are random per store; everything else must match exactly."""
    if isinstance(value, Job) and value.lease is not None:
        return msgspec.structs.replace(value, lease=msgspec.structs.replace(value.lease, token=""))
    if isinstance(value, JobEvent):
        lease = value.changes.lease
        changes = value.changes
        if lease is not msgspec.UNSET and lease is not None:
            changes = msgspec.structs.replace(
                changes, lease=msgspec.structs.replace(lease, token="")
            )
        return msgspec.structs.replace(value, cursor="", changes=changes)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if hasattr(value, "token") and hasattr(value, "owner"):  # a Lease from renew
        return msgspec.structs.replace(value, token="")
    return value


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._portal_cm = start_blocking_portal("asyncio")
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        self.clock = FakeClock()
        self.prefix = f"audioflow-test:{uuid.uuid4().hex[:12]}:"
        self.memory = MemoryJobStore(clock=self.clock, ttl=None)
        self.redis = RedisJobStore(redis_url(), prefix=self.prefix, clock=self.clock, ttl=None)
        # Per store, the latest lease token of each job and one it has lost.
        self.tokens: dict[str, dict[str, str]] = {"memory": {}, "redis": {}}
        self.stale: dict[str, dict[str, str]] = {"memory": {}, "redis": {}}

    def both(
        self, op: str, *args: Any, token: str | None = None, _sort: bool = False, **kw: Any
    ) -> Any:
        outcomes = []
        for name, store in (("memory", self.memory), ("redis", self.redis)):
            extra = dict(kw)
            if token is not None and token != "none":
                job_id = args[0]
                pool = self.tokens if token == "current" else self.stale
                extra["lease_token"] = pool[name].get(job_id, "never-issued")
            try:
                result = self.portal.call(lambda s=store, e=extra: getattr(s, op)(*args, **e))
                if _sort:  # an unordered result
                    result = sorted(result, key=lambda job: job.id)
                outcomes.append(("ok", _normal(result)))
                self._remember(name, op, args, result)
            except StoreError as exc:
                outcomes.append(("error", type(exc).__name__))
        assert outcomes[0] == outcomes[1], f"{op}{args} {kw}: {outcomes}"
        return outcomes[0]

    def _remember(self, name: str, op: str, args: tuple[Any, ...], result: Any) -> None:
        if op == "claim" and result.lease is not None:
            old = self.tokens[name].get(args[0])
            if old is not None:
                self.stale[name][args[0]] = old
            self.tokens[name][args[0]] = result.lease.token

    @initialize()
    def create_jobs(self) -> None:
        # Start with every id present: most rules need a job to act on.
        for job_id in ("a", "b", "c"):
            self.create(job_id, replace=False, source=job_id)

    @rule(job_id=IDS, replace=st.booleans(), source=st.text(max_size=6))
    def create(self, job_id: str, replace: bool, source: str) -> None:
        job = Job(id=job_id, source=source, options=JobOptions(language="en"))
        self.both("create", job, replace=replace)

    @rule(job_id=IDS, fields=FIELD_VALUES, token=TOKEN)
    def update(self, job_id: str, fields: dict[str, Any], token: str) -> None:
        self.both("update", job_id, token=token, **fields)

    @rule(
        job_id=IDS,
        to=STATUSES,
        expect=st.none() | st.sets(STATUSES, max_size=3),
        token=TOKEN,
    )
    def transition(self, job_id: str, to: JobStatus, expect: Any, token: str) -> None:
        self.both("transition", job_id, to, expect=expect, token=token)

    @rule(job_id=IDS, seconds=st.sampled_from([5.0, 30.0]))
    def claim(self, job_id: str, seconds: float) -> None:
        self.both("claim", job_id, owner="w", lease_seconds=seconds)

    @rule(job_id=IDS, token=TOKEN)
    def renew(self, job_id: str, token: str) -> None:
        if token == "none":
            token = "stale"
        self.both("renew", job_id, token=token, lease_seconds=20.0)

    @rule(seconds=st.sampled_from([1.0, 10.0, 40.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(max_attempts=st.integers(1, 3))
    def requeue_expired(self, max_attempts: int) -> None:
        self.both("requeue_expired", max_attempts=max_attempts, _sort=True)

    @rule(job_id=IDS)
    def delete(self, job_id: str) -> None:
        self.both("delete", job_id)

    @rule(status=st.none() | STATUSES, limit=st.integers(1, 3))
    def list_all(self, status: JobStatus | None, limit: int) -> None:
        pages: dict[str, list[Any]] = {}
        for name, store in (("memory", self.memory), ("redis", self.redis)):
            seen: list[Any] = []
            cursor = None
            while True:
                page = self.portal.call(
                    lambda s=store, c=cursor: s.list(status=status, limit=limit, cursor=c)
                )
                seen += _normal(list(page.jobs))
                if page.cursor is None:
                    break
                cursor = page.cursor
            pages[name] = seen
        assert pages["memory"] == pages["redis"]

    @invariant()
    def same_jobs(self) -> None:
        for job_id in ("a", "b", "c"):
            mem = self.portal.call(self.memory.get, job_id)
            red = self.portal.call(self.redis.get, job_id)
            assert _normal(mem) == _normal(red), job_id

    def teardown(self) -> None:
        try:
            for job_id in ("a", "b", "c"):
                histories = [self.portal.call(_history, s, job_id) for s in self.stores()]
                assert histories[0] == histories[1], job_id
        finally:
            self.portal.call(self.redis.aclose)
            self._portal_cm.__exit__(None, None, None)
            delete_prefix(redis_url(), self.prefix)

    def stores(self) -> tuple[MemoryJobStore, RedisJobStore]:
        return self.memory, self.redis


async def _history(store: Any, job_id: str) -> list[Any]:
    """Every retained event of a live job, replayed from the start (``cursor="0"``)."""
    async with contextlib.aclosing(store.watch(job_id)) as live:
        snapshot = await anext(live, None)
    if snapshot is None:
        return []
    events = []
    async with contextlib.aclosing(store.watch(job_id, cursor="0")) as replay:
        async for event in replay:
            events.append(event)
            if event.cursor == snapshot.cursor:
                break
    return _normal(events)


StoresAgree.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestStoresAgree = pytest.mark.slow(StoresAgree.TestCase)
