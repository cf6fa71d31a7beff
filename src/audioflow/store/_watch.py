"""Watching one job: a watch closed however its block ends, and waiting out a job."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ..errors import StoreError
from ..records import JobEvent
from .protocol import JobStore

__all__ = ["last_event", "watching"]

log = logging.getLogger("audioflow")


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


async def last_event(store: JobStore, job_id: str) -> JobEvent | None:
    """Watch the job until its watch ends (a final status, deletion or expiry); return
    the last event seen (``None`` if there was none).

    A store error is logged and the watch resumed from its cursor a second later: a
    watcher that cannot see the store for a while must not conclude anything.
    """
    cursor: str | None = None
    last: JobEvent | None = None
    while True:
        try:
            async with watching(store, job_id, cursor=cursor) as events:
                async for event in events:
                    cursor, last = event.cursor, event
            return last
        except StoreError as exc:
            log.warning("job %s: watching it failed (%s); retrying", job_id, exc)
            await anyio.sleep(1.0)
