"""VAD post-processing: per-frame speech probabilities → padded speech segments.

:class:`SegmentBuilder` is streaming (feed probabilities chunk by chunk; it returns the
segments that can no longer change) and :func:`postprocess` is the same thing over a
whole array. Feeding in pieces gives exactly the segments of one call.

Rules, in frames of the backend's hop:

* speech starts at a frame with probability ≥ ``threshold``; it ends where a pause
  begins that lasts longer than ``min_silence``. A pause begins at a frame below
  ``neg_threshold`` and only a frame ≥ ``threshold`` ends it (hysteresis: frames in
  between neither start speech nor interrupt a pause). These are the rules of Silero
  VAD's own ``get_speech_timestamps`` (and faster-whisper's copy);
* speech shorter than ``min_speech`` is dropped;
* speech longer than ``max_segment - 2 * padding`` is split at its quietest frame
  (lowest energy) in the second half of the allowed length, so every piece, padded,
  fits a transcriber window; pieces of a split are not padded where they meet;
* ``padding`` is added at both real ends; where the padding of two neighbours would
  overlap they meet in the middle of the gap between them. In frames it is rounded up
  to whole frames; a builder given ``frame_samples`` works to the sample instead, as
  Silero's own code does (0.4 s is 6,400 samples, 12.5 of its 512-sample frames).
  Given the same probabilities, such a builder's segments are faster-whisper's to the
  sample, except where speech runs longer than ``max_segment`` (faster-whisper cuts
  it at its last pause over 98 ms, or where it reaches the limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["SegmentBuilder", "SegmentRules", "Span", "postprocess"]


@dataclass(frozen=True, slots=True)
class SegmentRules:
    """Post-processing settings, in seconds (see the module docs).

    ``max_segment=None`` never splits (the stage then buffers a whole utterance).
    """

    threshold: float = 0.5
    neg_threshold: float | None = None  # default: threshold - 0.15
    min_speech: float = 0.25
    min_silence: float = 0.5
    padding: float = 0.2
    max_segment: float | None = 30.0

    def __post_init__(self) -> None:
        if min(self.min_speech, self.min_silence, self.padding) < 0:
            raise ValueError("durations must be >= 0")
        if self.max_segment is not None and self.max_segment < 2 * (
            self.padding + self.min_speech
        ):
            raise ValueError("max_segment must be at least 2 * (padding + min_speech)")

    @property
    def low(self) -> float:
        """The threshold below which speech stops."""
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(0.0, self.threshold - 0.15)


class Span(NamedTuple):
    """A finished segment: ``start``/``end`` padded (half-open), and the detected speech
    inside the padding (``speech_start``/``speech_end``); in frames, or in samples from
    a builder given ``frame_samples``."""

    start: int
    end: int
    speech_start: int
    speech_end: int


class SegmentBuilder:
    """Streaming post-processing over frames of ``hop`` seconds.

    :meth:`feed` takes the next probabilities (and frame energies, used to pick split
    points) and returns finished :class:`Span` s; :meth:`finish` returns the rest.
    Spans are half-open in frames (multiply by ``hop`` for seconds), or, given
    ``frame_samples`` (the samples in a frame), in samples with the padding exact to
    the sample.
    """

    def __init__(
        self, rules: SegmentRules, hop: float, *, frame_samples: int | None = None
    ) -> None:
        self.rules = rules
        self.hop = hop
        self._min_speech = round(rules.min_speech / hop)
        self._min_silence = max(1, round(rules.min_silence / hop))
        # Positions (spans, padding) are in units of 1/_unit frame.
        self._unit = frame_samples or 1
        if frame_samples:
            self._pad = round(rules.padding * frame_samples / hop)
        else:
            # Whole frames, rounded up: never less context than asked for (0.4 s at
            # Silero's 32 ms is 13 frames, 0.416 s).
            self._pad = math.ceil(rules.padding / hop - 1e-9)
        self._max_raw = (
            None
            if rules.max_segment is None
            else max(2, int((rules.max_segment - 2 * rules.padding) / hop + 1e-9))
        )
        self.frames = 0  # frames seen so far
        self._start: int | None = None  # first frame of the open speech run
        self._start_split = False  # the open run began at a split point
        self._silence: int | None = None  # first frame of the current low run
        self._energy: list[float] = []  # energies of the open run (split candidates)
        # A finished raw span whose end padding waits for the next start:
        # (start, end in frames, padded_start in units, end_is_split)
        self._held: tuple[int, int, int, bool] | None = None
        self._open_padded_start = 0

    @property
    def pending_from(self) -> int:
        """The first position (frame, or sample) a future span can still cover (audio
        before it is done)."""
        candidates = [self.frames * self._unit - self._pad]
        if self._held is not None:
            candidates.append(self._held[2])
        if self._start is not None:
            candidates.append(self._open_padded_start)
        return max(0, min(candidates))

    def feed(
        self,
        probs: npt.NDArray[np.floating] | list[float],
        energy: npt.NDArray[np.floating] | list[float] | None = None,
    ) -> list[Span]:
        """Consume the next frames; return spans that are final."""
        out: list[Span] = []
        p = np.asarray(probs, dtype=np.float64)
        e = np.zeros(len(p)) if energy is None else np.asarray(energy, dtype=np.float64)
        high, low = self.rules.threshold, self.rules.low
        for prob, en in zip(p.tolist(), e.tolist(), strict=True):
            i = self.frames
            if self._start is None:
                if prob >= high:
                    self._begin(i, split=False, out=out)
                    self._energy.append(en)
            else:
                self._energy.append(en)
                if prob < low:
                    if self._silence is None:
                        self._silence = i
                    if i - self._silence >= self._min_silence:
                        self._close(self._silence, split=False, out=out)
                elif prob >= high:
                    self._silence = None
                if self._start is not None and self._max_raw is not None:
                    if i + 1 - self._start >= self._max_raw:
                        self._split(out)
            self.frames = i + 1
            if (
                self._held is not None
                and (self.frames - self._held[1]) * self._unit >= 2 * self._pad
            ):
                out.append(self._emit_held(None))
        return out

    def finish(self) -> list[Span]:
        """End of stream: close the open run and return every remaining span."""
        out: list[Span] = []
        if self._start is not None:
            end = self._silence if self._silence is not None else self.frames
            self._close(end, split=False, out=out)
        if self._held is not None:
            out.append(self._emit_held(None))
        return out

    # ------------------------------------------------------------------ internals

    def _begin(self, i: int, *, split: bool, out: list[Span]) -> None:
        self._start, self._start_split, self._silence = i, split, None
        self._energy = []
        padded = i * self._unit if split else max(0, i * self._unit - self._pad)
        if self._held is not None:
            out.append(self._emit_held(i))
            padded = max(padded, out[-1][1])
        self._open_padded_start = padded

    def _close(self, end: int, *, split: bool, out: list[Span]) -> None:
        start = self._start
        assert start is not None
        self._start = None
        self._energy = []
        if end <= start:
            return
        if not split and not self._start_split and end - start < self._min_speech:
            return  # too short to be speech (pieces of a split are always kept)
        padded_start = self._open_padded_start
        if self._held is not None:  # cannot happen: _begin emitted it
            out.append(self._emit_held(start))
        self._held = (start, end, padded_start, split)

    def _emit_held(self, next_start: int | None) -> Span:
        assert self._held is not None
        frame_start, frame_end, padded_start, end_split = self._held
        self._held = None
        u = self._unit
        start, end = frame_start * u, frame_end * u
        if end_split:
            return Span(padded_start, end, start, end)
        padded_end = end + self._pad
        if next_start is None:
            padded_end = min(padded_end, self.frames * u)
        elif padded_end > next_start * u - self._pad:
            # Paddings would overlap: meet in the middle of the gap.
            padded_end = min(padded_end, (end + next_start * u + 1) // 2)
        return Span(padded_start, max(end, padded_end), start, end)

    def _split(self, out: list[Span]) -> None:
        start = self._start
        assert start is not None
        assert self._max_raw is not None
        # The quietest frame in the second half of the allowed length (the latest of
        # equals), so that neither piece is short.
        lo = max(1, self._max_raw // 2)
        window = np.asarray(self._energy[lo:], dtype=np.float64)
        k = start + lo + int(len(window) - 1 - np.argmin(window[::-1]))
        rest = self._energy[k - start :]
        silence = self._silence
        self._close(k, split=True, out=out)
        self._begin(k, split=True, out=out)
        self._energy = rest
        if silence is not None:
            # Still inside the same low run: it now counts from the split point.
            self._silence = max(silence, k)


def postprocess(
    probs: npt.NDArray[np.floating] | list[float],
    hop: float,
    rules: SegmentRules | None = None,
    energy: npt.NDArray[np.floating] | list[float] | None = None,
) -> list[tuple[float, float]]:
    """Speech segments ``(start, end)`` in seconds from per-frame probabilities."""
    builder = SegmentBuilder(rules or SegmentRules(), hop)
    spans = builder.feed(probs, energy) + builder.finish()
    return [(span.start * hop, span.end * hop) for span in spans]
