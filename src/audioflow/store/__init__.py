"""Job stores: the protocol and the built-in backends.

``RedisJobStore`` is imported lazily so that ``import audioflow`` works without the
``redis`` extra; using it without redis-py installed raises ``MissingDependencyError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..records import FINISHED_STATUSES, TERMINAL_STATUSES
from .memory import MemoryJobStore
from .protocol import (
    LEGAL_TRANSITIONS,
    UPDATABLE_FIELDS,
    JobFields,
    JobStore,
    check_fields,
    check_values,
)

if TYPE_CHECKING:
    from .redis import RedisJobStore

__all__ = [
    "FINISHED_STATUSES",
    "LEGAL_TRANSITIONS",
    "TERMINAL_STATUSES",
    "UPDATABLE_FIELDS",
    "JobFields",
    "JobStore",
    "MemoryJobStore",
    "RedisJobStore",
    "check_fields",
    "check_values",
]


def __getattr__(name: str) -> Any:
    if name == "RedisJobStore":
        from .redis import RedisJobStore

        return RedisJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
