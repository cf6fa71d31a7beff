"""The module ``audioflow worker`` hands to Dramatiq's process runner.

Each worker process imports it: it reads the settings ``audioflow worker`` checked and
put in ``AUDIOFLOW_WORKER`` (JSON, no secrets), and declares the broker, the queue's
actor and the runtime that owns the process's pipeline.
"""

from __future__ import annotations

import os

import msgspec

from ._config import WorkerConfig, store_from_url
from .dramatiq import DramatiqQueue, WorkerRuntime
from .pipeline import Pipeline

config = msgspec.json.decode(os.environ["AUDIOFLOW_WORKER"], type=WorkerConfig)
queue = DramatiqQueue(config.broker, queue_name=config.queue)


def _make_pipeline() -> Pipeline:
    return config.pipeline(store_from_url(config.store, prefix=config.prefix, memory=False))


queue.broker.add_middleware(
    WorkerRuntime(
        queue,
        _make_pipeline,
        sweep_interval=config.sweep_interval,
        max_attempts=config.max_attempts,
    )
)
broker = queue.broker
