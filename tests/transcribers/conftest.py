"""Fixtures for the Whisper tests: one assembled model dir and one loaded model per session.

Loading Whisper-base takes a second or two and transcribing is CPU bound on a 2-core CI
runner, so every test shares the same ``faster_whisper.WhisperModel`` and wraps it in
its own (cheap) ``WhisperTranscriber``, whose limiter then belongs to that test's loop.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Threads each model call uses; the CI runner (and this machine) has 2 cores.
CPU_THREADS = 2


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundled model, assembled into a session temp cache (never ``~/.cache``)."""
    from audioflow.transcribers._whisper_model import bundled_model_dir

    cache = tmp_path_factory.mktemp("whisper-cache")
    yield bundled_model_dir(cache)
    shutil.rmtree(cache, ignore_errors=True)  # 145 MB; pytest keeps old tmp dirs


@pytest.fixture(scope="session")
def whisper_model(whisper_model_dir: Path) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(whisper_model_dir), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS
    )
