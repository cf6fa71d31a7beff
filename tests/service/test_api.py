"""The HTTP API against a real uvicorn server and a real Redis store.

Upload → live events → completed → every rendering; a reconnect with ``Last-Event-ID``
that misses nothing; and the refusals: 401, 404 across keys, 413, 415, 429, each as a
JSON error without a stack trace.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_proc import ALICE, BOB, Service, bursts, events, service, upload

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bursts(tmp_path_factory.mktemp("media") / "talk.flac")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service(tmp_path_factory.mktemp("service"), pause=0.05) as s:
        yield s


def stream_until_answered(url: str, limit: int) -> tuple[int, int]:
    """POST chunks of zeros over a raw socket until the server answers; (bytes sent,
    status)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/jobs?filename=big.wav HTTP/1.1\r\n"
            + f"Host: {host}:{port}\r\nAuthorization: Bearer {ALICE['key']}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"4000\r\n" + b"\0" * 0x4000 + b"\r\n"
        sent = 0
        while sent < limit:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(chunk)
            sent += 0x4000
        head = sock.recv(65536).decode(errors="replace")
    return sent, int(head.split()[1])


def assert_error(answer: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    if kind is not None:
        assert body["error"]["type"] == kind
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    return dict(body["error"])


def test_upload_events_completed_and_every_rendering(server: Service, media: Path) -> None:
    with server.client() as client:
        answer = upload(client, media, formats="srt,vtt,json,txt,md", language="en")
        assert answer.status_code == 201, answer.text
        job = answer.json()
        assert answer.headers["location"].endswith(f"/v1/jobs/{job['id']}")
        assert job["filename"] == "talk.flac" and job["bytes"] == media.stat().st_size
        import hashlib

        assert job["sha256"] == hashlib.sha256(media.read_bytes()).hexdigest()
        seen = list(events(client, job["events_url"]))
        assert seen[0]["event"] == "snapshot"
        statuses = [e["data"]["status"] for e in seen]
        assert statuses[-1] == "completed" and "running" in statuses
        fractions = [e["data"]["progress"]["fraction"] for e in seen if "progress" in e["data"]]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        done = client.get(f"/v1/jobs/{job['id']}").json()
        assert done["status"] == "completed" and done["progress"]["fraction"] == 1.0
        assert {a["format"] for a in done["artifacts"]} == {"srt", "vtt", "json", "txt", "md"}
        for artifact in done["artifacts"]:
            got = client.get(artifact["url"])
            assert got.status_code == 200
            assert got.headers["content-type"] == artifact["content_type"]
            assert got.headers["content-disposition"] == (
                f'attachment; filename="talk.{artifact["format"]}"'
            )
            assert got.text
        assert "f440" in client.get(f"/v1/jobs/{job['id']}/artifacts/txt").text
        vtt = client.get(f"/v1/jobs/{job['id']}/artifacts/vtt").text
        assert vtt.startswith("WEBVTT")
        assert json.loads(client.get(f"/v1/jobs/{job['id']}/artifacts/json").text)["segments"]
        listed = client.get("/v1/jobs").json()
        assert job["id"] in [j["id"] for j in listed["jobs"]]


def test_a_reconnect_with_last_event_id_misses_no_event(server: Service, media: Path) -> None:
    with server.client() as client:
        job = upload(client, media).json()
        whole = list(events(client, job["events_url"]))
        assert whole[-1]["data"]["status"] == "completed"
        changes = [e for e in whole if e["event"] != "snapshot"]
        # Break off after every event in turn; the reconnect brings exactly the rest.
        for i in range(len(whole) - 1):
            rest = list(events(client, job["events_url"], last=whole[i]["id"]))
            assert [e["id"] for e in rest] == [e["id"] for e in whole[i + 1 :]]
        assert len(changes) >= 3
        bad = client.get(job["events_url"], headers={"Last-Event-ID": "not-a-cursor"})
        assert_error(bad, 400, "InvalidLastEventId")


def test_no_key_or_a_wrong_key_is_401(server: Service, media: Path) -> None:
    with server.client(key=None) as anonymous:
        for answer in (
            anonymous.get("/v1/jobs"),
            anonymous.post("/v1/jobs", content=b"x"),
            anonymous.get("/v1/jobs/x", headers={"Authorization": "Bearer wrong-key-0123456789"}),
            anonymous.get("/v1/jobs/x", headers={"X-API-Key": "alice-key-012345678"}),
        ):
            assert_error(answer, 401, "Unauthorized")
            assert answer.headers["www-authenticate"] == "Bearer"
        with_header = anonymous.get("/v1/jobs", headers={"X-API-Key": ALICE["key"]})
        assert with_header.status_code == 200


def test_another_keys_job_does_not_exist(server: Service, media: Path) -> None:
    with server.client(ALICE) as alice, server.client(BOB) as bob:
        job = upload(alice, media).json()
        for answer in (
            bob.get(f"/v1/jobs/{job['id']}"),
            bob.get(f"/v1/jobs/{job['id']}/events"),
            bob.get(f"/v1/jobs/{job['id']}/artifacts/srt"),
            bob.post(f"/v1/jobs/{job['id']}/cancel"),
            bob.delete(f"/v1/jobs/{job['id']}"),
        ):
            assert_error(answer, 404, "JobNotFound")
        assert job["id"] not in [j["id"] for j in bob.get("/v1/jobs").json()["jobs"]]
        assert alice.get(f"/v1/jobs/{job['id']}").status_code == 200


def test_a_file_that_is_not_media_is_415_and_leaves_nothing(
    server: Service, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all " * 100)
    with server.client() as client:
        before = set(server.upload_dir.iterdir())
        error = assert_error(upload(client, text), 415, "UnsupportedMediaError")
        assert "notes.mp3" in error["message"] and str(server.upload_dir) not in error["message"]
        empty = assert_error(
            client.post("/v1/jobs", params={"filename": "e.wav"}, content=b""), 415
        )
        assert "empty" in empty["message"]
        assert set(server.upload_dir.iterdir()) == before  # nothing kept


def test_a_failed_jobs_error_does_not_show_where_uploads_are_stored(server: Service) -> None:
    # What a pipeline records when the stored upload cannot be read: the server-side
    # path. Clients get the stored file's name, in the job, its events and webhooks.
    import anyio

    from audioflow import Job, JobError, JobStatus, RedisJobStore
    from support.redis_server import redis_url

    stored = server.upload_dir / "lost123.wav"
    message = f"{stored}: no such file"

    async def plant() -> None:
        async with RedisJobStore(redis_url(), prefix=server.prefix) as store:
            await store.create(
                Job(
                    id="lost123",
                    source=str(stored),
                    status=JobStatus.FAILED,
                    error=JobError(type="DecodeError", message=message, stage="decode"),
                    meta={"owner": ALICE["name"], "filename": "talk.wav"},
                )
            )

    anyio.run(plant)
    with server.client() as client:
        job = client.get("/v1/jobs/lost123").json()
        assert job["status"] == "failed"
        assert job["error"]["message"] == "lost123.wav: no such file"
        [snapshot] = list(events(client, "/v1/jobs/lost123/events"))
        assert snapshot["data"]["error"]["message"] == "lost123.wav: no such file"
        assert str(server.upload_dir) not in json.dumps([job, snapshot])


def test_names_cannot_leave_the_upload_folder(server: Service, media: Path) -> None:
    with server.client() as client:
        job = upload(client, media, filename="../../etc/passwd/..\\x.flac").json()
        assert job["filename"] == "x.flac"
        stored = list(server.upload_dir.glob(f"{job['id']}*"))
        assert [p.name for p in stored] == [f"{job['id']}.flac"]
        assert all(p.parent == server.upload_dir for p in server.upload_dir.rglob("*"))


def test_bad_parameters_are_400_or_422(server: Service, media: Path) -> None:
    with server.client(ALICE) as alice, server.client(BOB) as bob:
        assert_error(upload(alice, media, formats="srt,docx"), 400, "InvalidFormats")
        assert_error(upload(alice, media, callback_url="ftp://x"), 400, "InvalidCallback")
        # bob has no webhook secret: his jobs cannot carry a callback.
        assert_error(upload(bob, media, callback_url="http://127.0.0.1:9/"), 400)
        assert_error(upload(alice, media, language="english!"), 422, "InvalidRequest")
        assert_error(alice.get("/v1/jobs", params={"limit": 0}), 422)


def test_cancel_and_delete(server: Service, tmp_path: Path) -> None:
    long = bursts(tmp_path / "long.flac", count=40)  # 20 windows: a few seconds
    with server.client() as client:
        job = upload(client, long).json()
        for event in events(client, job["events_url"]):
            if event["data"]["status"] == "running":
                break
        cancelled = client.post(f"/v1/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert_error(client.post(f"/v1/jobs/{job['id']}/cancel"), 409, "AlreadyFinished")
        assert list(server.upload_dir.glob(f"{job['id']}*"))
        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
        assert not list(server.upload_dir.glob(f"{job['id']}*"))  # its file is gone too
        assert_error(client.get(f"/v1/jobs/{job['id']}"), 404)


def test_health_and_readiness(server: Service) -> None:
    with server.client(key=None) as client:
        assert client.get("/v1/health").json() == {"status": "ok"}
        assert client.get("/v1/ready").json() == {"status": "ready"}
        assert_error(client.get("/v1/nope"), 404)
        page = client.get("/")
        assert page.status_code == 200 and "<title>audioflow</title>" in page.text


def test_too_large_is_413_as_soon_as_it_passes(tmp_path: Path, media: Path) -> None:
    with service(tmp_path, max_upload_bytes=100_000) as small, small.client() as client:
        declared = client.post(
            "/v1/jobs",
            content=b"\0" * 200_000,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert_error(declared, 413, "TooLarge")
        # Chunked, no Content-Length: the server counts as it reads and answers once past
        # the limit, while this client is still sending (up to 100 MB, never reached).
        sent, status = stream_until_answered(small.url, limit=100 * 1024**2)
        assert status == 413
        assert sent < 8 * 1024**2  # the limit plus what the socket buffers held
        assert not list(small.upload_dir.iterdir())


def test_per_key_limits_are_429_with_retry_after(tmp_path: Path, media: Path) -> None:
    keys = [
        {**ALICE, "max_active_jobs": 1},
        {**BOB, "max_upload_bytes": media.stat().st_size + 10},
    ]
    long = bursts(tmp_path / "long.flac", count=40)
    with service(tmp_path, keys=keys, pause=0.05) as s:
        with s.client(ALICE) as alice:
            first = upload(alice, long)
            assert first.status_code == 201
            second = upload(alice, media)
            assert_error(second, 429, "TooManyRequests")
            assert int(second.headers["retry-after"]) >= 1
            alice.post(f"/v1/jobs/{first.json()['id']}/cancel")
            # The slot frees once the server has seen the job end (its own watch).
            deadline = time.monotonic() + 10
            while (again := upload(alice, media)).status_code == 429:
                assert time.monotonic() < deadline, "the slot was never freed"
                time.sleep(0.05)
            assert again.status_code == 201
        with s.client(BOB) as bob:
            assert upload(bob, media).status_code == 201
            over = upload(bob, media)
            assert_error(over, 429, "TooManyRequests")
            assert int(over.headers["retry-after"]) > 60  # the hour's budget is spent


def test_an_interrupted_upload_leaves_nothing(server: Service) -> None:
    with server.client() as client:
        before = {j["id"] for j in client.get("/v1/jobs", params={"limit": 200}).json()["jobs"]}
    files = set(server.upload_dir.iterdir())
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/jobs?filename=cut.wav HTTP/1.1\r\n"
            + f"Host: {host}:{port}\r\nAuthorization: Bearer {ALICE['key']}\r\n".encode()
            + b"Content-Length: 1000000\r\n\r\n"
            + b"\0" * 100_000
        )
    # The client went away after a tenth of its body: the partial file is removed.
    deadline = time.monotonic() + 10
    while set(server.upload_dir.iterdir()) != files:
        assert time.monotonic() < deadline, list(server.upload_dir.iterdir())
        time.sleep(0.05)
    with server.client() as client:
        after = {j["id"] for j in client.get("/v1/jobs", params={"limit": 200}).json()["jobs"]}
    assert after == before
