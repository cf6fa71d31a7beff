"""API keys and their limits: who may call, whose jobs they see, how much they may ask."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["ApiKey", "KeyRing", "Limited", "keys_from_env", "parse_keys"]


@dataclass(frozen=True, repr=False)
class ApiKey:
    """One client of the service.

    Args:
        name: who it is; jobs record it as their owner (the key itself is never stored).
        key: the secret sent in ``Authorization: Bearer <key>`` or ``X-API-Key``.
        webhook_secret: signs this client's webhooks (HMAC-SHA256); none: its jobs
            cannot carry a callback URL.
        max_active_jobs: its jobs queued or running at once; more is a 429.
        max_upload_bytes: bytes it may upload per ``window`` seconds; more is a 429.
    """

    name: str
    key: str
    webhook_secret: str | None = None
    max_active_jobs: int = 8
    max_upload_bytes: int = 10 * 1024**3
    window: float = 3600.0

    def __post_init__(self) -> None:
        if not self.name or not self.key:
            raise ConfigurationError("an API key needs a name and a key")
        if len(self.key) < 16:
            raise ConfigurationError(f"the API key of {self.name!r} is shorter than 16 characters")

    def __repr__(self) -> str:
        return f"ApiKey(name={self.name!r}, key='***')"


def parse_keys(text: str) -> list[ApiKey]:
    """Keys from ``name:key[:webhook_secret]`` entries, one a line or comma-separated
    (blank lines and ``#`` comments skipped)."""
    keys = []
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            name = parts[0] or "?"
            raise ConfigurationError(
                f"API key entry for {name!r} is not name:key or name:key:webhook_secret"
            )
        secret = parts[2] if len(parts) == 3 and parts[2] else None
        keys.append(ApiKey(name=parts[0], key=parts[1], webhook_secret=secret))
    return keys


def keys_from_env() -> list[ApiKey]:
    """``AUDIOFLOW_API_KEYS`` (entries as :func:`parse_keys` reads them), or the file
    named by ``AUDIOFLOW_API_KEYS_FILE``."""
    path = os.environ.get("AUDIOFLOW_API_KEYS_FILE")
    if path:
        try:
            return parse_keys(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the API keys file: {exc.strerror}") from None
    return parse_keys(os.environ.get("AUDIOFLOW_API_KEYS", ""))


class Limited(Exception):
    """A request over one of its key's limits; ``retry_after`` in whole seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass
class _Usage:
    active: set[str] = field(default_factory=set)
    uploads: deque[tuple[float, int]] = field(default_factory=deque)


class KeyRing:
    """Finds the key of a request in constant time, and keeps each key's usage.

    Usage is this process's view: with several service processes, each enforces the
    limits on what it served.
    """

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys: Sequence[ApiKey] = tuple(keys)
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ConfigurationError("two API keys have the same name")
        self._digests = [(hashlib.sha256(k.key.encode()).digest(), k) for k in self.keys]
        self._usage = {k.name: _Usage() for k in self.keys}
        self._by_name = {k.name: k for k in self.keys}

    def __repr__(self) -> str:
        return f"KeyRing({len(self.keys)} keys)"

    def find(self, presented: str | None) -> ApiKey | None:
        """The key ``presented`` is, comparing digests of every key (no early exit)."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for known, key in self._digests:
            if hmac.compare_digest(known, digest):
                found = key
        return found

    def named(self, name: str) -> ApiKey | None:
        return self._by_name.get(name)

    def start_job(self, key: ApiKey, job_id: str) -> None:
        """Count ``job_id`` as active for ``key``, or raise :class:`Limited`."""
        usage = self._usage[key.name]
        if len(usage.active) >= key.max_active_jobs:
            raise Limited(
                f"{len(usage.active)} jobs of this key are queued or running "
                f"(at most {key.max_active_jobs}); try again when one has finished",
                retry_after=10,
            )
        usage.active.add(job_id)

    def adopt(self, owner: str, job_id: str) -> None:
        """Count an existing unfinished job (found at start-up) for its owner."""
        if owner in self._usage:
            self._usage[owner].active.add(job_id)

    def end_job(self, owner: str, job_id: str) -> None:
        if owner in self._usage:
            self._usage[owner].active.discard(job_id)

    def reserve_upload(self, key: ApiKey, nbytes: int, *, check: bool = True) -> None:
        """Count ``nbytes`` against ``key``'s upload budget, or raise :class:`Limited`
        (``check=False``: count bytes already received, whatever the budget says)."""
        usage = self._usage[key.name]
        now = time.monotonic()
        while usage.uploads and usage.uploads[0][0] <= now - key.window:
            usage.uploads.popleft()
        used = sum(n for _, n in usage.uploads)
        if check and used + nbytes > key.max_upload_bytes:
            # The budget frees as the oldest uploads leave the window.
            freed, wait = used + nbytes - key.max_upload_bytes, key.window
            for at, n in usage.uploads:
                freed -= n
                if freed <= 0:
                    wait = at + key.window - now
                    break
            raise Limited(
                f"this key may upload {key.max_upload_bytes} bytes per "
                f"{key.window:g} s and has {max(0, key.max_upload_bytes - used)} left",
                retry_after=wait,
            )
        usage.uploads.append((now, nbytes))
