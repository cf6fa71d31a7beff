"""The service's JSON shapes (pydantic models, so the OpenAPI schema describes them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = [
    "ArtifactOut",
    "ErrorBody",
    "ErrorOut",
    "JobErrorOut",
    "JobListOut",
    "JobOut",
    "ProgressOut",
    "StatusOut",
    "WebhookAttemptOut",
    "WebhookOut",
]


class ProgressOut(BaseModel):
    stage: str | None = None
    fraction: float = Field(0.0, ge=0.0, le=1.0)
    message: str = ""


class JobErrorOut(BaseModel):
    type: str
    message: str
    stage: str | None = None


class ArtifactOut(BaseModel):
    format: str
    url: str
    content_type: str


class WebhookAttemptOut(BaseModel):
    at: datetime
    status_code: int | None = None
    error: str | None = None
    elapsed_ms: float


class WebhookOut(BaseModel):
    url: str
    delivered: bool
    attempts: list[WebhookAttemptOut]


class JobOut(BaseModel):
    """A job as its owner sees it."""

    id: str
    status: str
    filename: str
    bytes: int
    sha256: str
    language: str | None = None
    formats: list[str]
    progress: ProgressOut
    error: JobErrorOut | None = None
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifacts: list[ArtifactOut] = []
    events_url: str
    webhook: WebhookOut | None = None


class JobListOut(BaseModel):
    jobs: list[JobOut]
    #: Pass as ``cursor`` for the next page; ``None`` on the last.
    cursor: str | None = None


class StatusOut(BaseModel):
    status: str


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
