"""The service under load, against a real uvicorn server and a real Redis store.

Fifty uploads at once by one key: each answered 201 with an id of its own, each job
completed with its own file's hash and transcript (none lost, none crossed). And a
500 MB upload streamed through the server raises its memory by a few MB at most: the
body goes to disk as it arrives, it is never held whole.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from service_proc import ALICE, BOB, service

from audioflow.testing.media import AudioTrack, write_media

pytestmark = pytest.mark.slow

RATE = 16_000
UPLOADS = 50


def bursts(path: Path, freq: int, count: int = 2) -> Path:
    """``count`` bursts of a ``freq`` Hz tone 2.3 s apart (a copy of test_api's, with the
    pitch chosen: the test transcriber names each burst ``f<freq>``)."""
    audio = np.zeros(round((2.0 + 2.3 * count) * RATE), dtype=np.float32)
    t = np.arange(round(0.4 * RATE)) / RATE
    for i in range(count):
        start = round((1.0 + 2.3 * i) * RATE)
        audio[start : start + len(t)] = 0.5 * np.sin(2 * np.pi * freq * t)
    return write_media(path, AudioTrack(samples=audio, sample_rate=RATE))


def test_fifty_concurrent_uploads_all_complete(tmp_path: Path) -> None:
    # A pitch per upload (400, 420, ... 1380 Hz): a job given another's file or
    # transcript would show it.
    media = {
        400 + 20 * i: bursts(tmp_path / f"tone{400 + 20 * i}.flac", 400 + 20 * i)
        for i in range(UPLOADS)
    }
    keys = [{**ALICE, "max_active_jobs": 100}, BOB]
    barrier = threading.Barrier(UPLOADS, timeout=30)

    with service(tmp_path, keys=keys) as s:
        limits = httpx.Limits(max_connections=UPLOADS, max_keepalive_connections=UPLOADS)
        with s.client(limits=limits) as client:

            def upload(freq: int) -> tuple[int, httpx.Response]:
                body = media[freq].read_bytes()
                barrier.wait()  # every thread sends at once
                answer = client.post(
                    "/v1/jobs",
                    params={"filename": media[freq].name, "formats": "txt"},
                    content=body,
                    headers={"Content-Type": "application/octet-stream"},
                )
                return freq, answer

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
                answers = list(pool.map(upload, media))
            uploaded = time.monotonic() - started

            for freq, answer in answers:
                assert answer.status_code == 201, (freq, answer.text)
            jobs = {freq: answer.json() for freq, answer in answers}
            ids = [job["id"] for job in jobs.values()]
            assert len(set(ids)) == UPLOADS
            for freq, job in jobs.items():
                assert job["filename"] == media[freq].name
                assert job["bytes"] == media[freq].stat().st_size
                assert job["sha256"] == hashlib.sha256(media[freq].read_bytes()).hexdigest()

            # Every job reaches `completed` (polled; bounded).
            pending = {job["id"]: freq for freq, job in jobs.items()}
            done: dict[int, dict[str, Any]] = {}
            deadline = time.monotonic() + 60
            while pending:
                for job_id, freq in list(pending.items()):
                    got = client.get(f"/v1/jobs/{job_id}")
                    assert got.status_code == 200, got.text
                    view = got.json()
                    assert view["status"] in ("queued", "running", "completed"), view
                    if view["status"] == "completed":
                        done[freq] = view
                        del pending[job_id]
                if pending:
                    assert time.monotonic() < deadline, f"{len(pending)} jobs never completed"
                    time.sleep(0.2)
            finished = time.monotonic() - started

            assert sorted(done) == sorted(media)
            for freq, view in done.items():
                assert view["id"] == jobs[freq]["id"]
                assert view["sha256"] == jobs[freq]["sha256"]
                assert view["progress"]["fraction"] == 1.0
                text = client.get(f"/v1/jobs/{view['id']}/artifacts/txt").text
                assert re.findall(r"\bf\d+\b", text) == [f"f{freq}"] * 2, (freq, text)
            # The job list holds all fifty (it pages every key's jobs; 200 a page).
            listed = client.get("/v1/jobs", params={"limit": 200}).json()
            assert set(ids) <= {j["id"] for j in listed["jobs"]}
        assert len(list(s.upload_dir.iterdir())) == UPLOADS  # one file each, none left over
    print(f"\n{UPLOADS} uploads answered in {uploaded:.1f} s, all completed in {finished:.1f} s")


# ---------------------------------------------------------------------- memory

WAV_DATA = 500 * 1000 * 1000  # bytes of 16 kHz mono PCM16: 15625 s
CHUNK = b"\0" * (1024 * 1024)


def wav_header(data_bytes: int, rate: int = RATE) -> bytes:
    """A canonical 44-byte WAV header for ``data_bytes`` of mono PCM16 at ``rate``."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def wav_body(data_bytes: int) -> Iterator[bytes]:
    """The header, then ``data_bytes`` of silence, 1 MiB at a time (the same chunk)."""
    yield wav_header(data_bytes)
    left = data_bytes
    while left:
        n = min(left, len(CHUNK))
        yield CHUNK if n == len(CHUNK) else CHUNK[:n]
        left -= n


class RssSampler:
    """Samples a process's resident memory every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(self.process.memory_info().rss)
            if self._stop.wait(self.interval):
                self.samples.append(self.process.memory_info().rss)
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_500_mb_upload_does_not_grow_the_server_memory(tmp_path: Path) -> None:
    size = 44 + WAV_DATA
    mb = 1024 * 1024
    with service(tmp_path, max_duration=60) as s, s.client() as client:
        # One small refused upload first, so that what the first request of a process
        # sets up once (a thread pool, PyAV's formats) is not counted as the upload's.
        warm = client.post("/v1/jobs", params={"filename": "w.wav"}, content=b"\1" * 4096)
        assert warm.status_code == 415, warm.text
        server = psutil.Process(s.proc.pid)
        before = server.memory_info().rss
        started = time.monotonic()
        with RssSampler(s.proc.pid) as sampler:
            answer = client.post(
                "/v1/jobs",
                params={"filename": "long.wav"},
                content=wav_body(WAV_DATA),
                headers={"Content-Type": "audio/wav", "Content-Length": str(size)},
                timeout=120,
            )
        took = time.monotonic() - started
        after = server.memory_info().rss
        peak = max(sampler.samples)
        print(
            f"\n500 MB upload in {took:.1f} s: server RSS before {before / mb:.1f} MiB, "
            f"peak {peak / mb:.1f} MiB (+{(peak - before) / mb:.1f} MiB), "
            f"after {after / mb:.1f} MiB; {len(sampler.samples)} samples"
        )
        assert answer.status_code == 415, answer.text
        assert answer.json()["error"]["type"] == "MediaTooLongError"
        assert "over the 60 s limit" in answer.json()["error"]["message"]
        assert len(sampler.samples) > 10
        assert peak - before < 50 * mb
        assert list(s.upload_dir.iterdir()) == []  # the refused file is removed
