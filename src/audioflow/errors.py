"""Every exception audioflow raises on purpose.

The tree::

    AudioflowError
    ├── ConfigurationError
    ├── MissingDependencyError            (also ImportError; names the extra to install)
    ├── StoreError
    │   ├── JobNotFoundError
    │   ├── JobExistsError
    │   ├── InvalidTransitionError        (compare-and-set lost, illegal move, terminal job)
    │   ├── LeaseLostError
    │   ├── JobCorruptedError
    │   ├── JobTooLargeError              (a field or the whole job over the store's limit)
    │   └── StoreUnavailableError         (outcome_unknown: a write may have been applied)
    └── StageError(stage, job_id)
        ├── DecodeError
        │   ├── UnsupportedMediaError
        │   ├── NoAudioStreamError
        │   ├── CorruptMediaError
        │   └── MediaTooLongError
        ├── TranscriptionError
        │   ├── TranscriberAuthError
        │   ├── RateLimitedError(retry_after)
        │   └── TranscriberUnavailableError
        └── RenderError

Backend exceptions (redis, av, httpx, deepgram) are translated where they cross into
audioflow, with ``raise ... from exc`` so the original stays on ``__cause__``. Misuse
(bad arguments) stays ``ValueError`` / ``TypeError``.
"""

from __future__ import annotations

__all__ = [
    "AudioflowError",
    "ConfigurationError",
    "CorruptMediaError",
    "DecodeError",
    "InvalidTransitionError",
    "JobCorruptedError",
    "JobExistsError",
    "JobNotFoundError",
    "JobTooLargeError",
    "LeaseLostError",
    "MediaTooLongError",
    "MissingDependencyError",
    "NoAudioStreamError",
    "RateLimitedError",
    "RenderError",
    "StageError",
    "StoreError",
    "StoreUnavailableError",
    "TranscriberAuthError",
    "TranscriberUnavailableError",
    "TranscriptionError",
    "UnsupportedMediaError",
]


class AudioflowError(Exception):
    """Base class of every error audioflow raises on purpose."""


class ConfigurationError(AudioflowError):
    """A component was configured in a way that cannot work."""


class MissingDependencyError(AudioflowError, ImportError):
    """An optional dependency is not installed.

    The message names the extra that brings it, e.g. ``pip install 'audioflow[redis]'``.
    """

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; install it with: pip install 'audioflow[{extra}]'"
        )


# --------------------------------------------------------------------------- store


class StoreError(AudioflowError):
    """Base class of JobStore errors."""


class JobNotFoundError(StoreError):
    """No job with this id exists (or it expired)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} not found")


class JobExistsError(StoreError):
    """``create`` was called with an id that already exists and ``replace=False``."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} already exists")


class InvalidTransitionError(StoreError):
    """A status change or write that the job's current status does not allow.

    Raised when a compare-and-set loses (the status is not one of ``expect``), when the
    move is not in the legal-transition table, and when a write targets a terminal
    (``completed`` or ``cancelled``) job. ``current`` is the status the store saw.
    """

    def __init__(self, job_id: str, current: str, target: str | None, reason: str = "") -> None:
        self.job_id = job_id
        self.current = current
        self.target = target
        if target is None:
            msg = f"job {job_id!r} is {current}; {reason or 'it cannot be changed'}"
        else:
            msg = f"job {job_id!r} cannot move from {current} to {target}"
            if reason:
                msg += f": {reason}"
        super().__init__(msg)


class LeaseLostError(StoreError):
    """A write carried a lease token that is no longer the job's current, live lease."""

    def __init__(self, job_id: str, reason: str = "the lease expired or was taken over") -> None:
        self.job_id = job_id
        super().__init__(f"lease on job {job_id!r} lost: {reason}")


class JobCorruptedError(StoreError):
    """A stored field of a job cannot be decoded into its type."""

    def __init__(self, job_id: str, field: str, detail: str = "") -> None:
        self.job_id = job_id
        self.field = field
        msg = f"job {job_id!r}: stored field {field!r} is corrupt"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class JobTooLargeError(StoreError):
    """A write would make a field, or the whole job, larger than the store allows.

    Checked before anything is written: the job is unchanged. ``field`` names the field
    that is too large, or is ``None`` when the job as a whole would pass ``limit``;
    ``size`` and ``limit`` are bytes of the stored (JSON) form.
    """

    def __init__(self, job_id: str, field: str | None, size: int, limit: int) -> None:
        self.job_id = job_id
        self.field = field
        self.size = size
        self.limit = limit
        what = f"field {field!r}" if field else "the job"
        super().__init__(
            f"job {job_id!r}: {what} would take {size:,} bytes; the store's limit is {limit:,}"
        )


class StoreUnavailableError(StoreError):
    """The store's backend could not be reached or answered with a connection error.

    ``outcome_unknown`` is true when a write was sent but its answer never came back:
    it may or may not have been applied. Read the job back (``get``) before deciding
    what to do; see "Store faults" in ``docs/stores.md``.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


# --------------------------------------------------------------------------- stages


class StageError(AudioflowError):
    """A pipeline stage failed. ``stage`` names it; ``job_id`` is set when known."""

    def __init__(self, message: str, *, stage: str = "", job_id: str | None = None) -> None:
        self.stage = stage
        self.job_id = job_id
        super().__init__(message)


class DecodeError(StageError):
    """The source could not be decoded."""

    def __init__(self, message: str, *, stage: str = "decode", job_id: str | None = None) -> None:
        super().__init__(message, stage=stage, job_id=job_id)


class UnsupportedMediaError(DecodeError):
    """The file is not media that PyAV can open (not a container, a directory, ...)."""


class NoAudioStreamError(DecodeError):
    """The container opened but holds no audio stream."""


class CorruptMediaError(DecodeError):
    """The media is damaged beyond what the decoder can skip."""


class MediaTooLongError(DecodeError):
    """The media is longer (or larger) than the configured limit."""


class TranscriptionError(StageError):
    """A transcriber failed."""

    def __init__(
        self, message: str, *, stage: str = "transcribe", job_id: str | None = None
    ) -> None:
        super().__init__(message, stage=stage, job_id=job_id)


class TranscriberAuthError(TranscriptionError):
    """The transcription service rejected the credentials (never retried)."""


class RateLimitedError(TranscriptionError):
    """The service kept answering 429; ``retry_after`` is its last hint in seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        stage: str = "transcribe",
        job_id: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, stage=stage, job_id=job_id)


class TranscriberUnavailableError(TranscriptionError):
    """The service could not be reached, timed out, or kept failing with 5xx."""


class RenderError(StageError):
    """A transcript could not be rendered."""

    def __init__(self, message: str, *, stage: str = "render", job_id: str | None = None) -> None:
        super().__init__(message, stage=stage, job_id=job_id)
