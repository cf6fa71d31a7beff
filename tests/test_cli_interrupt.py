"""Ctrl-C in ``audioflow transcribe``: a real process, a real Redis store, real SIGINTs.

The transcriber is the worker tests' ``worker_transcriber:make``: it logs every window
it is asked for to a Redis list before answering, so a test sees exactly what each run
paid for.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis

from audioflow import JobStatus, RedisJobStore
from support.redis_server import delete_prefix, redis_url

WORKERS = Path(__file__).resolve().parent / "workers"
sys.path.insert(0, str(WORKERS))
from worker_procs import burst_media, wait_for  # noqa: E402

COMMAND = [sys.executable, "-c", "import sys; from audioflow.cli import main; sys.exit(main())"]

pytestmark = pytest.mark.slow


class Run:
    """The command in a subprocess, its stderr read line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*COMMAND, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, str, str, dict[str, str]]]:
    url = redis_url()
    prefix = f"audioflow-test:cli-interrupt:{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(WORKERS), *sys.path]),
        "AF_TEST_LOG_URL": url,
        "AF_TEST_LOG_KEY": f"{prefix}calls",
    }
    media = burst_media(tmp_path / "talk.wav", count=16)  # 8 windows of 2 bursts
    yield media, url, prefix, env
    delete_prefix(url, prefix)


def _args(media: Path, out: Path, url: str, prefix: str, *more: str) -> list[str]:
    return [
        "transcribe",
        str(media),
        "--out",
        str(out),
        "--store",
        url,
        "--prefix",
        prefix,
        "--transcriber",
        "worker_transcriber:make",
        "--format",
        "txt",
        *more,
    ]


def _asked(client: redis.Redis, key: str) -> list[int]:
    """The window indices the transcriber was asked for, in order."""
    return [int(entry.decode().split(":")[1]) for entry in client.lrange(key, 0, -1)]


def test_ctrl_c_keeps_what_was_paid_for_and_resume_does_not_pay_again(
    setup: tuple[Path, str, str, dict[str, str]], tmp_path: Path
) -> None:
    media, url, prefix, env = setup
    client = redis.Redis.from_url(url)
    log = f"{prefix}calls"
    out = tmp_path / "out"
    run = Run(_args(media, out, url, prefix), {**env, "AF_TEST_PAUSE": "0.3"})
    wait_for(lambda: len(_asked(client, log)) >= 3, 60, "three windows asked for")
    run.proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    assert run.wait() == 130, run.text
    stopped_after = time.monotonic() - sent
    # The job id is printed as the job starts, and again with what was kept.
    [job_id] = re.findall(r"^talk\.wav: job (\w+)$", run.text, re.M)
    [kept_line] = [line for line in run.lines if "kept in job" in line]
    assert kept_line.startswith("talk.wav: stopped, ") and job_id in kept_line
    assert kept_line.endswith(f"--store {url} --prefix {prefix} --resume")
    assert "interrupted: stopping (Ctrl-C again to quit at once)" in run.lines
    # Within a second on this machine; the bound leaves room for a loaded one.
    assert stopped_after < 3.0, stopped_after

    async def stored() -> tuple[JobStatus, set[int]]:
        async with RedisJobStore(url, prefix=prefix) as store:
            job = await store.get(job_id)
        assert job is not None
        kept = {w.index for w in job.checkpoint.windows} if job.checkpoint else set()
        return job.status, kept

    status, kept = anyio.run(stored)
    assert status is JobStatus.CANCELLED
    assert kept and f"stopped, {len(kept)} window" in kept_line
    first_run = _asked(client, log)

    again = Run(_args(media, out, url, prefix, "--resume"), {**env, "AF_TEST_PAUSE": "0"})
    assert again.wait() == 0, again.text
    assert f"talk.wav: job {job_id}" in again.lines  # the same job, continued
    second_run = _asked(client, log)[len(first_run) :]
    assert not kept & set(second_run)  # no window kept was paid for again
    assert kept | set(second_run) == set(range(8))
    assert len((out / "talk.txt").read_text().split()) >= 16  # a word a burst, and times
    assert anyio.run(stored)[0] is JobStatus.COMPLETED

    # A job id names one file asked one way: anything else is refused before any work.
    other = burst_media(tmp_path / "other.wav", count=2)
    for args, says in (
        (_args(other, out, url, prefix, "--job-id", job_id), "that job transcribes"),
        (_args(media, out, url, prefix, "--job-id", job_id, "--format", "srt"), "other outputs"),
    ):
        refused = Run(args, env)
        assert refused.wait() == 2, refused.text
        assert says in refused.text and "Traceback" not in refused.text


def test_a_second_ctrl_c_quits_at_once(
    setup: tuple[Path, str, str, dict[str, str]], tmp_path: Path
) -> None:
    media, url, prefix, env = setup
    client = redis.Redis.from_url(url)
    # Each window burns 30 s of CPU in a thread that cancellation cannot stop, so the
    # first Ctrl-C cannot finish before the second arrives.
    run = Run(_args(media, tmp_path / "out", url, prefix), {**env, "AF_TEST_BURN": "30"})
    wait_for(lambda: len(_asked(client, f"{prefix}calls")) >= 1, 60, "a window asked for")
    run.proc.send_signal(signal.SIGINT)
    wait_for(lambda: any("interrupted" in line for line in run.lines), 30, "the first Ctrl-C")
    run.proc.send_signal(signal.SIGINT)
    assert run.wait(timeout=20) == 130, run.text
    assert not any("kept in job" in line for line in run.lines)  # it did not wait to say
