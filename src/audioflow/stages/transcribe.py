"""``Transcribe``: speech segments in, transcript segments on the original timeline out.

Consecutive :class:`~audioflow.SpeechSegment` s are packed into windows of at most the
transcriber's ``max_window`` seconds, each with a :class:`~audioflow.timeline.TimelineMap`.
The first window goes to the transcriber alone, the rest ``max_batch`` at a time, with
at most ``concurrency`` calls in flight; every word comes back relative to its window
and is mapped to the original timeline by its own offset
(:meth:`TimelineMap.map_word`). Segments are emitted in window order whatever order the
calls finish in.

Packing and mapping are :class:`WindowPacker` and ``map_window``
(``stages/_windows.py``); this module batches the windows, calls the transcriber and
emits in order. Memory stays bounded: at most ``concurrency * max_batch`` windows are
waiting, in flight or finished but not yet emitted, together.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import anyio
import msgspec
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream

from ..errors import AudioflowError, TranscriptionError
from ..records import SpeechSegment, TranscriptSegment, Usage
from ..timeline import TimelineMap
from ..transcribers.base import Transcriber, WindowCallback, WindowTranscript, pack_gap
from ._windows import PackedWindow, WindowPacker, map_window
from .base import StageContext, _root_cause

__all__ = ["PackedWindow", "Transcribe", "WindowPacker"]


class Transcribe:
    """Stage: :class:`~audioflow.SpeechSegment` s in, :class:`~audioflow.TranscriptSegment` s out.

    Args:
        transcriber: any :class:`~audioflow.transcribers.Transcriber`.
        language: passed to the transcriber (``None``: detect).
        concurrency: transcriber calls in flight at once.
        gap: seconds of silence between packed segments; ``None`` takes the
            transcriber's ``pack_gap`` if it has one, else 0.3. (Whisper: 0, its
            segments carry 0.4 s of the recording's own pause each side; a billed
            service wants little.)
        done: windows already transcribed (by index), e.g. from a checkpoint; they are
            not sent to the transcriber again.
        batch_wait: ``None`` (default): the first batch is the first window alone and
            every later one the next ``max_batch`` windows (fewer only at the end), so
            the words never depend on timing.
            Seconds: a batch goes out with what it has that long after its first
            window came (for sources that trickle in; batches then depend on timing).
        on_window: called with every newly transcribed window as soon as the
            transcriber reports it (in any order; also for the windows of a call that
            then fails or is cancelled, so a checkpoint keeps every window paid for).

    After ``run``: ``usage`` sums the transcriber's usage, ``language`` is the first
    language it reported (``language_probability``: its mean probability over the
    windows heard in it, when the transcriber detected it), ``windows`` counts the
    windows.
    """

    name = "transcribe"

    def __init__(
        self,
        transcriber: Transcriber,
        *,
        language: str | None = None,
        concurrency: int = 2,
        gap: float | None = None,
        done: Mapping[int, WindowTranscript] | None = None,
        on_window: WindowCallback | None = None,
        batch_wait: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.transcriber = transcriber
        self.language = language
        self.concurrency = concurrency
        self.gap = gap if gap is not None else pack_gap(transcriber)
        self.done = dict(done or {})
        self.on_window = on_window
        self.batch_wait = batch_wait
        self.usage = Usage()
        self.windows = 0
        self.language_probability: float | None = None
        #: Windows answered so far (in any order; windows from ``done`` included).
        self.answered = len(self.done)

    def __repr__(self) -> str:
        return f"Transcribe(transcriber={self.transcriber.name!r}, concurrency={self.concurrency})"

    async def run(
        self,
        inbox: ObjectReceiveStream[SpeechSegment],
        outbox: ObjectSendStream[TranscriptSegment],
        ctx: StageContext,
    ) -> None:
        """Pack, transcribe and map; see the class docstring."""
        batch_size = max(1, self.transcriber.max_batch)
        bound = self.concurrency * batch_size
        # One slot per window from packing until it is emitted: bounds the windows
        # waiting, in flight and finished-but-out-of-order together.
        slots = anyio.Semaphore(bound)
        send_windows, receive_windows = anyio.create_memory_object_stream[PackedWindow](batch_size)
        send_batches, receive_batches = anyio.create_memory_object_stream[list[PackedWindow]]()
        results: dict[int, tuple[WindowTranscript, TimelineMap]] = {}
        changed = anyio.Event()
        total: int | None = None

        def notify() -> None:
            nonlocal changed
            changed.set()
            changed = anyio.Event()

        async def pack() -> None:
            nonlocal total
            packer = WindowPacker(self.transcriber.max_window, gap=self.gap)
            count = 0
            async with send_windows, inbox:
                async for segment in inbox:
                    for packed in packer.push(segment):
                        await slots.acquire()
                        await send_windows.send(packed)
                        count += 1
                for packed in packer.finish():
                    await slots.acquire()
                    await send_windows.send(packed)
                    count += 1
            total = count
            notify()

        async def batch() -> None:
            # One task cuts the windows into consecutive batches (0, 1..n, n+1..2n, ...):
            # which windows share a call never depends on timing (a model's arithmetic
            # may round differently in another batch shape, and a small last batch
            # costs a beam search more per window). Decoding and speech detection run
            # far ahead of a model, so waiting for a full batch costs little;
            # ``batch_wait`` caps the wait. The first window goes alone: its call starts
            # as soon as it is packed, and a file of a few windows is two calls, not one
            # that leaves the second ``concurrency`` slot idle (see docs/pipeline.md).
            size = 1
            async with send_batches, receive_windows:
                async for first in receive_windows:
                    group = [first]
                    with anyio.move_on_after(
                        math.inf if self.batch_wait is None else self.batch_wait
                    ):
                        while len(group) < size:
                            try:
                                group.append(await receive_windows.receive())
                            except anyio.EndOfStream:
                                break
                    await send_batches.send(group)
                    size = batch_size

        sure: list[float] = []  # language probabilities of the windows in self.language

        async def work(batches: MemoryObjectReceiveStream[list[PackedWindow]]) -> None:
            async with batches:
                async for group in batches:
                    for packed, result in zip(group, await self._call(group, ctx), strict=True):
                        results[packed.window.index] = (result, packed.timeline)
                    notify()

        async def preload() -> None:
            # A transcriber with a model to load (WhisperTranscriber.load) loads it while
            # the source is decoded and searched for speech, instead of after. A failure
            # here is left to the first transcribe call, which raises it with the job's
            # context (or never, when the source has no speech).
            load = getattr(self.transcriber, "load", None)
            if load is not None:
                with contextlib.suppress(Exception):
                    await load()

        async def emit() -> None:
            async with outbox:
                index = 0
                while total is None or index < total:
                    if index not in results:
                        await changed.wait()
                        continue
                    result, timeline = results.pop(index)
                    self.usage = self.usage + result.usage
                    self.language = self.language or result.language
                    if result.language_probability is not None and (
                        result.language == self.language
                    ):
                        sure.append(result.language_probability)
                        self.language_probability = sum(sure) / len(sure)
                    for segment in map_window(result, timeline):
                        await outbox.send(segment)
                    slots.release()
                    index += 1
                    self.windows = index

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(preload)
                tg.start_soon(pack)
                tg.start_soon(batch)
                async with receive_batches:
                    for _ in range(self.concurrency):
                        tg.start_soon(work, receive_batches.clone())
                tg.start_soon(emit)
        except BaseExceptionGroup as group:
            raise _root_cause(group)  # noqa: B904 - keep the root cause's own __cause__

    async def _call(self, batch: list[PackedWindow], ctx: StageContext) -> list[WindowTranscript]:
        todo = [p.window for p in batch if p.window.index not in self.done]
        fresh: dict[int, WindowTranscript] = {}
        wanted = {w.index for w in todo}

        def got(result: WindowTranscript) -> None:
            # Each window reaches ``on_window`` once, as soon as the transcriber has it,
            # and counts in the progress then (a service answers window by window).
            if result.index in wanted and result.index not in fresh:
                fresh[result.index] = result
                if self.on_window is not None:
                    self.on_window(result)
                self.answered += 1
                ctx.progress(self.name, math.nan, f"{self.answered} window(s) transcribed")

        if todo:
            try:
                out = await self.transcriber.transcribe(
                    todo, language=self.language, on_window=got
                )
            except AudioflowError:
                raise
            except Exception as exc:
                raise TranscriptionError(
                    f"{self.transcriber.name} transcriber failed: {exc}", job_id=ctx.job_id
                ) from exc
            if len(out) != len(todo):
                raise TranscriptionError(
                    f"{self.transcriber.name} returned {len(out)} results for {len(todo)} windows",
                    job_id=ctx.job_id,
                )
            for window, result in zip(todo, out, strict=True):
                if window.index not in fresh:
                    got(msgspec.structs.replace(result, index=window.index))
        return [self.done.get(p.window.index) or fresh[p.window.index] for p in batch]
