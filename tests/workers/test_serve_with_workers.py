"""``audioflow serve --broker``: the service hands uploads to ``audioflow worker``
processes, which read them from the upload folder and finish the jobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from worker_procs import CLI, burst_media, cluster

pytestmark = pytest.mark.slow

KEY = "carol-key-0123456789"


def test_serve_without_keys_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIOFLOW_")}
    out = subprocess.run(
        [sys.executable, "-c", CLI, "serve", "--store", "redis://127.0.0.1:6379/0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 2 and "AUDIOFLOW_API_KEYS" in out.stderr
    assert "Traceback" not in out.stderr


def test_uploads_are_transcribed_by_workers(tmp_path: Path) -> None:
    media = burst_media(tmp_path / "talk.flac")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with cluster(tmp_path, "redis", count=1) as c:
        args = ["serve", "--store", c.store, "--prefix", c.prefix, "--broker", c.broker]
        args += ["--queue", c.queue, "--port", str(port), "--upload-dir", str(tmp_path / "up")]
        log = (tmp_path / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            env={**c.env, "AUDIOFLOW_API_KEYS": f"carol:{KEY}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/v1/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "serve.log"
                ).read_text()
                time.sleep(0.05)
            headers = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                job = client.post(
                    "/v1/jobs", params={"filename": "talk.flac"}, content=media.read_bytes()
                ).json()
                deadline = time.monotonic() + 30
                done = f"/v1/jobs/{job['id']}"
                while (view := client.get(done).json())["status"] != "completed":
                    assert view["status"] in ("queued", "running"), view
                    assert time.monotonic() < deadline, view
                    time.sleep(0.05)
                srt = client.get(f"/v1/jobs/{job['id']}/artifacts/srt")
                assert srt.status_code == 200 and "f400" in srt.text
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
        # The worker process, not the server, transcribed it.
        calls = {job_id for job_id, _, _ in c.calls()}
        assert calls == {job["id"]}
