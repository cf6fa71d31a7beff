"""One audioflow service process for the service tests: a real uvicorn on 127.0.0.1.

Usage: python _serve.py CONFIG_JSON

CONFIG_JSON holds ``port``, ``redis`` (URL), ``prefix``, ``upload_dir``, ``keys`` (a list
of ApiKey fields), and optionally ``transcriber`` (``bursts``, the default: the
model-free test transcriber, or ``whisper``: the bundled model), ``pause`` (seconds a
window, to catch jobs running), ``max_upload_bytes``, ``max_duration``, ``max_running``,
``webhook_backoff``, ``webhook_timeout``, ``lease_seconds``; ``prefix`` may be given
to share a store prefix with an earlier service (a restart).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import anyio
import uvicorn

from audioflow import Pipeline, RedisJobStore
from audioflow.service import ApiKey, create_app
from audioflow.testing.transcribers import BurstTranscriber
from audioflow.transcribers import AudioWindow, Transcriber, WindowCallback, WindowTranscript


class Paused(BurstTranscriber):
    def __init__(self, pause: float) -> None:
        super().__init__(max_window=2.0, max_batch=1)
        self.pause = pause

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        await anyio.sleep(self.pause * len(windows))
        return await super().transcribe(windows, language=language, on_window=on_window)


def main(config: dict[str, object]) -> None:
    store = RedisJobStore(str(config["redis"]), prefix=str(config["prefix"]))
    if config.get("transcriber") == "whisper":
        pipeline = Pipeline.default(store=store)
    else:
        transcriber: Transcriber = Paused(float(config.get("pause", 0.0)))  # type: ignore[arg-type]
        lease = float(config.get("lease_seconds", 60.0))  # type: ignore[arg-type]
        pipeline = Pipeline(
            transcriber, store=store, vad="energy", concurrency=1, lease_seconds=lease
        )
    keys = [ApiKey(**k) for k in config["keys"]]  # type: ignore[attr-defined]
    app = create_app(
        store,
        keys=keys,
        upload_dir=str(config["upload_dir"]),
        pipeline=pipeline,
        max_upload_bytes=int(config.get("max_upload_bytes", 2 * 1024**3)),  # type: ignore[call-overload]
        max_duration=config.get("max_duration"),  # type: ignore[arg-type]
        max_running=int(config.get("max_running", 4)),  # type: ignore[call-overload]
        webhook_backoff=float(config.get("webhook_backoff", 0.2)),  # type: ignore[arg-type]
        webhook_timeout=float(config.get("webhook_timeout", 10.0)),  # type: ignore[arg-type]
    )
    uvicorn.run(app, host="127.0.0.1", port=int(config["port"]), log_level="warning")  # type: ignore[call-overload]


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
