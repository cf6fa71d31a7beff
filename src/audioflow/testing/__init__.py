"""Helpers for testing code that uses audioflow, and for testing audioflow itself.

* :class:`JobStoreConformance` — the JobStore contract as a pytest test class to
  subclass for your own store (needs pytest).
* :class:`FakeClock` — a clock that moves only when told to.
* :mod:`audioflow.testing.media` — generators of real media files (PyAV encoders).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conformance import FakeClock, JobStoreConformance

__all__ = ["FakeClock", "JobStoreConformance"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing audioflow.testing does not require pytest.
    if name in ("FakeClock", "JobStoreConformance"):
        from . import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
