"""Real ``audioflow worker`` processes for the worker tests, and the brokers they use.

Each worker runs in its own session (process group), so a test can SIGKILL one whole
worker (Dramatiq's supervising process and its worker process) as a machine dying
would. Its log (stderr) goes to a file the test reads: readiness, and one line per
delivery (``job <id>: <outcome> …``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import redis

from audioflow.testing.media import AudioTrack, write_media
from support.redis_server import redis_url

HERE = Path(__file__).parent
#: ``python -c`` code that runs the ``audioflow`` command of this interpreter.
CLI = "import sys; from audioflow.cli import main; sys.exit(main())"
RABBITMQ_URL = os.environ.get("AUDIOFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


RATE = 16_000
#: Bursts of tone in ``burst_media`` (two a window with ``max_window=2.0``).
BURSTS = 6


def burst_media(path: Path, base: int = 400, count: int = BURSTS) -> Path:
    """``count`` 0.4 s tone bursts, 2.3 s apart, as a real file."""
    seconds = 1.0 + 2.3 * count + 1.0
    audio = np.zeros(round(seconds * RATE), dtype=np.float32)
    for i in range(count):
        start = round((1.0 + 2.3 * i) * RATE)
        t = np.arange(round(0.4 * RATE)) / RATE
        audio[start : start + len(t)] = 0.5 * np.sin(2 * np.pi * (base + 40 * i) * t)
    return write_media(path, AudioTrack(samples=audio, sample_rate=RATE))


def rabbitmq_url() -> str:
    """The test RabbitMQ; skipped where none answers, except in CI (where it must)."""
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return RABBITMQ_URL
    except OSError:
        if os.environ.get("CI"):
            raise
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (.ci/run starts one)")


def broker_url(kind: str) -> str:
    return redis_url() if kind == "redis" else rabbitmq_url()


def delete_queue(kind: str, queue: str) -> None:
    """Remove a test queue (and Dramatiq's delay and dead-letter queues) from the broker."""
    if kind == "redis":
        client = redis.Redis.from_url(redis_url())
        try:
            keys = list(client.scan_iter(match=f"dramatiq:{queue}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        return
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


class Worker:
    """One ``audioflow worker`` (its own process group), logging to ``log``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> set[int]:
        """The supervisor's pid and its worker processes' (from their log lines)."""
        return {self.proc.pid} | {int(p) for p in re.findall(r"\[PID (\d+)\]", self.text())}

    def kill(self) -> None:
        """SIGKILL the whole worker: supervisor and worker processes at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """End the worker at once (the tests' jobs are over; its queue is deleted)."""
        if self.proc.poll() is None:
            self.kill()
        self._file.close()


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate()`` (a callable) until true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """N workers on one broker queue and one store prefix, with the transcriber's log."""

    def __init__(
        self,
        tmp: Path,
        broker: str,
        *,
        store: str | None = None,
        count: int = 2,
        threads: int = 2,
        lease_seconds: float = 30.0,
        sweep_interval: float | None = None,
        pause: float = 0.05,
    ) -> None:
        tag = uuid.uuid4().hex[:10]
        self.tmp = tmp
        self.broker_kind = broker
        self.broker = broker_url(broker)
        self.store = store or redis_url()
        self.prefix = f"audioflow-test:workers:{tag}:"
        self.queue = f"aftest_{tag}"
        self.log_key = f"{self.prefix}calls"
        self.threads = threads
        self.lease_seconds = lease_seconds
        self.sweep_interval = sweep_interval
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
            "AF_TEST_LOG_URL": redis_url(),
            "AF_TEST_LOG_KEY": self.log_key,
            "AF_TEST_PAUSE": str(pause),
        }
        self.workers: list[Worker] = []
        for _ in range(count):
            self.start_worker()

    def flags(self) -> list[str]:
        return ["--store", self.store, "--prefix", self.prefix]

    def start_worker(self) -> Worker:
        args = ["worker", *self.flags(), "--broker", self.broker, "--queue", self.queue]
        args += ["--threads", str(self.threads), "--transcriber", "worker_transcriber:make"]
        args += ["--vad", "energy", "--concurrency", "1"]
        args += ["--lease-seconds", str(self.lease_seconds)]
        if self.sweep_interval is not None:
            args += ["--sweep-interval", str(self.sweep_interval)]
        log = self.tmp / f"worker-{self.queue}-{len(self.workers)}.log"
        worker = Worker(args, self.env, log)
        self.workers.append(worker)
        wait_for(
            lambda: "Worker process is ready for action" in worker.text(),
            30,
            f"worker {len(self.workers)} to start:\n{worker.text()}",
        )
        return worker

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``audioflow ARGS`` against this cluster's store (and broker)."""
        return subprocess.run(
            [sys.executable, "-c", CLI, *args],
            env={**self.env, "AUDIOFLOW_STORE": self.store, "AUDIOFLOW_BROKER": self.broker},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[tuple[str, int, int]]:
        """(job id, window index, pid) of every window the transcribers were sent."""
        client = redis.Redis.from_url(redis_url())
        try:
            raw = client.lrange(self.log_key, 0, -1)
        finally:
            client.close()
        out = []
        for item in raw:
            job, index, pid = item.decode().rsplit(":", 2)
            out.append((job, int(index), int(pid)))
        return out

    def log_lines(self, job_id: str) -> list[str]:
        """The workers' log lines about one job's deliveries."""
        return [
            line
            for worker in self.workers
            for line in worker.text().splitlines()
            if f"job {job_id}: " in line
        ]

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        delete_queue(self.broker_kind, self.queue)
        client = redis.Redis.from_url(redis_url())
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def cluster(tmp: Path, broker: str, **kwargs: object) -> Iterator[Cluster]:
    c = Cluster(tmp, broker, **kwargs)  # type: ignore[arg-type]
    try:
        yield c
    finally:
        c.close()
