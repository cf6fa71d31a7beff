"""The service's process killed (SIGKILL) while it runs a job: the next start picks the
job up again (the sweep requeues it once its lease expires) and finishes it from its
checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_proc import bursts, events, service, upload

pytestmark = pytest.mark.slow


def test_a_job_survives_the_service_being_killed(tmp_path: Path) -> None:
    media = bursts(tmp_path / "long.flac", count=20)  # 10 windows, 0.3 s each at first
    with service(tmp_path, pause=0.3, lease_seconds=1.5) as first:
        with first.client() as client:
            job = upload(client, media).json()
            for event in events(client, job["events_url"]):
                if event["event"] == "checkpointed":
                    break  # some windows are saved: the run is under way
        first.proc.kill()
        first.proc.wait()
        with (
            service(tmp_path, lease_seconds=1.5, prefix=first.prefix) as second,
            second.client() as client,
        ):
            # job["events_url"] names the first service's port: ask the second one.
            path = f"/v1/jobs/{job['id']}/events"
            statuses = [e["data"]["status"] for e in events(client, path)]
            done = client.get(f"/v1/jobs/{job['id']}").json()
            txt = client.get(f"/v1/jobs/{job['id']}/artifacts/txt").text
    assert statuses[-1] == "completed", statuses
    assert done["status"] == "completed" and done["attempts"] == 2
    assert all(f"f{440 + 40 * i}" in txt for i in range(20))  # every burst, none lost
