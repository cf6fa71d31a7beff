"""One job's run under a lease: admit it, claim it, keep the lease, record how it ended.

This is the part of ``Pipeline.run`` that is about the job, not the audio. Its life:

1. :func:`admit` finds or creates the job and puts it back in the queue if it is to run
   again (failed, cancelled, or running under a lease that expired).
2. :meth:`JobRun.claim` moves it ``queued → running`` under a fresh lease (an attempt is
   counted). From here every write carries the lease token, so a run that lost its
   lease cannot overwrite the run that took the job over.
3. :meth:`JobRun.execute` runs the work beside three tasks: the :class:`LeaseKeeper`
   (renews every third of the lease), the progress writer and the window saver.
4. The end: ``completed`` with the result; ``failed`` with a readable error for any
   exception, a store error included (raised to the caller as itself); ``cancelled``
   only when the caller was cancelled; and nothing at all once the lease is lost,
   because the job is someone else's by then. Every way out that may still write
   first saves the windows transcribed so far, and records what the run consumed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import anyio
import msgspec

from ._writers import ProgressCallback, ProgressWriter, WindowSaver
from .errors import (
    InvalidTransitionError,
    JobExistsError,
    LeaseLostError,
)
from .records import (
    Job,
    JobError,
    JobOptions,
    JobResult,
    JobStatus,
    Progress,
    Usage,
    utcnow,
)
from .stages.base import _leaves
from .store.protocol import JobFields, JobStore

__all__ = ["JobRun", "LeaseKeeper", "admit", "root_cause", "stored_result"]

log = logging.getLogger("audioflow")


async def admit(
    store: JobStore,
    job_id: str,
    source: str,
    options: JobOptions | None,
    *,
    new: JobOptions | None = None,
) -> Job:
    """The job to run: created, or an existing one made ready to run again.

    ``options=None`` means the job's own options, or ``new`` for a job this creates.
    A ``completed`` job is returned as it is.

    Raises:
        ValueError: the job exists for another source, or with other options.
        InvalidTransitionError: the job is running elsewhere under a live lease.
        StoreError: the store failed.
    """
    job = await store.get(job_id)
    if job is None:
        try:
            return await store.create(
                Job(id=job_id, source=source, options=options or new or JobOptions())
            )
        except JobExistsError:  # created meanwhile by someone else: take it from there
            job = await store.get(job_id)
            if job is None:
                raise
    if job.source != source:
        raise ValueError(
            f"job {job_id!r} is the job of {job.source!r}, not of {source!r}; "
            "a job id names one source: use another id"
        )
    if options is not None and options != job.options:
        raise ValueError(
            f"job {job_id!r} was created with other options ({job.options}); "
            "a job id names one set of options: use another id"
        )
    status = job.status
    if status is JobStatus.FAILED:  # an explicit retry
        return await store.transition(job_id, JobStatus.QUEUED, expect={JobStatus.FAILED})
    if status is JobStatus.CANCELLED:
        # Cancelled is final for that job record. A new run of the id starts a fresh
        # record that keeps what the old one holds of value: the checkpoint (windows
        # already paid for), what was consumed, attempts, meta and creation time.
        fresh = Job(
            id=job_id,
            source=job.source,
            options=job.options,
            created_at=job.created_at,
            attempts=job.attempts,
            meta=job.meta,
            checkpoint=job.checkpoint,
            usage=job.usage,
        )
        return await store.create(fresh, replace=True)
    if status is JobStatus.RUNNING:
        # The store lets this through only once the lease expired (its holder died).
        try:
            return await store.transition(job_id, JobStatus.QUEUED, expect={JobStatus.RUNNING})
        except InvalidTransitionError as exc:
            if exc.current != JobStatus.RUNNING:
                raise  # it moved on meanwhile (finished, cancelled): the store says how
            owner = job.lease.owner if job.lease else "another worker"
            raise InvalidTransitionError(
                job_id, exc.current, JobStatus.RUNNING, f"it is running: {owner} holds its lease"
            ) from exc
    return job


def stored_result(job: Job) -> JobResult:
    """A completed job's result as ``run`` returns it (with its artifacts)."""
    if job.result is None:
        raise InvalidTransitionError(
            job.id, job.status, JobStatus.RUNNING, "it completed without a stored result"
        )
    return msgspec.structs.replace(job.result, artifacts=job.artifacts)


def root_cause(exc: BaseException) -> BaseException:
    """Why a run's task group ended: a lost lease first, else the first real error.

    Cancellations and broken streams are consequences of another task's error, so they
    are only chosen when there is nothing else.
    """
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, LeaseLostError):
            return leaf
    consequences = (
        anyio.get_cancelled_exc_class(),
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
    )
    for leaf in leaves:
        if not isinstance(leaf, consequences):
            return leaf
    return leaves[0]


class LeaseKeeper:
    """Renews a run's lease every third of its length, from one task.

    The lease is judged lost, and :meth:`run` raises ``LeaseLostError``, when the store
    refuses a renewal, or when no renewal succeeded before the lease would have run
    out by this process's own monotonic clock (the store hung or is unreachable): by
    then another worker may own the job.
    """

    def __init__(
        self, store: JobStore, job_id: str, token: str, lease_seconds: float, since: float
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.token = token
        self.lease_seconds = lease_seconds
        #: Monotonic time the lease surely lasts until (it was granted after ``since``).
        self.deadline = since + lease_seconds
        self._last = since
        self._closed = anyio.Event()

    def close(self) -> None:
        self._closed.set()

    def remaining(self) -> float:
        """Seconds the lease surely still lasts."""
        return self.deadline - anyio.current_time()

    async def run(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            with anyio.move_on_after(self._last + interval - anyio.current_time()):
                await self._closed.wait()
            if self._closed.is_set():
                return
            sent = anyio.current_time()
            renewed = False
            with anyio.move_on_after(self.deadline - sent):
                await self.store.renew(
                    self.job_id, lease_token=self.token, lease_seconds=self.lease_seconds
                )
                renewed = True
            if not renewed:
                raise LeaseLostError(
                    self.job_id,
                    f"no renewal succeeded within the lease ({self.lease_seconds:g} s)",
                )
            self.deadline = sent + self.lease_seconds
            self._last = sent


class JobRun:
    """A claimed job, its lease and its writers; see the module docstring.

    Made by :meth:`claim`; :meth:`execute` runs the work and ends the job.
    """

    def __init__(
        self,
        store: JobStore,
        job: Job,
        *,
        key: str,
        lease_seconds: float,
        since: float,
        progress_interval: float,
        checkpoint_interval: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        assert job.lease is not None
        self.store = store
        self.job = job
        self.key = key
        token = job.lease.token
        self.keeper = LeaseKeeper(store, job.id, token, lease_seconds, since)
        self.progress = ProgressWriter(store, job.id, token, progress_interval, on_progress)
        checkpoint = job.checkpoint
        done = checkpoint.windows if checkpoint is not None and checkpoint.key == key else ()
        self.saver = WindowSaver(store, job.id, token, key, done, checkpoint_interval)
        self._on_progress = on_progress
        self._abandoned = False

    def abandon(self) -> None:
        """The job was cancelled or deleted elsewhere: end this run writing nothing.

        Its lease went with the cancel, so later writes would be refused anyway; this
        keeps the run from trying them (and from logging each refusal).
        """
        self._abandoned = True

    @classmethod
    async def claim(
        cls,
        store: JobStore,
        job_id: str,
        *,
        owner: str,
        lease_seconds: float,
        key: str,
        progress_interval: float = 0.25,
        checkpoint_interval: float = 0.0,
        on_progress: ProgressCallback | None = None,
    ) -> JobRun:
        """Claim the queued job ``job_id`` under a new lease.

        Raises:
            InvalidTransitionError: it is not queued (another run claimed it first).
        """
        since = anyio.current_time()
        job = await store.claim(job_id, owner=owner, lease_seconds=lease_seconds)
        return cls(
            store,
            job,
            key=key,
            lease_seconds=lease_seconds,
            since=since,
            progress_interval=progress_interval,
            checkpoint_interval=checkpoint_interval,
            on_progress=on_progress,
        )

    @property
    def token(self) -> str:
        return self.keeper.token

    @property
    def usage(self) -> Usage:
        """What the job has consumed over every attempt, this one included."""
        return self.job.usage + self.saver.usage

    async def execute(self, work: Callable[[], Awaitable[JobResult]]) -> JobResult:
        """Run ``work`` under the lease and end the job by its outcome.

        Raises:
            The exception that ended the run, as itself: a stage's error, a store's
            (``StoreError``, ``LeaseLostError``), or the caller's cancellation.
        """
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.keeper.run)
                tg.start_soon(self.progress.run)
                tg.start_soon(self.saver.run)
                try:
                    result = await work()
                finally:
                    self.keeper.close()
                    self.progress.close()
                    self.saver.close()
            await self._complete(result)
        except BaseException as exc:
            cause = root_cause(exc)
            await self._end(cause)
            if cause is exc:
                raise
            self._reraise(cause)
        return result

    @staticmethod
    def _reraise(cause: BaseException) -> NoReturn:
        raise cause from cause.__cause__

    async def _complete(self, result: JobResult) -> None:
        await self.saver.flush()
        final = Progress(stage="render", fraction=1.0, message="done", updated_at=utcnow())
        fields: JobFields = {
            "result": msgspec.structs.replace(result, artifacts={}),
            "artifacts": result.artifacts,
            "progress": final,
            "usage": self.usage,
        }
        await self.store.transition(
            self.job.id,
            JobStatus.COMPLETED,
            expect={JobStatus.RUNNING},
            lease_token=self.token,
            **fields,
        )
        if self._on_progress is not None:
            self._on_progress(final)

    async def _end(self, cause: BaseException) -> None:
        """Leave the job ``cancelled`` or ``failed``, unless the lease is lost.

        Shielded from cancellation and bounded by what remains of the lease (later
        writes would be refused anyway). A store error here is logged, not raised: the
        caller gets the error that ended the run.
        """
        job_id = self.job.id
        if self._abandoned:
            log.info("job %s: ended elsewhere; this run stopped", job_id)
            return
        if isinstance(cause, LeaseLostError):
            log.warning("job %s: %s; this run writes nothing more", job_id, cause)
            return
        cancelled = isinstance(cause, anyio.get_cancelled_exc_class())
        fields: dict[str, Any] = {"usage": self.usage}
        if not cancelled:
            fields["error"] = JobError(
                type=type(cause).__name__,
                message=str(cause) or type(cause).__name__,
                stage=getattr(cause, "stage", None) or self.progress.stage,
            )
        to = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
        left = max(0.0, self.keeper.remaining())
        with anyio.CancelScope(shield=True), anyio.move_on_after(left):
            try:
                await self.saver.flush()
            except LeaseLostError as exc:
                log.warning("job %s: %s; this run writes nothing more", job_id, exc)
                return
            except Exception:
                log.exception("job %s: could not save its last windows", job_id)
            try:
                await self.store.transition(
                    job_id, to, expect={JobStatus.RUNNING}, lease_token=self.token, **fields
                )
            except LeaseLostError as exc:
                log.warning("job %s: %s; its end is not recorded by this run", job_id, exc)
            except Exception:
                log.exception("job %s: could not record that it %s", job_id, to.value)
