"""The stage contract: what every pipeline stage implements, and how stages are wired.

A stage is any object with a ``name`` and an ``async def run(inbox, outbox, ctx)``
(:class:`Stage`). ``run`` owns both streams: it does ``async with inbox, outbox:`` so that
end-of-stream flows downstream when it returns and a consumer that went away
(``BrokenResourceError`` / ``ClosedResourceError``) stops the producer.

:func:`run_stages` connects stages with **bounded** anyio memory object streams inside one
task group: back-pressure, overlap of neighbouring stages and clean cancellation come from
anyio, not from code here. :func:`function_stage` turns a plain ``async def f(item)`` into
a stage.

Example::

    ctx = StageContext(job_id="job-1")
    chunks = await run_stages(["talk.mp3"], Decode(), Quality(), ctx=ctx)
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

__all__ = [
    "FunctionStage",
    "ReportCallback",
    "Stage",
    "StageContext",
    "default_cpu_limiter",
    "function_stage",
    "run_stages",
]

In = TypeVar("In")
Out = TypeVar("Out")
In_contra = TypeVar("In_contra", contravariant=True)
Out_co = TypeVar("Out_co", covariant=True)

#: ``report(stage, fraction, message)``: a stage's progress, ``fraction`` in 0..1 or NaN
#: when unknown. It is called from the event loop and must not block.
ReportCallback = Callable[[str, float, str], None]


def _ignore_progress(stage: str, fraction: float, message: str) -> None:
    """The default progress hook: progress goes nowhere."""


def default_cpu_limiter() -> anyio.CapacityLimiter:
    """A limiter sized to the machine's cores: the CPU-bound stages of the jobs that
    share it (decode, VAD, inference) never oversubscribe the cores together.
    Create it inside the event loop that uses it."""
    import os

    return anyio.CapacityLimiter(max(1, os.cpu_count() or 1))


@dataclass(slots=True)
class StageContext:
    """What every stage of one job shares.

    Args:
        job_id: the job the stages work for (errors carry it).
        limiter: caps concurrent CPU-bound work in worker threads across all stages.
        report: progress hook, see :data:`ReportCallback`.
    """

    job_id: str | None = None
    limiter: anyio.CapacityLimiter = field(default_factory=default_cpu_limiter)
    report: ReportCallback = _ignore_progress

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """Report progress of ``stage``; ``fraction`` is clamped to 0..1 (NaN = unknown)."""
        if not math.isnan(fraction):
            fraction = min(1.0, max(0.0, fraction))
        self.report(stage, fraction, message)


@runtime_checkable
class Stage(Protocol[In_contra, Out_co]):
    """A pipeline stage: reads items from ``inbox`` and writes results to ``outbox``.

    ``run`` must do ``async with inbox, outbox:`` so that both ends are closed on every
    path: the next stage sees end-of-stream when this one finishes, and the previous one
    gets ``BrokenResourceError`` when this one fails or is cancelled.
    """

    @property
    def name(self) -> str:
        """Short stage name, used in progress and errors (``decode``, ``vad``, ...)."""
        ...

    async def run(
        self,
        inbox: ObjectReceiveStream[In_contra],
        outbox: ObjectSendStream[Out_co],
        ctx: StageContext,
    ) -> None:
        """Consume ``inbox`` until end-of-stream, sending results to ``outbox``."""
        ...


class FunctionStage(Stage[In, Out]):
    """A stage that applies ``func`` to each item, in order (see :func:`function_stage`)."""

    def __init__(self, name: str, func: Callable[[In], Awaitable[Out]]) -> None:
        self._name = name
        self._func = func

    @property
    def name(self) -> str:
        """The stage's name."""
        return self._name

    async def run(
        self, inbox: ObjectReceiveStream[In], outbox: ObjectSendStream[Out], ctx: StageContext
    ) -> None:
        """Send ``await func(item)`` downstream for every item of ``inbox``."""
        async with inbox, outbox:
            async for item in inbox:
                await outbox.send(await self._func(item))


def function_stage(
    func: Callable[[In], Awaitable[Out]], *, name: str = ""
) -> FunctionStage[In, Out]:
    """Wrap a plain ``async def func(item) -> out`` into a :class:`Stage`.

    Example::

        double = function_stage(lambda x: anyio.to_thread.run_sync(np.multiply, x, 2))
    """
    return FunctionStage(name or getattr(func, "__name__", "function"), func)


_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")
_D = TypeVar("_D")
_E = TypeVar("_E")
_F = TypeVar("_F")
_G = TypeVar("_G")


# Typed overloads: a type checker verifies that each stage accepts what the previous
# one emits (``Decode`` -> ``Quality`` -> ``DetectSpeech`` -> ``Transcribe``) and infers
# the result's item type. Only chains of seven or more stages go unchecked.
@overload
async def run_stages(
    source: Iterable[_A],
    s1: Stage[_A, _B],
    /,
    *,
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[_B]: ...
@overload
async def run_stages(
    source: Iterable[_A],
    s1: Stage[_A, _B],
    s2: Stage[_B, _C],
    /,
    *,
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[_C]: ...
@overload
async def run_stages(
    source: Iterable[_A],
    s1: Stage[_A, _B],
    s2: Stage[_B, _C],
    s3: Stage[_C, _D],
    /,
    *,
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[_D]: ...
@overload
async def run_stages(
    source: Iterable[_A],
    s1: Stage[_A, _B],
    s2: Stage[_B, _C],
    s3: Stage[_C, _D],
    s4: Stage[_D, _E],
    /,
    *,
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[_E]: ...
@overload
async def run_stages(
    source: Iterable[_A],
    s1: Stage[_A, _B],
    s2: Stage[_B, _C],
    s3: Stage[_C, _D],
    s4: Stage[_D, _E],
    s5: Stage[_E, _F],
    /,
    *,
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[_F]: ...
@overload
async def run_stages(
    source: Iterable[_A],
    s1: Stage[_A, _B],
    s2: Stage[_B, _C],
    s3: Stage[_C, _D],
    s4: Stage[_D, _E],
    s5: Stage[_E, _F],
    s6: Stage[_F, _G],
    /,
    *,
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[_G]: ...
@overload
async def run_stages(
    source: Iterable[Any],
    s1: Stage[Any, Any],
    s2: Stage[Any, Any],
    s3: Stage[Any, Any],
    s4: Stage[Any, Any],
    s5: Stage[Any, Any],
    s6: Stage[Any, Any],
    s7: Stage[Any, Any],
    /,
    *stages: Stage[Any, Any],
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[Any]: ...
async def run_stages(
    source: Iterable[Any],
    *stages: Stage[Any, Any],
    ctx: StageContext | None = None,
    buffer: int = 1,
) -> list[Any]:
    """Run ``stages`` as a chain fed with ``source``; return what the last stage emitted.

    Every link is a bounded memory object stream of ``buffer`` items, so at most
    ``buffer`` items wait between two stages and a slow stage slows the ones before it.
    All stages run in one task group: if one fails, the others are cancelled and its
    error is re-raised as is (not wrapped in an ``ExceptionGroup``; the neighbours'
    ``BrokenResourceError`` s are consequences and dropped).

    Args:
        source: items fed to the first stage, e.g. ``["talk.mp3"]``.
        stages: the stages, upstream first.
        ctx: shared context; a fresh :class:`StageContext` by default.
        buffer: the capacity of each link (``0`` = rendezvous).

    Returns:
        Everything the last stage sent, in order. Use this for tests and small jobs; a
        long-running consumer should wire the streams itself.
    """
    if not stages:
        raise ValueError("run_stages needs at least one stage")
    if buffer < 0:
        raise ValueError("buffer must be >= 0")
    ctx = ctx or StageContext()
    results: list[Any] = []

    async def feed(send: ObjectSendStream[Any]) -> None:
        async with send:
            for item in source:
                await send.send(item)

    async def collect(receive: ObjectReceiveStream[Any]) -> None:
        async with receive:
            async for item in receive:
                results.append(item)

    try:
        async with anyio.create_task_group() as tg:
            send, receive = anyio.create_memory_object_stream[Any](buffer)
            tg.start_soon(feed, send)
            for stage in stages:
                next_send, next_receive = anyio.create_memory_object_stream[Any](buffer)
                tg.start_soon(stage.run, receive, next_send, ctx, name=f"stage:{stage.name}")
                receive = next_receive
            tg.start_soon(collect, receive)
    except BaseExceptionGroup as group:
        # One stage failing makes its neighbours fail with Broken/ClosedResourceError;
        # those are consequences, so surface the root cause on its own.
        # (Re-raised as is: ``from None`` would wipe the root cause's own ``__cause__``.)
        raise _root_cause(group)  # noqa: B904
    return results


def _root_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    consequences = (anyio.BrokenResourceError, anyio.ClosedResourceError)
    leaves = list(_leaves(group))
    for exc in leaves:
        if not isinstance(exc, consequences):
            return exc
    return leaves[0]


def _leaves(exc: BaseException) -> Iterable[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
