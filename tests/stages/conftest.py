"""Fixtures for stage tests: leak checks for file handles and threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psutil
import pytest

# Worker-thread pools (anyio's on asyncio, trio's thread cache) keep idle threads around
# for reuse; those are not leaks. Any other new thread is.
_POOL_PREFIXES = ("AnyIO worker thread", "Trio thread", "ThreadPoolExecutor", "asyncio_")


def _own_threads() -> set[int]:
    return {
        t.ident or 0
        for t in threading.enumerate()
        if not t.name.startswith(_POOL_PREFIXES) and t is not threading.main_thread()
    }


def _open_files() -> set[str]:
    return {f.path for f in psutil.Process().open_files()}


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves a file open or a (non-pool) thread running."""
    files, threads = _open_files(), _own_threads()
    yield
    assert _open_files() - files == set(), "file handles leaked"
    assert _own_threads() - threads == set(), "threads leaked"
