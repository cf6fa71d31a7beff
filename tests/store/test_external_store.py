"""The shipped reference store, ``audioflow.testing.SqliteJobStore``: what only a
file-backed store can show (reopening, corrupt rows). The conformance suite runs on it
as ``docs/custom-jobstore.md`` prints its test module, on asyncio and trio
(``tests/test_docs_samples.py``)."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from audioflow import Job, JobCorruptedError
from audioflow.testing import SqliteJobStore


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def _corrupt(path: Path, job_id: str) -> None:
    """Leave what a bad migration or a stray writer might: a body that does not decode."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        body = f'{{"id": "{job_id}", "progress": {{"fraction": "x"}}}}'
        db.execute("UPDATE jobs SET body = ? WHERE id = ?", (body, job_id))
        db.commit()


@pytest.mark.anyio
async def test_survives_reopening_and_reports_corrupt_rows(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        created = await store.create(Job(id="a", source="talk.mp3"))
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        assert await store.get("a") == created

    await anyio.to_thread.run_sync(_corrupt, path, "a")
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        with pytest.raises(JobCorruptedError) as info:
            await store.get("a")
    assert (info.value.job_id, info.value.field) == ("a", "progress")


@pytest.mark.anyio
async def test_list_names_corrupt_rows_and_pages_past_them(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ids = ["a", "b", "c", "d"]
    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        for i, job_id in enumerate(ids):
            await store.create(Job(id=job_id, created_at=start + timedelta(seconds=i)))
    await anyio.to_thread.run_sync(_corrupt, path, "b")

    async with contextlib.aclosing(SqliteJobStore(path)) as store:
        whole = await store.list(limit=3)
        assert [j.id for j in whole.jobs] == ["a", "c", "d"]
        assert (whole.corrupt, whole.cursor) == (("b",), None)
        seen, corrupt, cursor = list[str](), list[str](), None
        while True:  # one job a page: each corrupt id is reported on one page only
            page = await store.list(limit=1, cursor=cursor)
            seen += [j.id for j in page.jobs]
            corrupt += page.corrupt
            if page.cursor is None:
                break
            cursor = page.cursor
        assert (seen, corrupt) == (["a", "c", "d"], ["b"])
        assert await store.delete("b")  # what an operator does about it
        assert (await store.list()).corrupt == ()
