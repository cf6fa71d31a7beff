"""``audioflow worker/submit/watch/cancel/status``: arguments checked before any work,
clear errors, and what each prints. The commands with real workers are in
test_dramatiq.py; here the store is real Redis and no worker runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from worker_procs import burst_media, delete_queue

from audioflow import Job, JobError, JobResult, JobStatus, RedisJobStore, Transcript
from support.redis_server import delete_prefix, redis_url

COMMAND = shutil.which("audioflow", path=str(Path(sys.executable).parent)) or "audioflow"


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"audioflow-test:cmd:{uuid.uuid4().hex[:8]}:"
    yield prefix
    delete_prefix(redis_url(), prefix)


def run(*args: str, prefix: str = "audioflow-test:cmd:none:") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIOFLOW_")}
    env |= {"AUDIOFLOW_STORE": redis_url(), "AUDIOFLOW_BROKER": redis_url()}
    return subprocess.run(
        [COMMAND, *args, "--prefix", prefix],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worker", "--broker", "kafka://x"), "--broker must be a redis:// or amqp:// URL"),
        (("worker", "--store", "memory"), "redis:// URL"),
        (("worker", "--transcriber", "no_such_module:make"), "cannot import 'no_such_module'"),
        (("worker", "--transcriber", "os:sep"), "not callable"),
        (("worker", "--processes", "0"), "at least 1"),
        (("worker", "--lease-seconds", "0"), "must be positive"),
        (("submit", "/nonexistent/a.flac"), "no such file: /nonexistent/a.flac"),
        (("status", "--store", "postgres://x"), "--store"),
    ],
)
def test_bad_arguments_exit_2_before_any_work(args: tuple[str, ...], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2, out
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_passwords_in_urls_stay_out_of_messages() -> None:
    out = run("worker", "--broker", "kafka://user:s3cret@broker.internal:9092")
    assert out.returncode == 2 and "kafka://user:***@broker.internal:9092" in out.stderr
    missing = run("status", "nope", "--store", f"redis://:s3cret@{redis_url()[8:]}")
    assert missing.returncode == 1 and "no job 'nope' in redis://:***@" in missing.stderr
    assert "s3cret" not in out.stderr + missing.stderr


def test_submit_with_one_id_for_two_files_is_refused(tmp_path: Path, prefix: str) -> None:
    a, b = burst_media(tmp_path / "a.flac"), burst_media(tmp_path / "b.flac")
    out = run("submit", str(a), str(b), "--job-id", "x", prefix=prefix)
    assert out.returncode == 2 and "one FILE" in out.stderr
    assert anyio.run(_get, prefix, "x") is None  # nothing was created


async def _get(prefix: str, job_id: str) -> Job | None:
    async with RedisJobStore(redis_url(), prefix=prefix) as store:
        return await store.get(job_id)


async def _put(prefix: str, job: Job, to: JobStatus | None = None, **fields: object) -> None:
    async with RedisJobStore(redis_url(), prefix=prefix) as store:
        await store.create(job)
        if to is not None:
            claimed = await store.claim(job.id, owner="test", lease_seconds=60)
            assert claimed.lease is not None
            await store.transition(job.id, to, lease_token=claimed.lease.token, **fields)  # type: ignore[arg-type]


def test_submit_prints_the_job_ids_and_queues_them(tmp_path: Path, prefix: str) -> None:
    queue = f"aftest_{uuid.uuid4().hex[:8]}"
    files = [burst_media(tmp_path / f"{n}.flac") for n in ("a", "b")]
    try:
        out = run("submit", *map(str, files), "--queue", queue, prefix=prefix)
        assert out.returncode == 0, out.stderr
        ids = out.stdout.split()
        assert len(ids) == 2
        jobs = [anyio.run(_get, prefix, job_id) for job_id in ids]
        # Queued for the workers, with the absolute path every worker reads.
        assert [j.source if j else None for j in jobs] == [str(f.resolve()) for f in files]
        assert all(j is not None and j.status is JobStatus.QUEUED for j in jobs)
        again = run("submit", str(files[0]), "--queue", queue, "--job-id", ids[0], prefix=prefix)
        assert again.returncode == 0 and again.stdout.split() == [ids[0]]
    finally:
        delete_queue("redis", queue)


def test_cancel_and_status(tmp_path: Path, prefix: str) -> None:
    anyio.run(_put, prefix, Job(id="c1", source="/shared/a.flac"))
    out = run("cancel", "c1", prefix=prefix)
    assert out.returncode == 0 and out.stdout.strip() == "c1: cancelled"
    again = run("cancel", "c1", prefix=prefix)  # already finished: a clear error, exit 1
    assert again.returncode == 1 and "InvalidTransitionError" in again.stderr
    assert "Traceback" not in again.stderr
    missing = run("cancel", "nope", prefix=prefix)
    assert missing.returncode == 1 and "JobNotFoundError" in missing.stderr
    listed = run("status", prefix=prefix)
    assert listed.returncode == 0
    assert listed.stdout.split()[:2] == ["c1", "cancelled"]
    queued = run("status", "--status", "queued", prefix=prefix)
    assert queued.returncode == 0 and queued.stdout == "" and "no jobs" in queued.stderr
    anyio.run(_put, prefix, Job(id="c2", source="/shared/b.flac"))
    recent = run("status", "--limit", "1", prefix=prefix)  # the most recent job
    assert recent.stdout.split()[:2] == ["c2", "queued"]
    paged = run("status", "--limit", "1", "--oldest", prefix=prefix)
    assert paged.stdout.split()[0] == "c1" and "--cursor" in paged.stderr
    cursor = paged.stderr.split("--cursor ")[1].split()[0]
    rest = run("status", "--limit", "1", "--cursor", cursor, prefix=prefix)
    assert rest.stdout.split()[:2] == ["c2", "queued"]
    one = run("status", "c1", prefix=prefix)
    assert "status:   cancelled" in one.stdout and "attempts: 0" in one.stdout


def test_watch_a_finished_job_writes_its_renderings(tmp_path: Path, prefix: str) -> None:
    result = JobResult(transcript=Transcript(segments=()), artifacts={})
    anyio.run(
        lambda: _put(
            prefix,
            Job(id="w1", source="/shared/a.flac"),
            JobStatus.COMPLETED,
            result=result,
            artifacts={"srt": "1\n", "txt": "hello\n"},
        )
    )
    out = run("watch", "w1", "--out", str(tmp_path / "out"), prefix=prefix)
    assert out.returncode == 0, out.stderr
    assert "w1: completed" in out.stdout
    assert (tmp_path / "out" / "w1.txt").read_text() == "hello\n"
    assert (tmp_path / "out" / "w1.srt").read_text() == "1\n"
    error = JobError(type="DecodeError", message="no such file", stage="decode")
    anyio.run(lambda: _put(prefix, Job(id="w2", source="/x"), JobStatus.FAILED, error=error))
    failed = run("watch", "w2", prefix=prefix)
    assert failed.returncode == 1
    assert failed.stdout.strip() == "w2: failed: DecodeError: no such file"
    gone = run("watch", "w3", prefix=prefix)
    assert gone.returncode == 1 and "no job 'w3'" in gone.stderr
