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
import numpy as np

from audioflow.testing.media import AudioTrack, write_media
from support.redis_server import delete_prefix, redis_url

HERE = Path(__file__).parent
RATE = 16_000
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


def bursts(path: Path, count: int = 6) -> Path:
    """``count`` tone bursts 2.3 s apart: one 2 s window each two (test transcriber)."""
    audio = np.zeros(round((2.0 + 2.3 * count) * RATE), dtype=np.float32)
    for i in range(count):
        start = round((1.0 + 2.3 * i) * RATE)
        t = np.arange(round(0.4 * RATE)) / RATE
        audio[start : start + len(t)] = 0.5 * np.sin(2 * np.pi * (440 + 40 * i) * t)
    return write_media(path, AudioTrack(samples=audio, sample_rate=RATE))


def events(client: httpx.Client, url: str, last: str | None = None) -> Iterator[dict[str, Any]]:
    """The server-sent events of ``url`` as dicts (``id``, ``event``, parsed ``data``)."""
    headers = {"Last-Event-ID": last} if last else {}
    with client.stream("GET", url, headers=headers) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in answer.iter_lines():
            if not line:
                if "data" in event:
                    yield event
                event = {}
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                event[name] = json.loads(value) if name == "data" else value


def upload(client: httpx.Client, path: Path, **params: str) -> httpx.Response:
    return client.post(
        "/v1/jobs",
        params={"filename": path.name, **params},
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
