"""``Pipeline``: a source file in, a finished job (transcript, renderings) out.

Decode → Quality → DetectSpeech → Transcribe run as one chain of stages over bounded
streams; the transcript is then rendered. That is this module. The job around it (kept
in a :class:`~audioflow.JobStore`, run under a lease, its progress and checkpoint
written as it goes, its end recorded) is ``audioflow._jobrun``, and the two throttled
writers are ``audioflow._writers``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import anyio

from ._jobrun import JobRun, admit, stored_result
from ._writers import ProgressCallback
from .errors import AudioflowError
from .records import (
    JobOptions,
    JobResult,
    JobStatus,
    Progress,
    Transcript,
    TranscriptSegment,
)
from .render import FORMATS as ALL_FORMATS
from .render import CaptionRules, render
from .stages.base import StageContext, default_cpu_limiter, function_stage, run_stages
from .stages.decode import Decode
from .stages.quality import Quality
from .stages.transcribe import Transcribe
from .stages.vad import DetectSpeech
from .store._rules import check_lease_seconds
from .store.memory import MemoryJobStore
from .store.protocol import JobStore
from .transcribers.base import Transcriber, default_vad, pack_gap
from .vad.segments import SegmentRules

__all__ = ["Pipeline", "ProgressCallback", "current_job_id"]

Source = str | os.PathLike[str]

_current_job: ContextVar[str | None] = ContextVar("audioflow_current_job", default=None)

#: In every checkpoint key; raised when the same settings cut other windows than before,
#: so a job resumed after an upgrade does not map old windows onto new ones. 2: speech
#: padded to the sample and cut from 16-bit levels (it was whole frames, float).
_WINDOWS_VERSION = 2


def current_job_id() -> str | None:
    """The id of the job whose stages call this (a transcriber, a log filter), else None."""
    return _current_job.get()


class Pipeline:
    """Runs jobs: decode, measure quality, find speech, transcribe, render.

    Args:
        transcriber: any :class:`~audioflow.transcribers.Transcriber`.
        store: where jobs live (a fresh :class:`~audioflow.MemoryJobStore` by default).
        formats: renderings to produce (``srt``, ``vtt``, ``json``, ``txt``, ``md``).
        rules: caption rules for SRT/WebVTT.
        vad: speech-detection backend (``energy``, ``webrtc``, ``silero``). Default:
            the transcriber's ``vad`` if it has one (``WhisperTranscriber``:
            ``silero``, which faster-whisper's install brings), else ``energy``.
        speech_rules: how detected speech becomes segments (minimum silence, padding,
            ...). Default: the transcriber's ``speech_rules`` if it has them
            (``WhisperTranscriber``: faster-whisper's batched settings), else
            :class:`~audioflow.vad.SegmentRules` ().
        chunk_seconds: decode chunk length. Every chunk costs a few thread hops and
            numpy calls per stage, which contend for the GIL with the decoder; long
            chunks amortise that (2 minutes: about 8 MB per chunk in flight, a handful
            per job).
        max_duration: refuse media longer than this many seconds.
        max_bytes: refuse files larger than this.
        concurrency: transcriber calls in flight per job.
        progress_interval: least seconds between two progress writes of one job.
        checkpoint_interval: least seconds between two checkpoint writes of one job
            while it runs (``0``, the default: a write as soon as windows are done;
            each write holds only the new windows). Every way out of a run that may
            still write (done, failed, cancelled) saves the rest, so only a hard crash
            can lose windows: those of the last ``checkpoint_interval`` seconds.
        lease_seconds: length of the lease each run holds on its job, renewed every
            third of it. A run that stops renewing (its process died) leaves the job
            to be requeued once the lease expired (``JobStore.requeue_expired``, or
            ``run`` of the same id).
        owner: names this pipeline in the leases it takes (default: host, pid and a
            random suffix).
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
        vad: str | None = None,
        speech_rules: SegmentRules | None = None,
        chunk_seconds: float = 120.0,
        max_duration: float | None = None,
        max_bytes: int | None = None,
        concurrency: int = 2,
        progress_interval: float = 0.25,
        checkpoint_interval: float = 0.0,
        lease_seconds: float = 60.0,
        owner: str | None = None,
        cpu_limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        unknown = set(formats) - set(ALL_FORMATS)
        if unknown:
            raise ValueError(f"unknown format(s) {sorted(unknown)}; known: {list(ALL_FORMATS)}")
        self.transcriber = transcriber
        self.store: JobStore = store if store is not None else MemoryJobStore()
        self.formats = tuple(formats)
        self.rules = rules or CaptionRules()
        self.vad = vad or default_vad(transcriber)
        default_rules = getattr(transcriber, "speech_rules", None)
        self.speech_rules = speech_rules or (
            default_rules if isinstance(default_rules, SegmentRules) else SegmentRules()
        )
        self.chunk_seconds = chunk_seconds
        self.max_duration = max_duration
        self.max_bytes = max_bytes
        self.concurrency = concurrency
        self.progress_interval = progress_interval
        if checkpoint_interval < 0:
            raise ValueError("checkpoint_interval must not be negative")
        self.checkpoint_interval = checkpoint_interval
        check_lease_seconds(lease_seconds)
        self.lease_seconds = lease_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
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
        return cls(transcriber, **kwargs)

    @property
    def cpu_limiter(self) -> anyio.CapacityLimiter:
        if self._cpu_limiter is None:  # created lazily: it needs a running event loop
            self._cpu_limiter = default_cpu_limiter()
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

        A new ``job_id`` (or none: one is made) creates a job. An existing one is the
        job of one source: running it with another ``source``, or with ``options``
        other than its own, is refused (``ValueError``). It is resumed: a ``failed``
        or ``cancelled`` job runs again, a ``running`` job whose lease expired (its
        run died) is taken over, a ``queued`` job is run; each reuses the windows its
        checkpoint holds. A ``completed`` job's stored result is returned without
        running anything.

        The run holds a lease on the job (see ``lease_seconds``), and every write it
        makes carries the lease's token.

        Raises:
            DecodeError, TranscriptionError, RenderError: the job is left ``failed``
                with the error recorded.
            StoreError: the store failed during the run; the job is left ``failed``
                with the error recorded when the store still takes that write (else it
                stays ``running`` until its lease expires).
            LeaseLostError: the run lost its lease (another run may own the job now);
                it stopped and wrote nothing more.
            InvalidTransitionError: the job is running elsewhere under a live lease.
            ValueError: ``job_id`` names the job of another source or other options.
        Cancelling the calling task cancels the job (``cancelled``) and every stage.
        """
        job_id = job_id or uuid.uuid4().hex
        new = JobOptions(formats=self.formats)  # for a new job; an existing one keeps its own
        job = await admit(self.store, job_id, str(source), options, new=new)
        if job.status is JobStatus.COMPLETED:
            return stored_result(job)
        run = await self._claim(job_id, source, on_progress)
        return await run.execute(lambda: self._execute(run, source))

    async def run_many(
        self,
        sources: Iterable[Source],
        *,
        concurrency: int = 4,
        options: JobOptions | None = None,
        on_progress: Callable[[int, Progress], None] | None = None,
        on_done: Callable[[int, JobResult | AudioflowError], None] | None = None,
        job_ids: Sequence[str | None] | None = None,
    ) -> list[JobResult | AudioflowError]:
        """Run one job per source, at most ``concurrency`` at a time, sharing this store,
        transcriber and CPU limiter.

        One job failing does not stop the others: its slot in the returned list (in
        ``sources`` order) holds the error instead of a result. Cancellation cancels all.

        Args:
            sources: the files (or URLs PyAV opens), one job each.
            concurrency: jobs run at once.
            options: the options of every job.
            on_progress: called with a source's index and its job's progress.
            on_done: called with a source's index and its result or error as soon as
                its job ends (the command writes each file's outputs from it).
            job_ids: each source's job id (``None``: a new one), as for :meth:`run`:
                an existing job is resumed.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        sources = list(sources)
        ids = list(job_ids) if job_ids is not None else [None] * len(sources)
        if len(ids) != len(sources):
            raise ValueError("job_ids must name one job per source")
        results: list[JobResult | AudioflowError | None] = [None] * len(sources)
        slots = anyio.Semaphore(concurrency)

        async def one(i: int, source: Source) -> None:
            async with slots:
                report = None if on_progress is None else functools.partial(on_progress, i)
                try:
                    result: JobResult | AudioflowError = await self.run(
                        source, job_id=ids[i], options=options, on_progress=report
                    )
                except AudioflowError as exc:
                    result = exc
                results[i] = result
                if on_done is not None:
                    on_done(i, result)

        async with anyio.create_task_group() as tg:
            for i, source in enumerate(sources):
                tg.start_soon(one, i, source)
        done: list[JobResult | AudioflowError] = []
        for result in results:
            assert result is not None  # every slot was filled, or run_many raised
            done.append(result)
        return done

    # ------------------------------------------------------------------ internals

    async def _claim(
        self, job_id: str, source: Source, on_progress: ProgressCallback | None
    ) -> JobRun:
        """Claim the queued job under this pipeline's lease (``InvalidTransitionError``
        if it is not queued); shared with ``audioflow.worker.run_job``."""
        return await JobRun.claim(
            self.store,
            job_id,
            owner=self.owner,
            lease_seconds=self.lease_seconds,
            key=self._checkpoint_key(source),
            progress_interval=self.progress_interval,
            checkpoint_interval=self.checkpoint_interval,
            on_progress=on_progress,
        )

    def _checkpoint_key(self, source: Source) -> str:
        try:
            st = os.stat(source)
            identity = f"{Path(source).resolve()}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            identity = str(source)  # decoding will report the problem
        gap = pack_gap(self.transcriber)
        # A transcriber's optional ``fingerprint``: its model and decoding settings.
        output = getattr(self.transcriber, "fingerprint", None)
        settings = (
            f"{_WINDOWS_VERSION}|{self.transcriber.name}|{self.transcriber.max_window}|{gap}|"
            f"{self.vad}|{self.speech_rules}|{self.chunk_seconds}"
            + ("" if output is None else f"|{output}")
        )
        return hashlib.sha256(f"{identity}|{settings}".encode()).hexdigest()[:32]

    async def _execute(self, run: JobRun, source: Source) -> JobResult:
        """The chain of stages and the rendering: the audio part of a run."""
        token = _current_job.set(run.job.id)  # the stages' tasks inherit it
        try:
            return await self._chain(run, source)
        finally:
            _current_job.reset(token)

    async def _chain(self, run: JobRun, source: Source) -> JobResult:
        options = run.job.options
        progress = run.progress
        ctx = StageContext(job_id=run.job.id, limiter=self.cpu_limiter, report=progress.report)
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
            done=dict(run.saver.windows),
            on_window=run.saver.add,
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
            DetectSpeech(
                self.vad,
                threshold=self.speech_rules.threshold,
                min_speech=self.speech_rules.min_speech,
                min_silence=self.speech_rules.min_silence,
                padding=self.speech_rules.padding,
                max_segment=self.speech_rules.max_segment,
                neg_threshold=self.speech_rules.neg_threshold,
            ),
            transcribe,
            function_stage(position, name="transcribe"),
            ctx=ctx,
        )
        media = decode.info
        given = options.language is not None
        transcript = Transcript(
            segments=tuple(segments),
            language=transcribe.language,
            duration=(media.decoded_duration or media.duration) if media else None,
            language_source="given" if given else ("detected" if transcribe.language else None),
            language_probability=None if given else transcribe.language_probability,
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
