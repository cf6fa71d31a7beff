"""The persisted job schema and its lifecycle rules.

Everything a :class:`Job` holds (options, progress, the result with its transcript,
media info and quality report, the checkpoint's windows, usage) and the events and
pages a store returns, with the job status rules (:data:`LEGAL_TRANSITIONS`,
:data:`TERMINAL_STATUSES`, :data:`FINISHED_STATUSES`). The in-flight audio records
(``AudioChunk``, ``SpeechSegment``, ``AudioWindow``) are in :mod:`audioflow.audio`;
the first two are importable from here too.

All records are frozen, keyword-only :class:`msgspec.Struct` s. Persisted records follow
msgspec's schema-evolution rules: they never forbid unknown fields (an older reader skips
fields a newer writer added), every field added later gets a default, and a field's type
never changes. Times are float seconds on the original media timeline; timestamps are
timezone-aware UTC :class:`~datetime.datetime` s.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from ._formats import FORMATS
from .audio import AudioChunk, SpeechSegment

__all__ = [
    "FINISHED_STATUSES",
    "LEGAL_TRANSITIONS",
    "TERMINAL_STATUSES",
    "AudioChunk",
    "Checkpoint",
    "EventKind",
    "Job",
    "JobChanges",
    "JobError",
    "JobEvent",
    "JobOptions",
    "JobPage",
    "JobResult",
    "JobStatus",
    "Lease",
    "MediaInfo",
    "Progress",
    "QualityReport",
    "SpeechSegment",
    "Transcript",
    "TranscriptSegment",
    "Usage",
    "WindowTranscript",
    "Word",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class JobStatus(enum.StrEnum):
    """Where a job is in its life. See the legal moves in ``audioflow.store``."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses a job never leaves; the job is immutable once it reaches one.
TERMINAL_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED})
#: Statuses that end a run (``failed`` can still be retried explicitly).
FINISHED_STATUSES: frozenset[JobStatus] = TERMINAL_STATUSES | {JobStatus.FAILED}

#: ``LEGAL_TRANSITIONS[to]`` is the set of statuses a job may move to ``to`` from.
#: ``running → queued`` is allowed only to the lease holder or once the lease expired;
#: ``failed → queued`` is an explicit retry; ``completed`` and ``cancelled`` are final.
LEGAL_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset({JobStatus.RUNNING}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.RUNNING}),
}


# --------------------------------------------------------------------------- jobs


class JobOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the caller asked for. Unknown to a stage means "use the stage's default"."""

    formats: tuple[str, ...] = FORMATS
    language: str | None = None
    transcriber: str | None = None
    max_duration: float | None = None
    extra: dict[str, str] = {}


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """Where the job is inside the pipeline; ``fraction`` runs 0..1."""

    stage: str | None = None
    fraction: float = 0.0
    message: str = ""
    updated_at: datetime | None = None


class JobError(msgspec.Struct, frozen=True, kw_only=True):
    """Why a job failed: the exception type's name, its message and the stage."""

    type: str
    message: str
    stage: str | None = None


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's claim on a running job.

    ``token`` fences writes: a write that carries a token other than the current
    lease's, or arrives at or after ``expires_at``, raises
    :class:`~audioflow.LeaseLostError`.
    """

    owner: str
    token: str
    expires_at: datetime


# ------------------------------------------------------------- media and transcripts


class MediaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What probing the source found."""

    duration: float | None = None
    codec: str | None = None
    channels: int | None = None
    sample_rate: int | None = None
    container: str | None = None
    has_video: bool = False
    bit_rate: int | None = None
    warnings: tuple[str, ...] = ()
    #: Container index of the audio stream that was decoded, and how many audio streams
    #: the container holds (several: see ``Decode`` for which one is picked).
    stream_index: int | None = None
    audio_streams: int = 0
    #: Seconds of audio actually decoded (set once decoding finished).
    decoded_duration: float | None = None
    #: Damage skipped while decoding: bytes the demuxer or decoder could not use, and an
    #: estimate of the audio they held. Where it was is in ``warnings``.
    skipped_bytes: int = 0
    skipped_seconds: float = 0.0


# --------------------------------------------------------------------------- text


class Word(msgspec.Struct, frozen=True, kw_only=True):
    """One recognised word, times in seconds on the original timeline."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None


class TranscriptSegment(msgspec.Struct, frozen=True, kw_only=True):
    """A run of words (a sentence, an utterance or a window's segment)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    language: str | None = None


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    """The whole transcript of one source."""

    segments: tuple[TranscriptSegment, ...] = ()
    language: str | None = None
    duration: float | None = None
    #: ``"given"`` (the caller named the language) or ``"detected"``; ``None``: unknown.
    language_source: str | None = None
    #: For a detected language: how sure the transcriber was (0..1), over the windows
    #: heard in it.
    language_probability: float | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @classmethod
    def from_deepgram(
        cls, response: dict[str, Any] | bytes | bytearray | str, *, pause: float = 0.8
    ) -> Transcript:
        """Read a Deepgram pre-recorded (``/v1/listen``) response.

        Segments come from ``results.utterances`` when present (channel 0's), else from
        the sentences of ``results.channels[0].alternatives[0].paragraphs``, else from
        that alternative's words, cut at sentence-ending punctuation, pauses of
        ``pause`` seconds or more and speaker changes. Only channel 0 and the first
        alternative are read. A word's text is its ``punctuated_word`` when the
        response has one (``smart_format``/``punctuate``), else its ``word``.

        Speakers (``diarize``): Deepgram's integer ``speaker`` becomes the label
        ``"Speaker 0"``, ``"Speaker 1"``... on words and segments, and ``None`` without
        diarization. ``duration`` is ``metadata.duration``; ``language`` is the channel's
        ``detected_language`` (``None`` when language detection was off).

        Args:
            response: The response JSON as a ``dict``, ``bytes`` or ``str``. Unknown
                fields are ignored. (A deepgram-sdk response model converts with
                ``model_dump()``.)
            pause: Seconds of silence that end a segment when the response has neither
                utterances nor paragraphs.

        Raises:
            ValueError: Not JSON, not the shape of a pre-recorded response (the message
                gives the path of the bad field), a Deepgram error body, or a word whose
                end is before its start.
            TypeError: ``response`` is not a dict, bytes or str.
        """
        from .transcribers.deepgram._response import transcript_from_deepgram

        return transcript_from_deepgram(response, pause=pause)


class QualityReport(msgspec.Struct, frozen=True, kw_only=True):
    """Signal-quality metrics of the decoded audio (see ``docs/`` for thresholds)."""

    snr_db: float | None = None
    rms_dbfs: float | None = None
    peak_dbfs: float | None = None
    clipping_ratio: float = 0.0
    silence_ratio: float = 0.0
    dc_offset: float = 0.0
    score: float = 0.0
    level: str = "poor"
    warnings: tuple[str, ...] = ()


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """What transcription consumed and cost. ``a + b`` sums two usages."""

    audio_seconds: float = 0.0
    billed_seconds: float = 0.0
    cost: float = 0.0
    requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            audio_seconds=self.audio_seconds + other.audio_seconds,
            billed_seconds=self.billed_seconds + other.billed_seconds,
            cost=self.cost + other.cost,
            requests=self.requests + other.requests,
        )


class WindowTranscript(msgspec.Struct, frozen=True, kw_only=True):
    """What a transcriber heard in one window, times relative to the window start.

    Also what a job checkpoints per finished window, so a retried job resumes.
    """

    index: int
    segments: tuple[TranscriptSegment, ...] = ()
    language: str | None = None
    usage: Usage = Usage()
    #: How sure the transcriber was of ``language``, when it detected it (0..1).
    language_probability: float | None = None


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Finished transcription windows of a job, valid only for the same ``key``.

    ``key`` fingerprints what the windows depend on (the source file, the transcriber,
    packing and speech-detection settings); a run with another key ignores them.
    """

    key: str
    windows: tuple[WindowTranscript, ...] = ()


class JobResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished job produced; ``artifacts`` maps a format to its rendered text."""

    transcript: Transcript | None = None
    quality: QualityReport | None = None
    media: MediaInfo | None = None
    usage: Usage = Usage()
    artifacts: dict[str, str] = {}


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One job's whole state, as a :class:`~audioflow.JobStore` keeps it.

    ``version`` is maintained by the store (1 after ``create``, +1 on every write); the
    value passed to ``create`` is ignored.
    """

    id: str
    source: str = ""
    status: JobStatus = JobStatus.QUEUED
    options: JobOptions = JobOptions()
    progress: Progress = Progress()
    result: JobResult | None = None
    artifacts: dict[str, str] = {}
    error: JobError | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    lease: Lease | None = None
    version: int = 0
    meta: dict[str, str] = {}
    checkpoint: Checkpoint | None = None
    #: What transcribing this job has consumed so far, over every attempt, including
    #: attempts that failed or were cancelled (every window a service answered is paid
    #: for). ``result.usage`` is what the final transcript's windows used.
    usage: Usage = Usage()


class JobChanges(msgspec.Struct, frozen=True, kw_only=True):
    """The fields one store event wrote; fields it did not write are ``UNSET``."""

    source: str | msgspec.UnsetType = msgspec.UNSET
    options: JobOptions | msgspec.UnsetType = msgspec.UNSET
    progress: Progress | msgspec.UnsetType = msgspec.UNSET
    result: JobResult | msgspec.UnsetType | None = msgspec.UNSET
    artifacts: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    error: JobError | msgspec.UnsetType | None = msgspec.UNSET
    created_at: datetime | msgspec.UnsetType = msgspec.UNSET
    started_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    finished_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    attempts: int | msgspec.UnsetType = msgspec.UNSET
    lease: Lease | msgspec.UnsetType | None = msgspec.UNSET
    meta: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    checkpoint: Checkpoint | msgspec.UnsetType | None = msgspec.UNSET
    usage: Usage | msgspec.UnsetType = msgspec.UNSET

    def fields(self) -> tuple[str, ...]:
        """Names of the fields this change set, in record order."""
        return tuple(
            name for name in self.__struct_fields__ if getattr(self, name) is not msgspec.UNSET
        )


class EventKind(enum.StrEnum):
    """What produced a :class:`JobEvent`."""

    SNAPSHOT = "snapshot"
    CREATED = "created"
    UPDATED = "updated"
    TRANSITIONED = "transitioned"
    #: ``add_windows``: ``changes.checkpoint`` holds the checkpoint's key and only the
    #: windows this write added.
    CHECKPOINTED = "checkpointed"
    DELETED = "deleted"


class JobEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a job, as ``JobStore.watch`` yields it.

    ``cursor`` is opaque; pass it back to ``watch(cursor=...)`` to resume after this
    event. A ``SNAPSHOT`` event carries every field (the state when watching began).

    ``resync`` is true on a ``SNAPSHOT`` that stands in for events the watcher can no
    longer be given (it fell behind the history the store retains, or its cursor is
    older than that history): the snapshot is the job's whole state at that point, and
    the events after it follow as usual. ``omitted`` names fields this event wrote but
    does not carry, because their values are larger than the store copies into events;
    read them with ``get``.
    """

    cursor: str
    kind: EventKind
    job_id: str
    version: int
    status: JobStatus
    changes: JobChanges = JobChanges()
    resync: bool = False
    omitted: tuple[str, ...] = ()


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of ``JobStore.list``; ``cursor`` is ``None`` on the last page.

    ``corrupt`` holds the ids of jobs on this page's stretch that could not be decoded
    (``get`` raises ``JobCorruptedError`` for them); they are skipped, not returned.
    """

    jobs: tuple[Job, ...]
    cursor: str | None = None
    corrupt: tuple[str, ...] = ()
