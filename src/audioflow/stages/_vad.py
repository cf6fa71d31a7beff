"""The engine behind :class:`~audioflow.stages.DetectSpeech`: frames the chunk stream for
a :class:`~audioflow.vad.VadBackend`, runs its probabilities through the
:class:`~audioflow.vad.SegmentBuilder` and cuts each finished span's audio out of the
chunks it still holds. Synchronous; the stage runs it in a worker thread.

Memory stays bounded: it keeps only the audio a segment may still need (the open
utterance, at most ``max_segment`` long, plus padding), never the whole stream.

Speech is detected in, and cut from, the audio on a 16-bit grid (:func:`to_16_bit`): the
samples Whisper's own loaders give the model (openai-whisper reads ``s16le`` from
ffmpeg, faster-whisper ``s16`` from PyAV). Float input that is not on that grid (MP3,
AAC, Opus) otherwise differs from theirs by up to half a step, enough to move a
segment's edge by a frame or a knife-edge word of the transcript.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from ..records import AudioChunk, SpeechSegment
from ..vad import SegmentBuilder, SegmentRules, Span, VadBackend

__all__ = ["SAMPLE_RATE", "SpeechDetector", "to_16_bit"]

SAMPLE_RATE = 16_000


def to_16_bit(
    samples: npt.NDArray[np.float32], out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """``samples`` rounded to the nearest of the 65,536 levels of signed 16-bit audio
    and clipped, as FFmpeg converts float to ``s16`` (``lrintf(x * 32768)``, halves to
    even), then scaled back; in ``out`` if given, else a new array.

    Three passes instead of four: in float32, a number in [256, 512) is a multiple of
    2^-15, so adding 384 rounds any sample in [-128, 128] to a level (to nearest, halves
    to even) and subtracting it again is exact.
    """
    out = np.add(samples, _TO_GRID, out=out, dtype=np.float32)
    out -= _TO_GRID
    np.clip(out, -1.0, _TOP, out=out)
    return out


_TO_GRID = np.float32(384.0)
_TOP = np.float32(32767 / 32768)


class SpeechDetector:
    """The synchronous core of :class:`DetectSpeech` (frames, backend, segments, audio)."""

    def __init__(self, backend: VadBackend, rules: SegmentRules) -> None:
        backend.reset()
        self.backend = backend
        self.hop = backend.frame_samples
        # Spans in samples: the padding exact to the sample, as Silero's own code pads
        # (faster-whisper's segments, not 16 ms longer at each end).
        self.builder = SegmentBuilder(rules, self.hop / SAMPLE_RATE, frame_samples=self.hop)
        self._carry = np.zeros(0, dtype=np.float32)
        self._origin: float | None = None
        self._audio: deque[tuple[int, npt.NDArray[np.float32]]] = deque()
        self._total = 0  # samples received
        self.segments = 0

    @property
    def buffered_seconds(self) -> float:
        """Seconds of audio held for segments that are not final yet."""
        return sum(len(arr) for _, arr in self._audio) / SAMPLE_RATE

    def push(self, chunk: AudioChunk) -> list[SpeechSegment]:
        """Take the next chunk; return the segments that became final."""
        if chunk.sample_rate != SAMPLE_RATE:
            raise ValueError(f"DetectSpeech needs {SAMPLE_RATE} Hz audio, got {chunk.sample_rate}")
        if self._origin is None:
            self._origin = chunk.start
        # One copy per chunk: the last partial frame carried over, then the chunk put on
        # the 16-bit grid (re-framing across chunk edges without another concatenation).
        carried = len(self._carry)
        stream = np.empty(carried + len(chunk.samples), dtype=np.float32)
        stream[:carried] = self._carry
        samples = to_16_bit(np.asarray(chunk.samples, dtype=np.float32), out=stream[carried:])
        self._audio.append((self._total, samples))
        self._total += len(samples)
        whole = len(stream) // self.hop * self.hop
        self._carry = stream[whole:].copy()
        spans = self._score(stream[:whole].reshape(-1, self.hop))
        return self._cut(spans)

    def finish(self) -> list[SpeechSegment]:
        """End of stream: score the last partial frame, return the remaining segments."""
        spans: list[Span] = []
        if len(self._carry):
            last = np.zeros((1, self.hop), dtype=np.float32)
            last[0, : len(self._carry)] = self._carry
            spans = self._score(last)
        return self._cut(spans + self.builder.finish())

    def _score(self, frames: npt.NDArray[np.float32]) -> list[Span]:
        if len(frames) == 0:
            return []
        probs = self.backend.probabilities(frames)
        energy = np.einsum("ij,ij->i", frames, frames)  # split points only need an order
        return self.builder.feed(probs, energy)

    def _cut(self, spans: list[Span]) -> list[SpeechSegment]:
        origin = self._origin or 0.0
        out = []
        for first, last, speech_first, speech_last in spans:
            a, b = first, min(last, self._total)
            if b <= a:
                continue
            pieces = [
                arr[max(0, a - at) : b - at]
                for at, arr in self._audio
                if at < b and at + len(arr) > a
            ]
            out.append(
                SpeechSegment(
                    start=origin + a / SAMPLE_RATE,
                    end=origin + b / SAMPLE_RATE,
                    # A view when the segment lies in one chunk: the packer copies it
                    # into a window anyway (a copy here was a third of this stage's time).
                    samples=np.concatenate(pieces) if len(pieces) > 1 else pieces[0],
                    sample_rate=SAMPLE_RATE,
                    speech_start=origin + speech_first / SAMPLE_RATE,
                    speech_end=origin + min(speech_last, b) / SAMPLE_RATE,
                )
            )
        self.segments += len(out)
        # Drop audio no future segment can reach.
        keep_from = self.builder.pending_from
        while self._audio and self._audio[0][0] + len(self._audio[0][1]) <= keep_from:
            self._audio.popleft()
        return out
