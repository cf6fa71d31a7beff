"""The ``Transcriber`` protocol: windows of 16 kHz mono audio in, timed words out.

The ``Transcribe`` stage packs consecutive speech segments into :class:`AudioWindow` s of
at most ``max_window`` seconds and hands a transcriber up to ``max_batch`` of them per
call. A transcriber reports times **relative to the start of each window** (0.0 is the
window's first sample); the stage maps them back to the original media timeline through
its timeline map, so transcribers never see gaps or offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from ..audio import AudioWindow
from ..records import WindowTranscript

__all__ = [
    "DEFAULT_PACK_GAP",
    "DEFAULT_VAD",
    "AudioWindow",
    "Transcriber",
    "WindowCallback",
    "WindowTranscript",
    "default_vad",
    "pack_gap",
]

#: Called with each window's result as soon as the transcriber has it.
WindowCallback = Callable[[WindowTranscript], None]


#: Seconds of silence packed between speech segments for a transcriber that declares
#: no ``pack_gap``.
DEFAULT_PACK_GAP = 0.3


def pack_gap(transcriber: object) -> float:
    """The transcriber's optional ``pack_gap``, else :data:`DEFAULT_PACK_GAP`: the one
    place that default lives (the ``Transcribe`` stage packs with it, ``Pipeline``
    keys checkpoints by it)."""
    gap = getattr(transcriber, "pack_gap", None)
    return DEFAULT_PACK_GAP if gap is None else float(gap)


#: The speech detection backend for a transcriber that declares no ``vad``.
DEFAULT_VAD = "energy"


def default_vad(transcriber: object) -> str:
    """The transcriber's optional ``vad`` (the speech detection backend ``Pipeline``
    uses for it unless told otherwise), else :data:`DEFAULT_VAD`."""
    vad = getattr(transcriber, "vad", None)
    return vad if isinstance(vad, str) and vad else DEFAULT_VAD


@runtime_checkable
class Transcriber(Protocol):
    """Turns audio windows into timed words.

    Attributes:
        name: short identifier, e.g. ``"whisper"`` or ``"deepgram"``.
        max_window: longest window in seconds the backend handles well (Whisper: 30).
        max_batch: most windows one ``transcribe`` call accepts (1: no batching).

    Optional: ``pack_gap`` (float), the seconds of silence the ``Transcribe`` stage
    puts between packed speech segments for this transcriber (without one,
    :data:`DEFAULT_PACK_GAP`, read through :func:`pack_gap`); ``async load()``, which
    the stage awaits as it starts, beside decoding and speech detection, so that a
    model is loaded by the time the first window is ready (an error it raises is left
    to the first ``transcribe`` call); ``vad`` (str), the speech detection backend
    ``Pipeline`` uses for it by default (:func:`default_vad`); ``speech_rules``
    (:class:`~audioflow.vad.SegmentRules`), how ``Pipeline`` finds the speech it
    sends to this transcriber; ``fingerprint`` (str), what else decides its words
    (model, decoding settings), folded into the checkpoint key so that windows
    transcribed one way are not reused by a run that asks another.
    """

    name: str
    max_window: float
    max_batch: int

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        """Transcribe ``windows`` (at most ``max_batch``); one result per window, in order.

        ``on_window``, when given, is called (synchronously, from the event loop) with
        each window's result as soon as that window is done, and before the call
        returns. A backend that answers windows one by one (a service billing each
        request) calls it as each answer arrives, so that when another window of the
        same call fails, or the call is cancelled, the windows already answered (and
        paid for) are not lost. A backend that finishes every window at once calls it
        for each just before returning.

        Raises:
            TranscriptionError: or a subclass (``TranscriberAuthError``,
                ``RateLimitedError``, ``TranscriberUnavailableError``).
        """
        ...

    async def aclose(self) -> None:
        """Release clients, models or threads the transcriber holds."""
        ...
