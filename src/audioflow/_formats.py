"""The renderings audioflow makes: one list, read by the renderers, the job options,
the command line and the service.

A rendering's file extension is its name (``talk.srt``); its HTTP content type is in
:data:`CONTENT_TYPES`.
"""

from __future__ import annotations

__all__ = ["CONTENT_TYPES", "FORMATS"]

#: Every format :func:`audioflow.render.render` knows, in its default order.
FORMATS: tuple[str, ...] = ("srt", "vtt", "json", "txt", "md")

#: Each format's media type, as the service serves it.
CONTENT_TYPES: dict[str, str] = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}
