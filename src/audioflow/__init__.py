"""audioflow: any audio or video file to a timed transcript, as an async library.

Only the names in ``__all__`` are public; everything in a ``_module`` is private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AudioflowError,
    ConfigurationError,
    CorruptMediaError,
    DecodeError,
    InvalidTransitionError,
    JobCorruptedError,
    JobExistsError,
    JobNotFoundError,
    JobTooLargeError,
    LeaseLostError,
    MediaTooLongError,
    MissingDependencyError,
    NoAudioStreamError,
    RateLimitedError,
    RenderError,
    StageError,
    StoreError,
    StoreUnavailableError,
    TranscriberAuthError,
    TranscriberUnavailableError,
    TranscriptionError,
    UnsupportedMediaError,
)
from .pipeline import Pipeline, current_job_id
from .records import (
    AudioChunk,
    Checkpoint,
    EventKind,
    Job,
    JobChanges,
    JobError,
    JobEvent,
    JobOptions,
    JobPage,
    JobResult,
    JobStatus,
    Lease,
    MediaInfo,
    Progress,
    QualityReport,
    SpeechSegment,
    Transcript,
    TranscriptSegment,
    Usage,
    WindowTranscript,
    Word,
)
from .render import CaptionRules, Cue, build_cues, render
from .stages import (
    Decode,
    DetectSpeech,
    Quality,
    Stage,
    StageContext,
    Transcribe,
    function_stage,
    run_stages,
)
from .store import JobFields, JobStore, MemoryJobStore
from .timeline import TimelineMap, TimelinePiece
from .transcribers import AudioWindow, Transcriber

if TYPE_CHECKING:
    from .store.redis import RedisJobStore
    from .transcribers.deepgram import DeepgramTranscriber
    from .transcribers.whisper import WhisperTranscriber

__all__ = [
    "AudioChunk",
    "AudioWindow",
    "AudioflowError",
    "CaptionRules",
    "Checkpoint",
    "ConfigurationError",
    "CorruptMediaError",
    "Cue",
    "Decode",
    "DecodeError",
    "DeepgramTranscriber",
    "DetectSpeech",
    "EventKind",
    "InvalidTransitionError",
    "Job",
    "JobChanges",
    "JobCorruptedError",
    "JobError",
    "JobEvent",
    "JobExistsError",
    "JobFields",
    "JobNotFoundError",
    "JobOptions",
    "JobPage",
    "JobResult",
    "JobStatus",
    "JobStore",
    "JobTooLargeError",
    "Lease",
    "LeaseLostError",
    "MediaInfo",
    "MediaTooLongError",
    "MemoryJobStore",
    "MissingDependencyError",
    "NoAudioStreamError",
    "Pipeline",
    "Progress",
    "Quality",
    "QualityReport",
    "RateLimitedError",
    "RedisJobStore",
    "RenderError",
    "SpeechSegment",
    "Stage",
    "StageContext",
    "StageError",
    "StoreError",
    "StoreUnavailableError",
    "TimelineMap",
    "TimelinePiece",
    "Transcribe",
    "Transcriber",
    "TranscriberAuthError",
    "TranscriberUnavailableError",
    "Transcript",
    "TranscriptSegment",
    "TranscriptionError",
    "UnsupportedMediaError",
    "Usage",
    "WhisperTranscriber",
    "WindowTranscript",
    "Word",
    "__version__",
    "build_cues",
    "current_job_id",
    "function_stage",
    "render",
    "run_stages",
]


def __getattr__(name: str) -> Any:
    # Backends with optional dependencies load on first use.
    if name == "RedisJobStore":
        from .store.redis import RedisJobStore

        return RedisJobStore
    if name in ("DeepgramTranscriber", "WhisperTranscriber"):
        from . import transcribers

        return getattr(transcribers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
