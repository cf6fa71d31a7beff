"""A real audioflow service (uvicorn, in a process of its own) for the service tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from redis_helpers import delete_prefix, redis_url

HERE = Path(__file__).parent
ALICE = {"name": "alice", "key": "alice-key-0123456789", "webhook_secret": "alice-hook-secret"}
BOB = {"name": "bob", "key": "bob-key-0123456789ab"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """The running service: its URL, process, upload folder, and clients per key."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, upload_dir: Path, prefix: str):
        self.proc, self.url, self.upload_dir, self.prefix = proc, url, upload_dir, prefix

    def client(self, key: dict[str, Any] | None = ALICE, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key['key']}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)


@contextmanager
def service(tmp: Path, **config: Any) -> Iterator[Service]:
    """Start the service with ``config`` (see ``_serve.py``) and wait until it answers."""
    port = free_port()
    prefix = f"audioflow-test:service:{uuid.uuid4().hex[:8]}:"
    upload_dir = tmp / "uploads"
    settings = {
        "port": port,
        "redis": redis_url(),
        "prefix": prefix,
        "upload_dir": str(upload_dir),
        "keys": [ALICE, BOB],
        **config,
    }
    log = (tmp / f"service-{port}.log").open("wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_serve.py"), json.dumps(settings)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the service did not start:\n{(tmp / f'service-{port}.log').read_text()}"
                )
            time.sleep(0.05)
        yield Service(proc, url, upload_dir, prefix)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        delete_prefix(redis_url(), prefix)
