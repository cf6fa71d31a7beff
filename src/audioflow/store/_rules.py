"""Decisions both built-in stores share, so that they cannot drift apart."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from ..records import FINISHED_STATUSES, Job, JobError, JobStatus
from .protocol import LEGAL_TRANSITIONS, check_fields

Clock = Callable[[], float]
DEFAULT_TTL = 24 * 3600.0
#: Longest lease a store grants: a lease is a heartbeat, renewed while a run is alive.
MAX_LEASE_SECONDS = 30 * 24 * 3600.0
#: Default size limits (bytes of stored JSON): one field or checkpoint window, a whole
#: job, and the largest value copied into a change event (larger ones are omitted).
DEFAULT_MAX_FIELD_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_JOB_BYTES = 64 * 1024 * 1024
DEFAULT_EVENT_VALUE_BYTES = 64 * 1024


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def check_ttl(ttl: float | None) -> float | None:
    """A job TTL: ``None`` (forever) or a finite number of seconds, at least one."""
    if ttl is not None and (
        isinstance(ttl, bool) or not (isinstance(ttl, int | float) and 1.0 <= ttl < math.inf)
    ):
        raise ValueError(f"ttl must be a finite number of seconds >= 1, or None; not {ttl!r}")
    return ttl


def check_lease_seconds(lease_seconds: float) -> None:
    if not (isinstance(lease_seconds, int | float) and 0 < lease_seconds <= MAX_LEASE_SECONDS):
        raise ValueError(
            f"lease_seconds must be a number in (0, {MAX_LEASE_SECONDS:.0f}], "
            f"not {lease_seconds!r}"
        )


def check_limits(max_field_bytes: int, max_job_bytes: int, event_value_bytes: int) -> None:
    for name, value in (
        ("max_field_bytes", max_field_bytes),
        ("max_job_bytes", max_job_bytes),
        ("event_value_bytes", event_value_bytes),
    ):
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{name} must be a positive int, not {value!r}")


def check_job_id(job_id: object) -> None:
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"job id must be a non-empty str, not {job_id!r}")


def check_max_attempts(max_attempts: int, limit: int) -> None:
    if not (isinstance(max_attempts, int) and max_attempts >= 1):
        raise ValueError(f"max_attempts must be an int >= 1, not {max_attempts!r}")
    if not (isinstance(limit, int) and limit >= 1):
        raise ValueError(f"limit must be an int >= 1, not {limit!r}")


def allowed_sources(to: JobStatus, expect: Collection[JobStatus] | None) -> frozenset[JobStatus]:
    """The statuses a ``transition(to, expect=...)`` may start from."""
    to = JobStatus(to)
    legal = LEGAL_TRANSITIONS[to]
    if expect is None:
        return legal
    return legal & frozenset(JobStatus(s) for s in expect)


def transition_fields(
    to: JobStatus, fields: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any], bool]:
    """The fields a transition writes, and whether it drops the lease.

    Caller-given ``started_at``/``finished_at`` win over the automatic ones.
    """
    check_fields(fields)
    out = dict(fields)
    if to is JobStatus.RUNNING:
        out.setdefault("started_at", now)
    if to in FINISHED_STATUSES:
        out.setdefault("finished_at", now)
    if to is JobStatus.QUEUED:
        out.setdefault("finished_at", None)
    return out, to is not JobStatus.RUNNING


def lease_expired_error(attempts: int, max_attempts: int) -> JobError:
    """The error ``requeue_expired`` records on a job it gives up on.

    The Redis store's ``expire_lease.lua`` builds the same message.
    """
    return JobError(
        type="LeaseExpired",
        message=(
            f"the job's lease expired on attempt {attempts} of {max_attempts}: its worker "
            "stopped renewing it (crashed, killed or stalled), so it is not retried again"
        ),
    )


def order_key(job: Job) -> str:
    """The key ``list`` orders by (creation time, then id), also used as its cursor."""
    micros = int(job.created_at.timestamp() * 1_000_000)
    return f"{micros:020d}|{job.id}"
