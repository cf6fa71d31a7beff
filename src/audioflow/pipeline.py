"""``Pipeline``: a source file in, a finished job (transcript, renderings) out.

Decode → Quality → DetectSpeech → Transcribe run as one chain of stages over bounded
streams; the transcript is then rendered. The job's whole life is kept in a
:class:`~audioflow.JobStore`: ``queued → running → completed | failed | cancelled``,
throttled progress, the result and the artifacts, a typed error on failure, and a
checkpoint of every transcribed window so that running the same ``job_id`` again after
an interruption transcribes only what is missing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .errors import AudioflowError, InvalidTransitionError
from .records import (
    Checkpoint,
    Job,
    JobError,
    JobOptions,
    JobResult,
    JobStatus,
    Progress,
    Transcript,
    TranscriptSegment,
    WindowTranscript,
    utcnow,
)
from .render import FORMATS as ALL_FORMATS
from .render import CaptionRules, render
from .stages.base import StageContext, function_stage, run_stages
from .stages.decode import Decode
from .stages.quality import Quality
from .stages.transcribe import Transcribe
from .stages.vad import DetectSpeech
from .store.memory import MemoryJobStore
from .store.protocol import JobFields, JobStore
from .transcribers.base import Transcriber

__all__ = ["Pipeline", "ProgressCallback"]

log = logging.getLogger("audioflow")

#: Called with every progress update the pipeline writes (throttled).
ProgressCallback = Callable[[Progress], None]

Source = str | os.PathLike[str]

# Share of the overall fraction each phase covers (decoding and transcription overlap;
# the transcription position is what the user waits for).
_DECODE_SHARE, _TRANSCRIBE_SHARE = 0.3, 0.65


class Pipeline:
    """Runs jobs: decode, measure quality, find speech, transcribe, render.

    Args:
        transcriber: any :class:`~audioflow.transcribers.Transcriber`.
        store: where jobs live (a fresh :class:`~audioflow.MemoryJobStore` by default).
        formats: renderings to produce (``srt``, ``vtt``, ``json``, ``txt``, ``md``).
        rules: caption rules for SRT/WebVTT.
        vad: speech-detection backend (``energy``, ``webrtc``, ``silero``).
        chunk_seconds: decode chunk length. Every chunk costs a few thread hops and
            numpy calls per stage, which contend for the GIL with the decoder; long
            chunks amortise that (2 minutes: about 8 MB per chunk in flight, a handful
            per job).
        max_duration: refuse media longer than this many seconds.
        max_bytes: refuse files larger than this.
        concurrency: transcriber calls in flight per job.
        progress_interval: least seconds between two progress writes of one job.
        checkpoint_interval: least seconds between two checkpoint writes of one job
            while it runs (``0``: one write per transcribed window). Every way out of a
            run (done, failed, cancelled) writes the checkpoint once more, so only a
            hard crash can lose windows: at most this many seconds' worth.
        cpu_limiter: caps CPU-bound work across all jobs of this pipeline (default: one
            slot per core).

    Example::

        async with Pipeline(WhisperTranscriber()) as pipeline:  # aclose() closes it
            result = await pipeline.run("talk.mp4")
        print(result.artifacts["srt"])
    """

    def __init__(
        self,
        transcriber: Transcriber,
        *,
        store: JobStore | None = None,
        formats: Sequence[str] = ALL_FORMATS,
        rules: CaptionRules | None = None,
        vad: str = "energy",
        chunk_seconds: float = 120.0,
        max_duration: float | None = None,
        max_bytes: int | None = None,
        concurrency: int = 2,
        progress_interval: float = 0.25,
        checkpoint_interval: float = 1.0,
        cpu_limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        unknown = set(formats) - set(ALL_FORMATS)
        if unknown:
            raise ValueError(f"unknown format(s) {sorted(unknown)}; known: {list(ALL_FORMATS)}")
        self.transcriber = transcriber
        self.store: JobStore = store if store is not None else MemoryJobStore()
        self.formats = tuple(formats)
        self.rules = rules or CaptionRules()
        self.vad = vad
        self.chunk_seconds = chunk_seconds
        self.max_duration = max_duration
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self.progress_interval = progress_interval
        if checkpoint_interval < 0:
            raise ValueError("checkpoint_interval must not be negative")
        self.checkpoint_interval = checkpoint_interval
        self._cpu_limiter = cpu_limiter

    def __repr__(self) -> str:
        return f"Pipeline(transcriber={self.transcriber.name!r}, store={self.store!r})"

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transcriber (its HTTP client or model threads). The store is not
        closed: it may be shared; close it yourself."""
        with anyio.CancelScope(shield=True):  # also when leaving a cancelled scope
            await self.transcriber.aclose()

    @classmethod
    def default(cls, transcriber: Transcriber | None = None, **kwargs: Any) -> Pipeline:
        """The standard pipeline; offline Whisper (``audioflow[whisper]``) by default.

        With Whisper, speech detection defaults to ``silero`` (faster-whisper brings
        its model and onnxruntime); pass ``vad=`` to choose another.
        """
        if transcriber is None:
            from .transcribers.whisper import WhisperTranscriber

            transcriber = WhisperTranscriber()
            kwargs.setdefault("vad", "silero")
        return cls(transcriber, **kwargs)

    @property
    def cpu_limiter(self) -> anyio.CapacityLimiter:
        if self._cpu_limiter is None:  # created lazily: it needs a running event loop
            self._cpu_limiter = anyio.CapacityLimiter(max(1, os.cpu_count() or 1))
        return self._cpu_limiter

    async def run(
        self,
        source: Source,
        *,
        job_id: str | None = None,
        options: JobOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> JobResult:
        """Run one job to its end and return its result.

        A new ``job_id`` (or none: one is made) creates a job. An existing one is
        resumed: a ``failed`` or ``cancelled`` job runs again, reusing the windows its
        checkpoint holds; a ``queued`` job is run; a ``completed`` job's stored result is
        returned without running anything.

        Raises:
            DecodeError, TranscriptionError, RenderError: the job is left ``failed``
                with the error recorded.
            InvalidTransitionError: the job is ``running`` elsewhere.
            StoreError: the store failed.
        Cancelling the calling task cancels the job (``cancelled``) and every stage.
        """
        job_id = job_id or uuid.uuid4().hex
        options = options or JobOptions(formats=self.formats)
        job = await self._admit(job_id, source, options)
        if job.status is JobStatus.COMPLETED and job.result is not None:
            return msgspec.structs.replace(job.result, artifacts=job.artifacts)
        key = self._checkpoint_key(source)
        checkpoint = job.checkpoint if job.checkpoint and job.checkpoint.key == key else None
        job = await self.store.transition(
            job_id, JobStatus.RUNNING, expect={JobStatus.QUEUED}, error=None, finished_at=None
        )
        progress = _ProgressWriter(self.store, job_id, self.progress_interval, on_progress)
        done = checkpoint.windows if checkpoint else ()
        saver = _CheckpointSaver(self.store, job_id, key, done, self.checkpoint_interval)
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(progress.run)
                tg.start_soon(saver.run)
                try:
                    result = await self._execute(job, source, options, saver, progress)
                except BaseException as exc:
                    failure = exc  # the original, before a task group wraps it
                    raise
                finally:
                    progress.close()
                    saver.close()
        except BaseException as exc:
            cause = failure if failure is not None else exc
            with anyio.CancelScope(shield=True):
                await saver.flush_quietly()
                await self._record_end(job_id, cause, progress.stage)
            if cause is exc:
                raise
            raise cause from cause.__cause__
        final = Progress(stage="render", fraction=1.0, message="done", updated_at=utcnow())
        fields: JobFields = {
            "result": msgspec.structs.replace(result, artifacts={}),
            "artifacts": result.artifacts,
            "progress": final,
        }
        if saver.unsaved:  # the last windows ride on the completing write
            fields["checkpoint"] = saver.take_unsaved()
        await self.store.transition(
            job_id, JobStatus.COMPLETED, expect={JobStatus.RUNNING}, **fields
        )
        if on_progress is not None:
            on_progress(final)
        return result

    async def run_many(
        self,
        sources: Iterable[Source],
        *,
        concurrency: int = 4,
        options: JobOptions | None = None,
    ) -> list[JobResult | AudioflowError]:
        """Run one job per source, at most ``concurrency`` at a time, sharing this store,
        transcriber and CPU limiter.

        One job failing does not stop the others: its slot in the returned list (in
        ``sources`` order) holds the error instead of a result. Cancellation cancels all.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        sources = list(sources)
        results: list[JobResult | AudioflowError | None] = [None] * len(sources)
        slots = anyio.Semaphore(concurrency)

        async def one(i: int, source: Source) -> None:
            async with slots:
                try:
                    results[i] = await self.run(source, options=options)
                except AudioflowError as exc:
                    results[i] = exc

        async with anyio.create_task_group() as tg:
            for i, source in enumerate(sources):
                tg.start_soon(one, i, source)
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ internals

    async def _admit(self, job_id: str, source: Source, options: JobOptions) -> Job:
        """The job to run: created, or an existing one put back in the queue."""
        job = await self.store.get(job_id)
        if job is None:
            return await self.store.create(Job(id=job_id, source=str(source), options=options))
        if job.status is JobStatus.FAILED:
            return await self.store.transition(job_id, JobStatus.QUEUED, expect={JobStatus.FAILED})
        if job.status is JobStatus.CANCELLED:
            # Cancelled is final for that run; a new run of the same id starts a fresh
            # job record that keeps only the checkpoint (what was already paid for).
            fresh = Job(id=job_id, source=str(source), options=options, checkpoint=job.checkpoint)
            return await self.store.create(fresh, replace=True)
        if job.status is JobStatus.RUNNING:
            raise InvalidTransitionError(job_id, job.status, JobStatus.RUNNING, "already running")
        return job

    def _checkpoint_key(self, source: Source) -> str:
        try:
            st = os.stat(source)
            identity = f"{Path(source).resolve()}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            identity = str(source)  # decoding will report the problem
        gap = getattr(self.transcriber, "pack_gap", None)
        settings = (
            f"{self.transcriber.name}|{self.transcriber.max_window}|{gap}|{self.vad}|"
            f"{self.chunk_seconds}"
        )
        return hashlib.sha256(f"{identity}|{settings}".encode()).hexdigest()[:32]

    async def _execute(
        self,
        job: Job,
        source: Source,
        options: JobOptions,
        saver: _CheckpointSaver,
        progress: _ProgressWriter,
    ) -> JobResult:
        ctx = StageContext(job_id=job.id, limiter=self.cpu_limiter, report=progress.report)
        decode = Decode(
            chunk_seconds=self.chunk_seconds,
            max_duration=options.max_duration or self.max_duration,
            max_bytes=self.max_bytes,
        )
        quality = Quality()
        transcribe = Transcribe(
            self.transcriber,
            language=options.language,
            concurrency=self.concurrency,
            done=dict(saver.windows),
            on_window=saver.add,
        )

        async def position(segment: TranscriptSegment) -> TranscriptSegment:
            duration = decode.info.duration if decode.info else None
            if duration:
                progress.report("transcribe", segment.end / duration, "transcribing")
            return segment

        segments = await run_stages(
            [source],
            decode,
            quality,
            DetectSpeech(self.vad),
            transcribe,
            function_stage(position, name="transcribe"),
            ctx=ctx,
        )
        media = decode.info
        transcript = Transcript(
            segments=tuple(segments),
            language=transcribe.language,
            duration=(media.decoded_duration or media.duration) if media else None,
        )
        progress.report("render", 0.0, "rendering")
        formats = options.formats or self.formats
        artifacts = await anyio.to_thread.run_sync(
            lambda: render(transcript, formats, rules=self.rules), limiter=self.cpu_limiter
        )
        return JobResult(
            transcript=transcript,
            quality=quality.report,
            media=media,
            usage=transcribe.usage,
            artifacts=artifacts,
        )

    async def _record_end(self, job_id: str, exc: BaseException, stage: str | None) -> None:
        """Leave the job ``cancelled`` or ``failed`` with a readable error."""
        try:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                await self.store.transition(job_id, JobStatus.CANCELLED)
                return
            error = JobError(
                type=type(exc).__name__,
                message=str(exc) or type(exc).__name__,
                stage=getattr(exc, "stage", None) or stage,
            )
            await self.store.transition(job_id, JobStatus.FAILED, error=error)
        except Exception:  # the store is down too: the caller still gets the original
            log.exception("could not record the end of job %s", job_id)


class _ThrottledWriter:
    """One task that writes a job's state when it changed, at most once per ``interval``.

    Subclasses keep the state, call :meth:`_changed` when it changes and implement
    :meth:`_write`. :meth:`close` stops :meth:`run` at once, even mid-pause.
    """

    def __init__(self, store: JobStore, job_id: str, interval: float) -> None:
        self.store = store
        self.job_id = job_id
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


class _CheckpointSaver(_ThrottledWriter):
    """Keeps the finished windows of a job and writes them to its checkpoint.

    The checkpoint is one record field holding every window so far, so each write costs
    the size of all of them. Writing once per window would make a long job's writes
    (and its change stream) grow with the square of its length; instead the task
    writes whenever new windows arrived, at most once per ``interval``; the rest goes
    out with the completing transition (:meth:`take_unsaved`) or, on failure or
    cancellation, with :meth:`flush`.
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        key: str,
        done: Iterable[WindowTranscript],
        interval: float,
    ) -> None:
        super().__init__(store, job_id, interval)
        self.key = key
        self.windows = {w.index: w for w in done}
        self._unsaved = False
        self._lock = anyio.Lock()

    async def add(self, window: WindowTranscript) -> None:
        self.windows[window.index] = window
        self._unsaved = True
        self._changed()

    async def _write(self) -> None:
        await self.flush()

    @property
    def unsaved(self) -> bool:
        """Whether windows arrived since the last write."""
        return self._unsaved

    def take_unsaved(self) -> Checkpoint:
        """The checkpoint with every window, now counted as written by the caller."""
        self._unsaved = False
        return Checkpoint(
            key=self.key, windows=tuple(self.windows[i] for i in sorted(self.windows))
        )

    async def flush(self) -> None:
        """Write the windows not written yet (nothing if there are none)."""
        async with self._lock:
            if not self._unsaved:
                return
            checkpoint = self.take_unsaved()
            try:
                await self.store.update(self.job_id, checkpoint=checkpoint)
            except BaseException:
                self._unsaved = True  # cancelled or failed mid-write: still unsaved
                raise

    async def flush_quietly(self) -> None:
        """:meth:`flush` on a failure path: a store error is logged, not raised (the
        caller is about to report the original error)."""
        try:
            await self.flush()
        except Exception:
            log.exception("could not save the checkpoint of job %s", self.job_id)


class _ProgressWriter(_ThrottledWriter):
    """Keeps the latest progress and writes it to the store a few times a second at most.

    Stages report from the event loop (synchronously); one task writes. The overall
    fraction never goes backwards.
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        interval: float,
        callback: ProgressCallback | None,
    ) -> None:
        super().__init__(store, job_id, interval)
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
        if stage in ("decode", "vad", "transcribe", "render"):
            self.stage = stage
        self.message = message
        self._changed()

    async def _write(self) -> None:
        progress = Progress(
            stage=self.stage, fraction=self.fraction, message=self.message, updated_at=utcnow()
        )
        await self.store.update(self.job_id, progress=progress)
        if self.callback is not None:
            self.callback(progress)
