"""JSON rendering: the :class:`~audioflow.Transcript` record itself."""

from __future__ import annotations

import msgspec

from ..records import Transcript

__all__ = ["parse_json", "render_json"]

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Transcript)


def render_json(transcript: Transcript) -> str:
    """The transcript as indented JSON; :func:`parse_json` reads it back equal.

    Args:
        transcript: The transcript.

    Returns:
        The JSON text (UTF-8 safe, two-space indent, trailing newline).
    """
    return msgspec.json.format(_ENCODER.encode(transcript), indent=2).decode() + "\n"


def parse_json(data: str | bytes) -> Transcript:
    """Read a transcript written by :func:`render_json`.

    Raises:
        ValueError: The text is not a transcript (``msgspec`` errors are ValueErrors).
    """
    return _DECODER.decode(data)
