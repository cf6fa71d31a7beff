"""Workers on Dramatiq (``pip install 'audioflow[dramatiq]'``), Redis or RabbitMQ broker.

The broker carries job ids only; the :class:`~audioflow.JobStore` holds every job's
state. A client submits through a :class:`DramatiqQueue`; a worker process runs the
``audioflow.run_job`` actor of the same queue, with a :class:`WorkerRuntime` middleware
that owns the process's pipeline (one transcriber, loaded once) and sweeps expired
leases. ``audioflow worker`` starts such processes; see ``docs/workers.md``.

Client side::

    queue = DramatiqQueue("redis://127.0.0.1:6379/0")
    job = await queue.submit(store, "/shared/media/talk.mp4")

Worker side, in a module given to the ``dramatiq`` command (what ``audioflow worker``
does for you)::

    queue = DramatiqQueue("amqp://guest:guest@127.0.0.1:5672/")
    queue.broker.add_middleware(
        WorkerRuntime(queue, lambda: Pipeline.default(store=RedisJobStore(url)))
    )
    broker = queue.broker
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Callable
from typing import Any

import anyio

from ._config import redact_url
from .errors import ConfigurationError, MissingDependencyError, StoreUnavailableError
from .pipeline import Pipeline
from .records import Job, JobOptions
from .store.protocol import JobStore
from .worker import Outcome, run_job, submit, sweep_forever

try:
    import dramatiq
    from dramatiq.asyncio import get_event_loop_thread
    from dramatiq.middleware import AsyncIO, Middleware, TimeLimit
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("dramatiq", "dramatiq") from exc

__all__ = [
    "ACTOR_NAME",
    "DEFAULT_QUEUE",
    "DramatiqQueue",
    "WorkerRuntime",
    "broker_from_url",
]

log = logging.getLogger("audioflow.dramatiq")

#: The actor every audioflow queue declares; its one argument is a job id.
ACTOR_NAME = "audioflow.run_job"
DEFAULT_QUEUE = "audioflow"

#: Deliveries of one id retried while the store is unreachable before the claim (the
#: job's own attempts are counted by the store, not here): about 25 min at 30 s.
_MAX_DELIVERY_RETRIES = 50

_runtime: WorkerRuntime | None = None


def broker_from_url(url: str) -> dramatiq.Broker:
    """A Dramatiq broker for ``redis://…``/``rediss://…`` or ``amqp://…``/``amqps://…``.

    Its middleware is Dramatiq's default without ``TimeLimit`` (a job runs as long as
    its lease is renewed; a wall-clock limit would kill long media) and with
    ``AsyncIO`` (the actor is a coroutine on the process's event loop).
    """
    middleware = [m() for m in dramatiq.middleware.default_middleware if m is not TimeLimit]
    middleware.append(AsyncIO())
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=middleware)  # type: ignore[no-untyped-call]
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # confirm_delivery: send() returns once RabbitMQ has the message, or raises.
        return RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)
    raise ConfigurationError(
        f"the broker must be a redis:// or amqp:// URL, not {redact_url(url)!r}"
    )


def _retry_delivery(retries: int, exc: BaseException) -> bool:
    """Deliver an id again only when the store could not be asked about the job."""
    return isinstance(exc, StoreUnavailableError) and retries < _MAX_DELIVERY_RETRIES


async def _perform(job_id: str) -> None:
    runtime = _runtime
    if runtime is None:
        raise ConfigurationError(
            "this Dramatiq process has no audioflow WorkerRuntime middleware; "
            "start workers with `audioflow worker`, or add WorkerRuntime to the broker"
        )
    await runtime.run(job_id)


class DramatiqQueue:
    """One audioflow queue on a Dramatiq broker: its actor, and how to send to it.

    Args:
        broker: a broker, or a URL for :func:`broker_from_url`.
        queue_name: the Dramatiq queue (workers and clients must agree).
    """

    def __init__(self, broker: dramatiq.Broker | str, *, queue_name: str = DEFAULT_QUEUE) -> None:
        self.broker = broker_from_url(broker) if isinstance(broker, str) else broker
        self.queue_name = queue_name
        options: dict[str, Any] = {}
        names = {type(m) for m in self.broker.middleware}
        if TimeLimit in names:  # a broker of the caller's: no wall-clock limit on jobs
            options["time_limit"] = 30 * 24 * 3600 * 1000
        declare = dramatiq.actor(
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=queue_name,
            retry_when=_retry_delivery,
            min_backoff=1_000,
            max_backoff=30_000,
            **options,
        )
        self.actor: dramatiq.Actor[[str], Any] = declare(_perform)

    def __repr__(self) -> str:
        return f"DramatiqQueue({type(self.broker).__name__}, queue_name={self.queue_name!r})"

    def send(self, job_id: str) -> None:
        """Enqueue ``job_id`` (blocking; from async code use :meth:`enqueue`)."""
        self.actor.send(job_id)

    async def enqueue(self, job_id: str) -> None:
        """Enqueue ``job_id`` without blocking the event loop."""
        await anyio.to_thread.run_sync(self.send, job_id)

    async def submit(
        self,
        store: JobStore,
        source: str | os.PathLike[str],
        *,
        job_id: str | None = None,
        options: JobOptions | None = None,
    ) -> Job:
        """:func:`audioflow.worker.submit` to this queue."""
        return await submit(store, source, self.enqueue, job_id=job_id, options=options)

    def close(self) -> None:
        """Close the broker's connections."""
        self.broker.close()


class WorkerRuntime(Middleware):
    """What a worker process holds: its pipeline, and the sweep of expired leases.

    Args:
        queue: the queue this process consumes (the sweep re-enqueues to it).
        make_pipeline: called once per process, on its event loop, to make the
            pipeline every job runs with (its store included; closed at shutdown).
        sweep_interval: seconds between two sweeps of expired leases.
        max_attempts: the store fails a job instead of requeuing it after this many.
    """

    def __init__(
        self,
        queue: DramatiqQueue,
        make_pipeline: Callable[[], Pipeline],
        *,
        sweep_interval: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.queue = queue
        self.make_pipeline = make_pipeline
        self.sweep_interval = sweep_interval
        self.max_attempts = max_attempts
        self.pipeline: Pipeline | None = None
        self._sweeper: concurrent.futures.Future[None] | None = None

    async def run(self, job_id: str) -> None:
        """Run one delivery (the actor's body)."""
        assert self.pipeline is not None, "the worker has not booted"
        report = await run_job(self.pipeline, job_id)
        bad = report.outcome in (Outcome.FAILED, Outcome.LOST)
        level = logging.WARNING if bad else logging.INFO
        reason = f" ({report.reason})" if report.reason else ""
        log.log(level, "job %s: %s%s", job_id, report.outcome.value, reason)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        global _runtime
        thread = get_event_loop_thread()
        if thread is None:
            raise ConfigurationError("WorkerRuntime needs Dramatiq's AsyncIO middleware")

        async def start() -> None:
            self.pipeline = self.make_pipeline()

        thread.run_coroutine(start())
        _runtime = self
        self._sweeper = asyncio.run_coroutine_threadsafe(self._sweep(), thread.loop)

    async def _sweep(self) -> None:
        assert self.pipeline is not None
        await sweep_forever(
            self.pipeline.store,
            self.queue.enqueue,
            interval=self.sweep_interval,
            max_attempts=self.max_attempts,
        )

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        global _runtime
        thread = get_event_loop_thread()
        if self._sweeper is not None:
            self._sweeper.cancel()
        pipeline, self.pipeline = self.pipeline, None
        _runtime = None
        if thread is None or pipeline is None:
            return

        async def stop() -> None:
            await pipeline.aclose()
            await pipeline.store.aclose()

        thread.run_coroutine(stop())
