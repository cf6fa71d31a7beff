"""``FaultyStore``: a JobStore wrapper that fails the calls you choose.

For testing what code on top of a store does when the store fails: wrap any store,
name the calls that fail (the 3rd ``update``, every ``renew`` from the 2nd on...), and
run the code. A fault is raised either *before* the call reaches the store (the write
did not happen) or *after* it (``applied=True``: the write happened but its answer was
lost, the "outcome unknown" case).

Example::

    store = FaultyStore(MemoryJobStore(), fail={"update": 2})
    with pytest.raises(StoreUnavailableError):
        await Pipeline(BurstTranscriber(), store=store).run("talk.wav", job_id="j")
    job = await store.inner.get("j")        # the state the fault left behind
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Unpack

import anyio

from ..errors import StoreUnavailableError
from ..records import Job, JobEvent, JobPage, JobStatus, Lease, WindowTranscript
from ..store._watch import watching
from ..store.protocol import JobFields, JobStore

__all__ = ["FaultyStore"]

#: The methods a fault can be injected into.
METHODS = (
    "create",
    "get",
    "update",
    "transition",
    "add_windows",
    "claim",
    "renew",
    "requeue_expired",
    "delete",
    "list",
    "watch",
)


class FaultyStore:
    """Wraps ``inner`` and fails chosen calls.

    Args:
        inner: the store doing the real work.
        fail: method name → the 1-based number(s) of its calls that fail, e.g.
            ``{"update": 3}`` or ``{"renew": range(2, 1000)}``.
        error: makes the exception to raise from ``(method, call number)``; by default
            ``StoreUnavailableError("injected fault: ...")`` (with ``outcome_unknown``
            set when ``applied``).
        applied: raise *after* the inner store ran the call (its effect stays), as when
            a reply is lost; by default before (no effect).

    ``calls`` counts every call per method; ``faults`` lists ``(method, n)`` of each
    fault raised; ``fired`` is set at the first one.
    """

    def __init__(
        self,
        inner: JobStore,
        *,
        fail: Mapping[str, int | Iterable[int]],
        error: Callable[[str, int], BaseException] | None = None,
        applied: bool = False,
    ) -> None:
        unknown = set(fail) - set(METHODS)
        if unknown:
            raise ValueError(f"no such JobStore method(s): {sorted(unknown)}")
        self.inner = inner
        self._fail = {
            name: frozenset([which] if isinstance(which, int) else which)
            for name, which in fail.items()
        }
        self._error = error or self._injected
        self.applied = applied
        self.calls: Counter[str] = Counter()
        self.faults: list[tuple[str, int]] = []
        self.fired = anyio.Event()

    def __repr__(self) -> str:
        return f"FaultyStore({self.inner!r}, fail={dict(self._fail)!r})"

    def _injected(self, method: str, n: int) -> BaseException:
        when = "after it took effect" if self.applied else "before it reached the store"
        return StoreUnavailableError(
            f"injected fault: call {n} of {method}() failed {when}",
            outcome_unknown=self.applied,
        )

    def _fault(self, method: str) -> BaseException | None:
        self.calls[method] += 1
        n = self.calls[method]
        if n not in self._fail.get(method, ()):
            return None
        self.faults.append((method, n))
        self.fired.set()
        return self._error(method, n)

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fault = self._fault(method)
        if fault is not None and not self.applied:
            raise fault
        result = await getattr(self.inner, method)(*args, **kwargs)
        if fault is not None:
            raise fault
        return result

    async def create(self, job: Job, *, replace: bool = False) -> Job:
        result: Job = await self._call("create", job, replace=replace)
        return result

    async def get(self, job_id: str) -> Job | None:
        result: Job | None = await self._call("get", job_id)
        return result

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        result: int = await self._call("update", job_id, lease_token=lease_token, **fields)
        return result

    async def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        lease_token: str | None = None,
        **fields: Unpack[JobFields],
    ) -> Job:
        result: Job = await self._call(
            "transition", job_id, to, expect=expect, lease_token=lease_token, **fields
        )
        return result

    async def add_windows(
        self,
        job_id: str,
        windows: Sequence[WindowTranscript],
        *,
        key: str,
        lease_token: str | None = None,
    ) -> int:
        result: int = await self._call(
            "add_windows", job_id, windows, key=key, lease_token=lease_token
        )
        return result

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job:
        result: Job = await self._call("claim", job_id, owner=owner, lease_seconds=lease_seconds)
        return result

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease:
        result: Lease = await self._call(
            "renew", job_id, lease_token=lease_token, lease_seconds=lease_seconds
        )
        return result

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]:
        result: list[Job] = await self._call(
            "requeue_expired", max_attempts=max_attempts, limit=limit
        )
        return result

    async def delete(self, job_id: str) -> bool:
        result: bool = await self._call("delete", job_id)
        return result

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage:
        result: JobPage = await self._call("list", status=status, limit=limit, cursor=cursor)
        return result

    async def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]:
        fault = self._fault("watch")
        if fault is not None:
            raise fault
        async with watching(self.inner, job_id, cursor=cursor) as events:
            async for event in events:
                yield event

    async def aclose(self) -> None:
        """Close the inner store."""
        await self.inner.aclose()
