"""The store's Redis (a server this test starts on its own port, append-only) killed
under the running service: readiness and every store-backed call answer 503 as JSON,
health still answers, and after the restart the jobs are all there again."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_proc import bursts, events, service, upload

from support.redis_server import DurableRedis

pytestmark = pytest.mark.slow


def test_the_service_answers_503_while_its_store_is_down(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = DurableRedis(tmp_path / "store")
    try:
        with service(tmp_path, redis=store.url) as s, s.client() as client:
            job = upload(client, bursts(tmp_path / "talk.flac", count=2)).json()
            assert [e["data"]["status"] for e in events(client, job["events_url"])][-1] == (
                "completed"
            )
            store.kill()
            ready = client.get("/v1/ready")
            assert ready.status_code == 503 and ready.json()["error"]["type"] == "NotReady"
            got = client.get(f"/v1/jobs/{job['id']}")
            assert got.status_code == 503, got.text
            assert got.json()["error"]["type"] == "StoreUnavailable"
            assert int(got.headers["retry-after"]) >= 1
            assert "Traceback" not in got.text
            assert client.get("/v1/health").status_code == 200
            store.start()
            assert client.get("/v1/ready").json() == {"status": "ready"}
            back = client.get(f"/v1/jobs/{job['id']}")
            assert back.status_code == 200 and back.json()["status"] == "completed"
    finally:
        store.stop()
