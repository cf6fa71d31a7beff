"""The two writers a running job keeps: its progress and its checkpoint windows.

Stages report from the event loop, synchronously and often (every decoded chunk, every
transcribed window); one task per writer turns that into store writes, each carrying
the run's lease token, at most once per ``interval``. A store error in a write ends the
writer's task with that error, which ends the run (see ``audioflow._jobrun``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import anyio

from .records import Progress, Usage, WindowTranscript, utcnow
from .store.protocol import JobStore

__all__ = ["ProgressCallback", "ProgressWriter", "ThrottledWriter", "WindowSaver"]

#: Called with every progress update the pipeline writes (throttled).
ProgressCallback = Callable[[Progress], None]

# Share of the overall fraction each phase covers (decoding and transcription overlap;
# the transcription position is what the user waits for).
_DECODE_SHARE, _TRANSCRIBE_SHARE = 0.3, 0.65
#: The stages in the order a job passes them (what ``Progress.stage`` names).
_STAGES = ("decode", "vad", "transcribe", "render")


class ThrottledWriter:
    """One task that writes a job's state when it changed, at most once per ``interval``.

    Subclasses keep the state, call :meth:`_changed` when it changes and implement
    :meth:`_write`. :meth:`close` stops :meth:`run` at once, even mid-pause.
    """

    def __init__(self, store: JobStore, job_id: str, lease_token: str, interval: float) -> None:
        self.store = store
        self.job_id = job_id
        self.lease_token = lease_token
        self.interval = interval
        self._dirty = anyio.Event()
        self._closed = anyio.Event()

    def _changed(self) -> None:
        self._dirty.set()

    async def _write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed.set()
        self._dirty.set()

    async def run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            if self._closed.is_set():
                return
            await self._write()
            with anyio.move_on_after(self.interval):
                await self._closed.wait()


class WindowSaver(ThrottledWriter):
    """Keeps the transcribed windows of a run and adds them to the job's checkpoint.

    Each write is one ``add_windows`` call holding only the windows that arrived since
    the last one, so a write costs those windows, whatever the job's length. A window
    stays pending until a write that holds it succeeded: a write that failed or was
    cancelled leaves it for the next (adding a window twice is harmless, the store
    keeps one per index).

    Args:
        done: windows the job's checkpoint already holds (not written again).
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        lease_token: str,
        key: str,
        done: Iterable[WindowTranscript],
        interval: float,
    ) -> None:
        super().__init__(store, job_id, lease_token, interval)
        self.key = key
        self.windows = {w.index: w for w in done}
        #: What the windows transcribed in this run consumed (the checkpoint's earlier
        #: windows were paid for by earlier runs).
        self.usage = Usage()
        self._pending: dict[int, WindowTranscript] = {}
        self._lock = anyio.Lock()

    def add(self, window: WindowTranscript) -> None:
        """Keep a newly transcribed window (called from the event loop)."""
        self.windows[window.index] = window
        self._pending[window.index] = window
        self.usage = self.usage + window.usage
        self._changed()

    async def _write(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write the windows not written yet (nothing if there are none)."""
        async with self._lock:
            batch = dict(self._pending)
            if not batch:
                return
            await self.store.add_windows(
                self.job_id,
                [batch[i] for i in sorted(batch)],
                key=self.key,
                lease_token=self.lease_token,
            )
            for index, window in batch.items():
                if self._pending.get(index) is window:
                    del self._pending[index]


class ProgressWriter(ThrottledWriter):
    """Keeps the latest progress and writes it to the store a few times a second at most.

    Stages report from the event loop (synchronously); one task writes. The overall
    fraction never goes backwards.
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        lease_token: str,
        interval: float,
        callback: ProgressCallback | None,
    ) -> None:
        super().__init__(store, job_id, lease_token, interval)
        self.callback = callback
        self.stage: str | None = None
        self.fraction = 0.0
        self.message = ""
        self._decode = 0.0
        self._transcribe = 0.0

    def report(self, stage: str, fraction: float, message: str) -> None:
        if stage == "decode" and not math.isnan(fraction):
            self._decode = max(self._decode, fraction)
        elif stage == "transcribe" and not math.isnan(fraction):
            self._transcribe = max(self._transcribe, fraction)
        overall = _DECODE_SHARE * self._decode + _TRANSCRIBE_SHARE * self._transcribe
        if stage == "render":
            overall = _DECODE_SHARE + _TRANSCRIBE_SHARE
        self.fraction = max(self.fraction, min(overall, 0.99))
        # The stage shown is the furthest one reached: decoding and speech detection
        # report until their end, long after transcription began.
        if stage in _STAGES and (
            self.stage not in _STAGES or _STAGES.index(stage) >= _STAGES.index(self.stage)
        ):
            self.stage = stage
            self.message = message
        self._changed()

    async def _write(self) -> None:
        progress = Progress(
            stage=self.stage, fraction=self.fraction, message=self.message, updated_at=utcnow()
        )
        await self.store.update(self.job_id, lease_token=self.lease_token, progress=progress)
        if self.callback is not None:
            self.callback(progress)
