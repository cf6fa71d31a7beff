"""The ``JobStore`` protocol and the rules every backend shares.

A backend is anything with these methods; nothing needs to inherit from audioflow.
``audioflow.testing.JobStoreConformance`` proves a backend meets the contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

from ..records import LEGAL_TRANSITIONS as LEGAL_TRANSITIONS  # the rule lives with the schema
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
    Usage,
    WindowTranscript,
)

__all__ = [
    "LEGAL_TRANSITIONS",
    "UPDATABLE_FIELDS",
    "JobFields",
    "JobStore",
    "check_fields",
    "check_values",
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
    usage: Usage


#: Names of the fields ``update`` and ``transition`` accept.
UPDATABLE_FIELDS: frozenset[str] = frozenset(JobFields.__annotations__)


def check_fields(fields: Mapping[str, Any]) -> None:
    """Reject field names ``update``/``transition`` may not write (``TypeError``)."""
    bad = set(fields) - UPDATABLE_FIELDS
    if bad:
        raise TypeError(
            f"cannot write job field(s) {sorted(bad)}; writable: {sorted(UPDATABLE_FIELDS)}"
        )


def check_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check job field values the way the built-in stores do; returns them typed.

    For third-party stores: call it on the fields of ``update``/``transition`` (after
    :func:`check_fields`) and on every field of a job given to ``create``, before
    writing anything. ``{"progress": {"fraction": 0.5}}`` comes back as
    ``{"progress": Progress(fraction=0.5)}``; a checkpoint's windows come back in index
    order.

    Raises:
        TypeError: an unknown field, or a value of the wrong type (also ``bytes`` for a
            ``str``, ``True`` for an ``int``).
        ValueError: a value out of range: a ``progress.fraction`` outside 0..1, negative
            ``attempts``, a naive datetime, NaN or infinity.
    """
    from ._codec import FIELDS, normalize_values

    unknown = set(fields) - set(FIELDS) - {"id", "version"}
    if unknown:
        raise TypeError(f"not job field(s): {sorted(unknown)}")
    return {name: typed for name, (typed, _) in normalize_values(fields).items()}


@runtime_checkable
class JobStore(Protocol):
    """Where every job's state lives. All methods are safe to call concurrently.

    Semantics (checked by ``audioflow.testing.JobStoreConformance``):

    * ``create`` stores a new job with ``version == 1``; ``JobExistsError`` if the id
      exists, unless ``replace=True``, which atomically replaces every field. A job
      created under the id of a deleted one starts a new event history.
    * ``get`` returns the typed job or ``None``; a field that cannot be decoded raises
      ``JobCorruptedError`` naming the job and field.
    * ``update`` writes only the named fields, atomically, bumps ``version`` and
      refreshes the TTL. ``JobNotFoundError`` if the job is missing (nothing is
      created); ``InvalidTransitionError`` if it is terminal; ``LeaseLostError`` if
      ``lease_token`` is given and is not the current, live lease (checked first: a
      writer whose token no longer holds the job learns that, whatever the job's
      status, here and in ``add_windows`` and ``transition``). Values are checked
      before anything is written: ``TypeError`` for a value of the wrong type,
      ``ValueError`` for one out of range (a ``fraction`` outside 0..1, negative
      ``attempts``, a naive datetime), ``JobTooLargeError`` past the store's size limits.
    * ``transition`` is a compare-and-set of ``status`` plus fields: of N concurrent
      callers expecting the same status exactly one wins, the others get
      ``InvalidTransitionError``. Moving to ``running`` sets ``started_at``; moving to
      a finished status sets ``finished_at``; leaving ``running`` drops the lease.
    * ``add_windows`` adds transcribed windows to the job's checkpoint at a cost that
      depends on those windows only (not on the windows already stored): a checkpoint
      with another ``key`` is replaced, a window with the index of a stored one
      replaces it. Same checks as ``update``; one ``CHECKPOINTED`` event.
    * ``claim`` moves a queued job to running under a new lease and counts an attempt;
      ``renew`` extends a live lease; a lease has expired once the store's clock reads
      ``expires_at`` or later. ``requeue_expired`` requeues running jobs whose lease
      expired, or fails them once ``attempts >= max_attempts``, and returns the jobs
      it changed (at most ``limit``, in no particular order).
    * ``list`` pages through jobs in creation order (oldest first, ties broken by id),
      optionally by status; a job that cannot be decoded is skipped and named in
      ``JobPage.corrupt``.
    * ``watch`` yields a ``SNAPSHOT`` event of the current state and then every change,
      in order (or, given a ``cursor``, every change after it, ``"0"`` meaning all that
      is retained). It never skips events silently: when the events a watcher needs
      are no longer retained, it yields a ``SNAPSHOT`` with ``resync=True`` instead
      and goes on from there. It ends after a ``completed``, ``failed`` or
      ``cancelled`` event, at once on a job that already finished whatever the cursor,
      or when the job is deleted or expires. A malformed cursor is a ``ValueError``.
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

    async def add_windows(
        self,
        job_id: str,
        windows: Sequence[WindowTranscript],
        *,
        key: str,
        lease_token: str | None = None,
    ) -> int:
        """Add ``windows`` to the checkpoint with ``key``; returns the new ``version``."""
        ...

    async def claim(self, job_id: str, *, owner: str, lease_seconds: float) -> Job: ...

    async def renew(self, job_id: str, *, lease_token: str, lease_seconds: float) -> Lease: ...

    async def requeue_expired(self, *, max_attempts: int = 3, limit: int = 100) -> list[Job]: ...

    async def delete(self, job_id: str) -> bool: ...

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> JobPage: ...

    def watch(self, job_id: str, *, cursor: str | None = None) -> AsyncIterator[JobEvent]: ...

    async def aclose(self) -> None: ...
