"""Running jobs on workers: the part every queue engine shares.

A queue engine (Dramatiq, Celery, ARQ, SAQ, …) only delivers job ids; the
:class:`~audioflow.JobStore` says what each job is. This module is what a worker does
with a delivered id (:func:`run_job`) and what a client does to start, stop and recover
jobs (:func:`submit`, :func:`cancel`, :func:`sweep`). ``audioflow.dramatiq`` wires it to
Dramatiq; any other engine calls the same functions from its own task::

    @celery_app.task(acks_late=True)
    def transcribe(job_id: str) -> None:
        anyio.run(run_job, pipeline, job_id)     # one Pipeline per worker process

Deliveries are at-least-once, so :func:`run_job` makes every delivery but one a no-op:
it claims the job in the store (a compare-and-set, so two deliveries of one job cannot
both run it), and does nothing for a job that is missing, finished, cancelled, or
running under another worker's live lease. Retries live in the store alone: a worker
that died leaves its job ``running`` until the lease expires; :func:`sweep` then
requeues it (or fails it after ``max_attempts``, counted by the store at each claim)
and enqueues it again.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import msgspec

from ._jobrun import admit
from ._writers import ProgressCallback
from .errors import InvalidTransitionError, LeaseLostError, StoreError
from .records import EventKind, Job, JobError, JobOptions, JobStatus, utcnow
from .store._watch import last_event
from .store.protocol import JobStore

if TYPE_CHECKING:
    import os

    from .pipeline import Pipeline

__all__ = [
    "Enqueue",
    "Outcome",
    "RunReport",
    "cancel",
    "run_job",
    "submit",
    "sweep",
    "sweep_forever",
]

log = logging.getLogger("audioflow.worker")

#: Sends a job id to the workers (``await enqueue(job_id)``).
Enqueue = Callable[[str], Awaitable[None]]


class Outcome(enum.StrEnum):
    """What one delivery of a job id did."""

    #: This delivery ran the job to ``completed``.
    COMPLETED = "completed"
    #: This delivery ran the job and it ended ``failed`` (see ``RunReport.error``).
    FAILED = "failed"
    #: The job was cancelled from elsewhere while this delivery ran it; it stopped.
    CANCELLED = "cancelled"
    #: Nothing to do: the job is missing, finished, cancelled, running under another
    #: worker's live lease, or another delivery claimed it first.
    SKIPPED = "skipped"
    #: The run lost its lease (the store was unreachable for a whole lease, or another
    #: worker took the job over); it stopped and wrote nothing more.
    LOST = "lost"
    #: This process let go of the job (``detach`` was set: it is shutting down). The job
    #: stays ``running`` until its lease expires; the sweep then requeues it, and the
    #: next run resumes from its checkpoint.
    DETACHED = "detached"


class RunReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_job` did with one delivery."""

    job_id: str
    outcome: Outcome
    #: Why, in words (for logs).
    reason: str = ""
    #: The error that ended a ``failed`` or ``lost`` run.
    error: JobError | None = None


_SKIP_REASONS = {
    JobStatus.COMPLETED: "it already completed",
    JobStatus.FAILED: "it failed; submit it again to retry",
    JobStatus.CANCELLED: "it was cancelled",
}


async def run_job(
    pipeline: Pipeline,
    job_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    detach: anyio.Event | None = None,
) -> RunReport:
    """Run the queued job ``job_id`` with ``pipeline`` (its store, transcriber, lease).

    Claims the job under a lease, runs it from its checkpoint (windows already
    transcribed are not sent again), renews the lease, and ends it ``completed`` or
    ``failed``. Meanwhile it watches the job in the store, and stops within a moment
    when the job is cancelled (or deleted) from anywhere; the run then writes nothing
    more. A delivery for a job that is not ``queued`` does nothing (``SKIPPED``).
    Setting ``detach`` (a process shutting down) stops the run without ending the job
    (``DETACHED``): it is recovered as after a crash, from its checkpoint.

    Only a store error before or in the claim is raised (``StoreError``): the job
    could not be read or claimed, so the engine should deliver the id again later (a
    claim that took effect though its answer was lost leaves the job ``running`` under
    a lease nobody renews: the sweep requeues it once that expires). Every later
    error is in the report and in the store; the job's own failures (a file that is
    not media, a source this worker cannot read, a transcriber error) end it
    ``failed`` with the error, never in a retry loop.
    """
    store = pipeline.store
    job = await store.get(job_id)
    if job is None:
        return _skipped(job_id, "no such job (deleted, or expired from the store)")
    if job.status is not JobStatus.QUEUED:
        if job.status is JobStatus.RUNNING:
            owner = job.lease.owner if job.lease else "another worker"
            reason = f"it is running under {owner}'s lease (the sweep requeues it if it expires)"
        else:
            reason = _SKIP_REASONS[job.status]
        return _skipped(job_id, reason)
    try:
        run = await pipeline._claim(job_id, job.source, on_progress)
    except InvalidTransitionError as exc:
        return _skipped(job_id, f"another delivery took it first (it is {exc.current})")

    stop = anyio.CancelScope()

    async def watch_for_cancel() -> None:
        if await _ended_elsewhere(store, job_id):
            run.abandon()  # the job is not this run's any more: write nothing
            stop.cancel()

    detached = False

    async def wait_for_detach(event: anyio.Event) -> None:
        nonlocal detached
        await event.wait()
        detached = True
        run.abandon()  # leave the job to its lease: the sweep recovers it
        stop.cancel()

    report: RunReport | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_for_cancel)
        if detach is not None:
            tg.start_soon(wait_for_detach, detach)
        try:
            with stop:
                await run.execute(lambda: pipeline._execute(run, job.source))
                report = RunReport(job_id=job_id, outcome=Outcome.COMPLETED)
        except LeaseLostError as exc:
            report = RunReport(
                job_id=job_id, outcome=Outcome.LOST, reason=str(exc), error=_error(exc)
            )
        except Exception as exc:
            report = RunReport(
                job_id=job_id, outcome=Outcome.FAILED, reason=str(exc), error=_error(exc)
            )
        finally:
            tg.cancel_scope.cancel()
    if report is None and detached:
        report = RunReport(job_id=job_id, outcome=Outcome.DETACHED, reason="let go")
    elif report is None:  # the stop scope caught its own cancellation
        report = RunReport(
            job_id=job_id, outcome=Outcome.CANCELLED, reason="cancelled from elsewhere"
        )
    return report


async def _ended_elsewhere(store: JobStore, job_id: str) -> bool:
    """Wait until the job ends: ``True`` if it was cancelled, deleted or is gone (not by
    this run), ``False`` if it completed or failed."""
    last = await last_event(store, job_id)
    return (
        last is None
        or last.kind is EventKind.DELETED
        or last.status not in (JobStatus.COMPLETED, JobStatus.FAILED)
    )


def _skipped(job_id: str, reason: str) -> RunReport:
    log.debug("job %s: nothing to do: %s", job_id, reason)
    return RunReport(job_id=job_id, outcome=Outcome.SKIPPED, reason=reason)


def _error(exc: BaseException) -> JobError:
    return JobError(
        type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        stage=getattr(exc, "stage", None) or None,
    )


async def submit(
    store: JobStore,
    source: str | os.PathLike[str],
    enqueue: Enqueue,
    *,
    job_id: str | None = None,
    options: JobOptions | None = None,
) -> Job:
    """Create a ``queued`` job for ``source`` and send its id to the workers.

    ``source`` is read by the worker, not here: it must name the file at a path every
    worker sees (shared storage), or a URL PyAV opens.

    The job id is the job's identity: submitting an id that exists runs it at most
    once more. A ``queued`` job is enqueued again (harmless: the first delivery claims
    it, the others do nothing; this also recovers a job whose message was lost), a
    ``failed`` or ``cancelled`` one is queued again as an explicit retry (its
    checkpoint kept), and a ``running`` or ``completed`` one is returned as it is.

    Raises:
        ValueError: ``job_id`` exists for another source, or with other options.
        StoreError: the store failed; nothing was enqueued.
        Exception: whatever ``enqueue`` raised; the job stays ``queued`` and a later
            ``submit`` of the same id enqueues it.
    """
    job_id = job_id or uuid.uuid4().hex
    try:
        job = await admit(store, job_id, str(source), options, new=JobOptions())
    except InvalidTransitionError as exc:
        if exc.current != JobStatus.RUNNING:
            raise
        current = await store.get(job_id)
        if current is None:
            raise
        return current  # running under a live lease: it needs no new delivery
    if job.status is JobStatus.QUEUED:
        await enqueue(job.id)
    return job


async def cancel(store: JobStore, job_id: str) -> Job:
    """Cancel a queued or running job, wherever it runs; returns the cancelled job.

    A worker running it sees the change in the store and stops (``run_job``); a
    delivery still on its way finds it cancelled and does nothing. The windows its
    checkpoint holds are kept: submitting the id again resumes from them.

    Raises:
        JobNotFoundError: no such job.
        InvalidTransitionError: the job already finished (completed, failed, cancelled).
    """
    return await store.transition(
        job_id, JobStatus.CANCELLED, expect={JobStatus.QUEUED, JobStatus.RUNNING}
    )


async def sweep(
    store: JobStore, enqueue: Enqueue, *, max_attempts: int = 3, limit: int = 100
) -> list[Job]:
    """Requeue every job whose lease expired (its worker died) and enqueue it again.

    A job that already had ``max_attempts`` attempts is failed instead (by the store,
    with the error recorded). Safe to run from every worker at once: the store requeues
    each job for one caller only. Returns the jobs it changed.
    """
    changed: list[Job] = []
    while True:
        jobs = await store.requeue_expired(max_attempts=max_attempts, limit=limit)
        changed += jobs
        for job in jobs:
            if job.status is JobStatus.QUEUED:
                log.info("job %s: its lease expired; requeued (attempt %d)", job.id, job.attempts)
                await enqueue(job.id)
            else:
                log.warning("job %s: its lease expired after %d attempts", job.id, job.attempts)
        if len(jobs) < limit:
            return changed


async def sweep_forever(
    store: JobStore,
    enqueue: Enqueue,
    *,
    interval: float,
    max_attempts: int = 3,
) -> None:
    """Run :func:`sweep` every ``interval`` seconds until cancelled; errors are logged."""
    while True:
        try:
            await sweep(store, enqueue, max_attempts=max_attempts)
        except StoreError as exc:  # an outage: one line each time, not a traceback
            log.warning("sweep: %s: %s; trying again in %g s", type(exc).__name__, exc, interval)
        except Exception:
            log.exception("sweep failed at %s; trying again in %g s", utcnow(), interval)
        await anyio.sleep(interval)
