"""The Redis server the tests use, and clean-up by key prefix.

Tests use ``AUDIOFLOW_TEST_REDIS_URL`` if set, else the server on 127.0.0.1:6379. If
none answers there, a private ``redis-server`` is started on a free port for this test
run (and stopped at exit), so a plain ``pytest`` works wherever the binary exists.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, retry=None)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def _start_private_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "no Redis answers on 127.0.0.1:6379 and redis-server is not installed; "
            "install it (apt-get install redis-server) or set AUDIOFLOW_TEST_REDIS_URL"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):  # up to ~10 s for the server to accept connections
        if _answers(url):
            return url
        time.sleep(0.1)
    raise RuntimeError(f"redis-server on port {port} did not start")


@functools.cache
def redis_url() -> str:
    url = os.environ.get("AUDIOFLOW_TEST_REDIS_URL", DEFAULT_URL)
    if _answers(url) or "AUDIOFLOW_TEST_REDIS_URL" in os.environ:
        return url
    return _start_private_server()


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN, never FLUSHALL: the server is shared)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


class DurableRedis:
    """A redis-server on a port of its own, persisting to ``folder``; killable."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary, self.folder = binary, folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        where = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        durable = ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen([self.binary, *where, *durable], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
