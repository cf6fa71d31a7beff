"""The HTTP service (``pip install 'audioflow[service]'``): uploads, status, live events,
renderings, cancel, delete, API keys with per-key limits, signed webhooks and a web page.

``create_app(store, ...)`` returns the ASGI app; ``audioflow serve`` runs it with uvicorn.
See ``docs/service.md``.
"""

from __future__ import annotations

from ..errors import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
    import sse_starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(exc.name or "fastapi", "service") from exc

from ._app import create_app
from ._auth import ApiKey, keys_from_env, parse_keys
from .webhooks import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "ApiKey",
    "create_app",
    "keys_from_env",
    "parse_keys",
    "sign",
    "verify_signature",
]
