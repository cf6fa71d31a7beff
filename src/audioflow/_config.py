"""From settings (URLs, names) to objects: stores, transcribers, a worker's pipeline.

The command line and the worker processes it starts share these, so a setting means the
same thing in both, and a bad one is refused before any process is started.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from .errors import ConfigurationError
from .pipeline import Pipeline
from .store.memory import MemoryJobStore
from .store.protocol import JobStore
from .transcribers.base import Transcriber

__all__ = ["WorkerConfig", "import_object", "make_transcriber", "redact_url", "store_from_url"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def store_from_url(url: str, *, prefix: str = "audioflow:", memory: bool = True) -> JobStore:
    """``memory`` (when allowed) or a ``redis://``/``rediss://``/``unix://`` URL."""
    if url == "memory" and memory:
        return MemoryJobStore()
    if url.startswith(_REDIS_SCHEMES):
        from .store.redis import RedisJobStore

        return RedisJobStore(url, prefix=prefix)
    allowed = "'memory' or a redis:// URL" if memory else "a redis:// URL"
    raise ConfigurationError(f"the store must be {allowed}, not {redact_url(url)!r}")


def import_object(path: str) -> Any:
    """``package.module:attribute`` → that attribute."""
    module, sep, attribute = path.partition(":")
    if not sep or not module or not attribute:
        raise ConfigurationError(f"{path!r} is not of the form 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"{module!r} has no attribute {attribute!r}") from None
    return obj


def make_transcriber(
    name: str,
    *,
    model: str | None = None,
    model_cache: str | None = None,
    deepgram_url: str | None = None,
    whisper: Mapping[str, Any] | None = None,
    deepgram: Mapping[str, Any] | None = None,
) -> Transcriber:
    """``whisper``, ``deepgram`` (key from ``DEEPGRAM_API_KEY``) or ``module:factory``
    (called with no arguments, returning a transcriber). ``whisper`` and ``deepgram``
    hold further arguments of ``WhisperTranscriber`` (device, compute type, threads,
    beam, batch, task, prompt) and ``DeepgramTranscriber`` (``diarize``); for
    Deepgram, ``model`` is its model's name."""
    if name == "whisper":
        from .transcribers.whisper import WhisperTranscriber

        try:
            return WhisperTranscriber(
                model, cache_dir=Path(model_cache) if model_cache else None, **(whisper or {})
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    if name == "deepgram":
        key = os.environ.get("DEEPGRAM_API_KEY")
        if not key:
            raise ConfigurationError("the deepgram transcriber needs DEEPGRAM_API_KEY set")
        from .transcribers.deepgram import DeepgramTranscriber

        kwargs: dict[str, Any] = {"base_url": deepgram_url} if deepgram_url else {}
        if model:
            kwargs["model"] = model
        return DeepgramTranscriber(key, **kwargs, **(deepgram or {}))
    factory = import_object(name)
    if not callable(factory):
        raise ConfigurationError(f"{name!r} is not callable")
    transcriber = factory()
    if not isinstance(transcriber, Transcriber):
        raise ConfigurationError(f"{name!r} returned {transcriber!r}, not a Transcriber")
    return transcriber


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What ``audioflow worker`` passes to the worker processes it starts (as JSON in
    the ``AUDIOFLOW_WORKER`` environment variable, readable by the same user only, as
    the URLs given to the command were). The Deepgram key is not in it: the workers
    read ``DEEPGRAM_API_KEY`` themselves."""

    store: str
    broker: str
    prefix: str = "audioflow:"
    queue: str = "audioflow"
    transcriber: str = "whisper"
    model: str | None = None
    model_cache: str | None = None
    deepgram_url: str | None = None
    vad: str | None = None
    concurrency: int = 2
    lease_seconds: float = 60.0
    sweep_interval: float = 30.0
    max_attempts: int = 3

    def check(self) -> None:
        """Refuse what a worker could not run with (``ConfigurationError``)."""
        if self.lease_seconds <= 0 or self.sweep_interval <= 0:
            raise ConfigurationError("--lease-seconds and --sweep-interval must be positive")
        if self.max_attempts < 1 or self.concurrency < 1:
            raise ConfigurationError("--max-attempts and --concurrency must be at least 1")
        store_from_url(self.store, prefix=self.prefix, memory=False)
        if self.transcriber not in ("whisper", "deepgram") and not callable(
            import_object(self.transcriber)
        ):
            raise ConfigurationError(f"--transcriber {self.transcriber!r} is not callable")

    def pipeline(self, store: JobStore) -> Pipeline:
        """The pipeline every job of a worker process runs with (one transcriber)."""
        transcriber = make_transcriber(
            self.transcriber,
            model=self.model,
            model_cache=self.model_cache,
            deepgram_url=self.deepgram_url,
        )
        return Pipeline(
            transcriber,
            store=store,
            vad=self.vad,
            concurrency=self.concurrency,
            lease_seconds=self.lease_seconds,
        )
