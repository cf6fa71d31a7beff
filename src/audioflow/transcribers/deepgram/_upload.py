"""Encode a window of float32 samples in memory for upload: FLAC or Opus in Ogg.

Remote transcribers bill by the second of audio they receive and their upload time
grows with bytes, so windows go out compressed: FLAC is lossless (what the server
decodes is exactly what we packed, sample for sample), Opus in Ogg is about ten times
smaller for speech at a small accuracy cost. PyAV does the encoding; nothing touches
the disk. This is blocking work: call it through ``anyio.to_thread.run_sync``.
"""

from __future__ import annotations

import io
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

__all__ = ["UploadEncoding", "encode_upload"]

UploadEncoding = Literal["flac", "opus"]

# encoding -> (container format, codec, sample format fed to the encoder, MIME type)
_FORMATS: dict[str, tuple[str, str, str, str]] = {
    "flac": ("flac", "flac", "s16", "audio/flac"),
    "opus": ("ogg", "libopus", "flt", "audio/ogg"),
}


def encode_upload(
    samples: npt.NDArray[np.float32], sample_rate: int, encoding: UploadEncoding
) -> tuple[bytes, str]:
    """``samples`` (mono, [-1, 1]) as a complete in-memory file.

    Returns:
        The file's bytes and its MIME type (``audio/flac`` or ``audio/ogg``).

    Raises:
        ValueError: an unknown ``encoding``, or no samples.
    """
    if encoding not in _FORMATS:
        raise ValueError(f"encoding must be 'flac' or 'opus', not {encoding!r}")
    if len(samples) == 0:
        raise ValueError("cannot encode an empty window")
    container_format, codec, sample_format, mime = _FORMATS[encoding]
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if sample_format == "s16":
        pcm: npt.NDArray[np.generic] = np.round(clipped * 32767.0).astype(np.int16)
    else:
        pcm = clipped
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        if not isinstance(stream, AudioStream):  # narrows the type; PyAV returns one
            raise TypeError(f"PyAV made a {type(stream).__name__} for codec {codec!r}")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm).reshape(1, -1), format=sample_format, layout="mono"
        )
        frame.sample_rate = sample_rate
        # PyAV cuts the one big frame into the codec's frame size on its own.
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue(), mime
