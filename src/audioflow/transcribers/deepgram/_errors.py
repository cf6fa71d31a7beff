"""Mapping deepgram-sdk / httpx failures onto audioflow's errors, without the API key.

What the SDK (7.x) raises, read from its source: every non-2xx answer becomes
``deepgram.core.api_error.ApiError`` (``BadRequestError`` for 400) carrying
``status_code``, the *response* headers (credential headers already masked) and the
body; a 2xx whose body is not JSON becomes ``ApiError`` with that status and the raw
text as body. Transport failures are httpx's own exceptions (``TimeoutException``,
``ConnectError``, ``RemoteProtocolError``...), which hold the *request* - with its
``Authorization: Token <key>`` header - on ``.request``.

So the key can reach an exception through a body that echoes it (a proxy, a buggy
self-hosted server) or through ``exc.request.headers``. :func:`scrub` masks the
request header in place and, if the key still appears in any message of the chain,
swaps the cause for a :class:`RedactedCause` that keeps only the masked text.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ...errors import (
    RateLimitedError,
    TranscriberAuthError,
    TranscriberUnavailableError,
    TranscriptionError,
)

__all__ = [
    "Failure",
    "RedactedCause",
    "from_api_error",
    "from_transport_error",
    "parse_retry_after",
    "scrub",
]

_MASK = "[REDACTED]"


class RedactedCause(Exception):
    """Stands in for a backend exception whose text contained the API key."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the error to raise if we stop, and whether to try again."""

    error: TranscriptionError
    retryable: bool
    retry_after: float | None = None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def scrub(exc: BaseException, secret: str) -> BaseException:
    """``exc``, made safe to chain as ``__cause__`` of an error that may be logged.

    Masks ``Authorization`` on the requests httpx exceptions hold; if ``secret`` is
    still in the ``str``/``repr`` of anything in the chain, returns a
    :class:`RedactedCause` with the masked message instead of ``exc``.
    """
    for item in _chain(exc):
        if isinstance(item, httpx.RequestError):
            try:
                request = item.request
            except RuntimeError:  # httpx raises this when no request is attached
                continue
            if "authorization" in request.headers:
                request.headers["authorization"] = f"Token {_MASK}"
    if any(secret in str(item) or secret in repr(item) for item in _chain(exc)):
        text = f"{type(exc).__name__}: {exc}".replace(secret, _MASK)
        return RedactedCause(text)
    return exc


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _describe(body: Any) -> str:
    """Deepgram's ``err_code: err_msg`` from an error body, else a short note."""
    if isinstance(body, Mapping):
        code, message = body.get("err_code"), body.get("err_msg")
        if code or message:
            return f"{code}: {message}"
    return "no Deepgram error body"


def from_api_error(
    status: int | None, body: Any, headers: Mapping[str, str] | None, secret: str
) -> Failure:
    """Classify an SDK ``ApiError`` by its HTTP status."""
    detail = _describe(body).replace(secret, _MASK)
    if status is not None and 200 <= status < 300:
        return Failure(
            TranscriptionError(f"Deepgram answered HTTP {status} with a body that is not JSON"),
            retryable=False,
        )
    if status in (401, 403):
        return Failure(
            TranscriberAuthError(f"Deepgram rejected the API key (HTTP {status}, {detail})"),
            retryable=False,
        )
    retry_after = parse_retry_after(headers)
    if status == 429:
        return Failure(
            RateLimitedError(
                f"Deepgram kept rate-limiting the request (HTTP 429, {detail})",
                retry_after=retry_after,
            ),
            retryable=True,
            retry_after=retry_after,
        )
    if status is not None and (status >= 500 or status == 408):
        return Failure(
            TranscriberUnavailableError(f"Deepgram kept failing (HTTP {status}, {detail})"),
            retryable=True,
            retry_after=retry_after,
        )
    return Failure(
        TranscriptionError(f"Deepgram refused the request (HTTP {status}, {detail})"),
        retryable=False,
    )


def from_transport_error(exc: httpx.TransportError, timeout: float) -> Failure:
    """Classify an httpx failure.

    Only failures where the upload cannot have been processed are retried (no
    connection, or a kept-alive connection the server had already closed). A read
    timeout is not: Deepgram may still finish - and bill - the request.
    """
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure(
            TranscriberUnavailableError(f"could not connect to Deepgram within {timeout} s"),
            retryable=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return Failure(
            TranscriberUnavailableError(
                f"Deepgram did not answer within the {timeout} s timeout ({name})"
            ),
            retryable=False,
        )
    if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError):
        return Failure(
            TranscriberUnavailableError(f"could not reach Deepgram ({name})"), retryable=True
        )
    return Failure(TranscriberUnavailableError(f"Deepgram transport error ({name})"), False)
