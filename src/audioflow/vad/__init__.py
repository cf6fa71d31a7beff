"""Voice activity detection: backends and the post-processing that makes segments.

``energy`` (numpy, default) is always available; ``webrtc`` and ``silero`` need the
``vad`` extra and are imported only when asked for (:func:`make_backend`).
"""

from __future__ import annotations

from .backend import EnergyVad, VadBackend
from .segments import SegmentBuilder, SegmentRules, Span, postprocess

__all__ = [
    "BACKENDS",
    "EnergyVad",
    "SegmentBuilder",
    "SegmentRules",
    "Span",
    "VadBackend",
    "make_backend",
    "postprocess",
]

#: Backend names :func:`make_backend` knows.
BACKENDS = ("energy", "webrtc", "silero")


def make_backend(name: str) -> VadBackend:
    """A fresh backend by name, importing its optional dependency only now.

    Raises:
        ValueError: unknown name.
        MissingDependencyError: the backend's package is not installed.
    """
    if name == "energy":
        return EnergyVad()
    if name == "webrtc":
        from .webrtc import WebRtcVad

        return WebRtcVad()
    if name == "silero":
        from .silero import SileroVad

        return SileroVad()
    raise ValueError(f"unknown VAD backend {name!r}; choose one of {', '.join(BACKENDS)}")
