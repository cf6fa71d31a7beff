"""Signed webhooks: what the service sends when a job ends, and how a receiver checks it.

Every delivery is a ``POST`` of the JSON outcome with the header::

    Audioflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">

keyed with the webhook secret of the API key that made the job. A receiver verifies it
with :func:`verify_signature` (the timestamp is signed too, so an old delivery cannot be
replayed later than ``tolerance`` seconds)::

    from audioflow.service.webhooks import verify_signature

    body = await request.body()
    if not verify_signature(SECRET, body, request.headers["Audioflow-Signature"]):
        return Response(status_code=400)
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "sign", "verify_signature"]

SIGNATURE_HEADER = "Audioflow-Signature"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Audioflow-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    secret: str, body: bytes, header: str, *, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret``, made within ``tolerance`` s.

    Compares in constant time; a malformed header is ``False``, never an exception.
    """
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, value)
    try:
        t = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)
