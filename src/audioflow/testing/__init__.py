"""Helpers for testing code that uses audioflow, and for testing audioflow itself.

* :class:`JobStoreConformance` — the JobStore contract as a pytest test class to
  subclass for your own store (needs pytest).
* :class:`FakeClock` — a clock that moves only when told to.
* :class:`~audioflow.testing.transcribers.BurstTranscriber` — a model-free transcriber.
* :mod:`audioflow.testing.media` — generators of real media files (PyAV encoders).
* :class:`FakeDeepgramServer` — Deepgram's ``POST /v1/listen`` over real HTTP on
  loopback, with scripted :class:`Fault` s and :class:`RecordedRequest` s (needs no
  pytest, only PyAV).
* :class:`FaultyStore` — wraps any JobStore and fails the calls you choose, before or
  after they took effect.
* :class:`SqliteJobStore` — the reference third-party store (SQLite, public API only)
  that ``docs/custom-jobstore.md`` builds; it passes the conformance suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conformance import FakeClock, JobStoreConformance
    from .deepgram import FakeDeepgramServer, Fault, RecordedRequest
    from .faults import FaultyStore
    from .sqlite import SqliteJobStore

__all__ = [
    "FakeClock",
    "FakeDeepgramServer",
    "Fault",
    "FaultyStore",
    "JobStoreConformance",
    "RecordedRequest",
    "SqliteJobStore",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing audioflow.testing does not require pytest.
    if name in ("FakeClock", "JobStoreConformance"):
        from . import conformance

        return getattr(conformance, name)
    if name in ("FakeDeepgramServer", "Fault", "RecordedRequest"):
        from . import deepgram

        return getattr(deepgram, name)
    if name == "FaultyStore":
        from .faults import FaultyStore

        return FaultyStore
    if name == "SqliteJobStore":
        from .sqlite import SqliteJobStore

        return SqliteJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
