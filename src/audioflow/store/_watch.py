"""``watching``: a store's watch that is closed when the block ends, however it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..records import JobEvent
from .protocol import JobStore

__all__ = ["watching"]


@asynccontextmanager
async def watching(
    store: JobStore, job_id: str, *, cursor: str | None = None
) -> AsyncIterator[AsyncIterator[JobEvent]]:
    """``store.watch(...)``, closed on leaving the block (the protocol types it as an
    ``AsyncIterator``; the built-in stores' are async generators, holding a connection
    until closed)."""
    events = store.watch(job_id, cursor=cursor)
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
