"""Decisions both built-in stores share, so that they cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from ..records import FINISHED_STATUSES, JobStatus
from .protocol import LEGAL_TRANSITIONS, check_fields

Clock = Callable[[], float]
DEFAULT_TTL = 24 * 3600.0


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def check_ttl(ttl: float | None) -> float | None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    return ttl


def check_lease_seconds(lease_seconds: float) -> None:
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be positive, not {lease_seconds!r}")


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
