"""Transcribers: the protocol and the built-in backends (imported lazily by name)."""

from __future__ import annotations

from .base import AudioWindow, Transcriber, WindowCallback, WindowTranscript

__all__ = ["AudioWindow", "Transcriber", "WindowCallback", "WindowTranscript"]
