"""The ``JobStore`` protocol and the rules every backend shares.

A backend is anything with these methods; nothing needs to inherit from audioflow.
``audioflow.testing.JobStoreConformance`` proves a backend meets the contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

from ..records import (
    Checkpoint,
    Job,
    JobError,
    JobEvent,
    JobOptions,
    JobPage,
    JobResult,
    JobStatus,
    Lease,
    Progress,
)

__all__ = [
    "LEGAL_TRANSITIONS",
    "UPDATABLE_FIELDS",
    "JobFields",
    "JobStore",
    "check_fields",
]


class JobFields(TypedDict, total=False):
    """The fields ``update`` and ``transition`` may write.

    ``id``, ``status``, ``version``, ``created_at`` and ``lease`` are not among them:
    the id and creation time never change, the store owns ``version``, ``status`` moves
    only through ``transition`` and ``lease`` only through ``claim``/``renew``.
    """

    source: str
    options: JobOptions
    progress: Progress
    result: JobResult | None
    artifacts: dict[str, str]
    error: JobError | None
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    meta: dict[str, str]
    checkpoint: Checkpoint | None


#: Names of the fields ``update`` and ``transition`` accept.
UPDATABLE_FIELDS: frozenset[str] = frozenset(JobFields.__annotations__)

Q, R, C, F, X = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)

#: ``LEGAL_TRANSITIONS[to]`` is the set of statuses a job may move to ``to`` from.
#: ``running → queued`` is allowed only to the lease holder or once the lease expired;
#: ``failed → queued`` is an explicit retry; ``completed`` and ``cancelled`` are final.
LEGAL_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    Q: frozenset({R, F}),
    R: frozenset({Q}),
    C: frozenset({R}),
    F: frozenset({R}),
    X: frozenset({Q, R}),
}


def check_fields(fields: Mapping[str, Any]) -> None:
    """Reject field names ``update``/``transition`` may not write (``TypeError``)."""
    bad = set(fields) - UPDATABLE_FIELDS
    if bad:
        raise TypeError(
            f"cannot write job field(s) {sorted(bad)}; writable: {sorted(UPDATABLE_FIELDS)}"
        )


@runtime_checkable
class JobStore(Protocol):
    """Where every job's state lives. All methods are safe to call concurrently.

    Semantics (checked by ``audioflow.testing.JobStoreConformance``):

    * ``create`` stores a new job with ``version == 1``; ``JobExistsError`` if the id
      exists, unless ``replace=True``, which atomically replaces every field.
    * ``get`` returns the typed job or ``None``; a field that cannot be decoded raises
      ``JobCorruptedError`` naming the job and field.
    * ``update`` writes only the named fields, atomically, bumps ``version`` and
      refreshes the TTL. ``JobNotFoundError`` if the job is missing (nothing is
      created); ``InvalidTransitionError`` if it is terminal; ``LeaseLostError`` if
      ``lease_token`` is given and is not the current, live lease.
    * ``transition`` is a compare-and-set of ``status`` plus fields: of N concurrent
      callers expecting the same status exactly one wins, the others get
      ``InvalidTransitionError``. Moving to ``running`` sets ``started_at``; moving to
      a finished status sets ``finished_at``; leaving ``running`` drops the lease.
    * ``claim`` moves a queued job to running under a new lease and counts an attempt;
      ``renew`` extends a live lease; ``requeue_expired`` requeues running jobs whose
      lease expired, or fails them once ``attempts >= max_attempts``, and returns the
      jobs it changed (at most ``limit``, in no particular order).
    * ``list`` pages through jobs in creation order (oldest first), optionally by status.
    * ``watch`` yields a ``SNAPSHOT`` event of the current state and then every change,
      in order (or, given a ``cursor``, every change after it, ``"0"`` meaning all that
      is retained); it ends after a ``completed``, ``failed`` or ``cancelled`` event, or
      when the job is deleted or expires.
    """

    async def create(self, job: Job, *, replace: bool = False) -> Job: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def update(
        self, job_id: str, *, lease_token: str | None = None, **fields: Unpack[JobFields]
    ) -> int:
        """Write the given fields; returns the job's new ``version``."""
        ...

    async def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        lease_token: str | None = None,
        **fields: Unpack[JobFields],
    ) -> Job: ...

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job: ...

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease: ...

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]: ...

    async def delete(self, job_id: str) -> bool: ...

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage: ...

    def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]: ...

    async def aclose(self) -> None: ...
