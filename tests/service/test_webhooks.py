"""Signed webhooks to a real receiver on 127.0.0.1: verified signatures, retries with
backoff on errors and timeouts, every attempt recorded on the job."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from service_proc import ALICE, bursts, events, service, upload

from audioflow.service import SIGNATURE_HEADER, sign, verify_signature

pytestmark = pytest.mark.slow


class Receiver:
    """An HTTP server that answers each POST by the next entry of ``script``: a status
    code, or ``"hang"`` (answer 200 after ``hang`` seconds); then 200."""

    def __init__(self, script: list[int | str], hang: float = 2.0) -> None:
        self.script = list(script)
        self.hang = hang
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.received.append((body, dict(self.headers)))
                    step = receiver.script.pop(0) if receiver.script else 200
                    receiver.arrived.notify_all()
                if step == "hang":
                    time.sleep(receiver.hang)
                    step = 200
                self.send_response(int(step))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), (
                f"{len(self.received)} of {count} deliveries arrived"
            )


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    r = Receiver(*request.param)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_signatures_sign_the_timestamp_and_body() -> None:
    body = b'{"job_id":"x"}'
    header = sign("secret", body, timestamp=1_800_000_000)
    assert verify_signature("secret", body, header, now=1_800_000_010)
    assert not verify_signature("other", body, header, now=1_800_000_010)
    assert not verify_signature("secret", body + b" ", header, now=1_800_000_010)
    assert not verify_signature("secret", body, header, now=1_800_001_000)  # too old
    forged = header.replace("t=1800000000", "t=1800000900")  # a newer time, same mac
    assert not verify_signature("secret", body, forged, now=1_800_000_900)
    for junk in ("", "t=x,v1=y", "v1=abc", "t=1800000000", "nonsense"):
        assert not verify_signature("secret", body, junk, now=1_800_000_000)


@pytest.mark.parametrize("receiver", [([500, 503],)], indirect=True)
def test_a_receiver_that_fails_twice_gets_the_third_attempt(
    receiver: Receiver, tmp_path: Path
) -> None:
    media = bursts(tmp_path / "talk.flac", count=2)
    with service(tmp_path, webhook_backoff=0.1) as s, s.client() as client:
        job = upload(client, media, callback_url=receiver.url).json()
        list(events(client, job["events_url"]))  # to the end
        receiver.wait_for(3)
        deadline = time.monotonic() + 10
        while not (view := client.get(f"/v1/jobs/{job['id']}").json())["webhook"]["delivered"]:
            assert time.monotonic() < deadline, view
            time.sleep(0.05)
    assert len(receiver.received) == 3
    for body, headers in receiver.received:
        assert verify_signature(ALICE["webhook_secret"], body, headers[SIGNATURE_HEADER])
        outcome = json.loads(body)
        assert outcome["job_id"] == job["id"] and outcome["status"] == "completed"
        assert outcome["formats"] == ["json", "md", "srt", "txt", "vtt"]
    webhook = view["webhook"]
    assert webhook["url"] == receiver.url
    assert [a["status_code"] for a in webhook["attempts"]] == [500, 503, 200]
    assert all(a["elapsed_ms"] >= 0 and a["error"] is None for a in webhook["attempts"])


@pytest.mark.parametrize("receiver", [(["hang", 500, 500, 500], 3.0)], indirect=True)
def test_timeouts_are_retried_and_the_attempts_are_bounded(
    receiver: Receiver, tmp_path: Path
) -> None:
    media = bursts(tmp_path / "talk.flac", count=2)
    with (
        service(tmp_path, webhook_backoff=0.1, webhook_timeout=0.5) as s,
        s.client() as client,
    ):
        job = upload(client, media, callback_url=receiver.url).json()
        list(events(client, job["events_url"]))
        receiver.wait_for(3)
        deadline = time.monotonic() + 10
        while len((view := client.get(f"/v1/jobs/{job['id']}").json())["webhook"]["attempts"]) < 3:
            assert time.monotonic() < deadline, view
            time.sleep(0.05)
    attempts = view["webhook"]["attempts"]
    assert view["webhook"]["delivered"] is False
    assert attempts[0]["error"] == "ReadTimeout" and attempts[0]["status_code"] is None
    assert [a["status_code"] for a in attempts[1:]] == [500, 500]
    assert len(receiver.received) == 3  # three attempts, no fourth
