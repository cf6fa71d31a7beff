"""Transcription throughput and accuracy: audioflow's chain vs faster-whisper's own, one run.

    python bench/transcribe.py [--file tests/data/speech/paragraph.opus] [--repeat 5]
                               [--cpu-threads 2] [--batch 8] [--cache-dir DIR] [--pad-sweep]

On the same file, with the same loaded model (bundled Whisper-base, int8 on CPU) and the
same decoding settings (beam 5, word timestamps, language detected, ``cpu_threads`` and
``num_workers`` as given), it times

(a) audioflow's stages: ``Decode`` -> ``DetectSpeech("silero")`` -> ``Transcribe`` with
    ``WhisperTranscriber`` (speech packed into <= 30 s windows with a timeline map;
    windows queued while a call runs go out together as one batch);
(b) faster-whisper ``BatchedInferencePipeline.transcribe(path)`` (its PyAV decode,
    Silero VAD, batch of ``--batch``);
(c) faster-whisper ``WhisperModel.transcribe(path, vad_filter=True)`` (sequential);
(d) a diagnostic, not a pipeline we ship: ``WhisperTranscriber`` on the windows that
    faster-whisper's Silero VAD + ``collect_chunks`` make (what (b) transcribes), which
    separates the transcriber's share of a difference from the speech detector's;

and prints x realtime (audio seconds / wall seconds, best of ``--repeat`` interleaved
rounds after one untimed warm-up run each), CPU seconds, and WER against the ``.txt``
reference, each also against (b). It prints, it never asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

from audioflow import TranscriptSegment
from audioflow.stages import Decode, DetectSpeech, Transcribe, run_stages
from audioflow.transcribers import AudioWindow
from audioflow.transcribers._whisper_model import bundled_model_dir, default_cache_dir
from audioflow.transcribers.whisper import WhisperTranscriber

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from speech_helpers import RATE, decode_16k, wer  # noqa: E402

Samples = npt.NDArray[np.float32]
# One piece of a window: (offset in the window, start on the source timeline, length), s.
Piece = tuple[float, float, float]


# ----------------------------------------------------------- (a) audioflow's chain


def run_audioflow(path: Path, transcriber: WhisperTranscriber, padding: float = 0.2) -> str:
    """audioflow's own stages: Decode -> DetectSpeech (silero) -> Transcribe."""

    async def go() -> list[TranscriptSegment]:
        segments: list[TranscriptSegment] = await run_stages(
            [path],
            Decode(),
            DetectSpeech("silero", padding=padding),  # as Pipeline.default() does
            Transcribe(transcriber, concurrency=1),
        )
        return segments

    return " ".join(w.text for s in anyio.run(go) for w in s.words)


def run_transcriber_on_silero_windows(path: Path, transcriber: WhisperTranscriber) -> str:
    samples = decode_16k(path)
    # The VAD options BatchedInferencePipeline.transcribe uses by default.
    speech = get_speech_timestamps(
        samples, VadOptions(max_speech_duration_s=30, min_silence_duration_ms=160)
    )
    chunks, _ = collect_chunks(samples, speech, max_duration=30)
    windows = [AudioWindow(samples=c, index=i) for i, c in enumerate(chunks) if len(c)]

    async def go() -> list[str]:
        texts: list[str] = []
        for i in range(0, len(windows), transcriber.max_batch):
            for result in await transcriber.transcribe(windows[i : i + transcriber.max_batch]):
                texts += [s.text for s in result.segments]
        return texts

    return " ".join(anyio.run(go))


# ------------------------------------------------------------- (b), (c) baselines


def run_batched(path: Path, model: WhisperModel, batch: int, pad_ms: int | None = None) -> str:
    segments, _ = BatchedInferencePipeline(model).transcribe(
        str(path),
        batch_size=batch,
        beam_size=5,
        word_timestamps=True,
        # None: the pipeline's defaults (min silence 160 ms, pad 400 ms); a dict would
        # otherwise fall back to VadOptions' 2 s minimum silence.
        vad_parameters=(
            None if pad_ms is None else {"speech_pad_ms": pad_ms, "min_silence_duration_ms": 160}
        ),
    )
    return " ".join(s.text.strip() for s in segments)


def run_sequential(path: Path, model: WhisperModel) -> str:
    segments, _ = model.transcribe(str(path), vad_filter=True, beam_size=5, word_timestamps=True)
    return " ".join(s.text.strip() for s in segments)


def timed_rounds(
    runs: dict[str, Callable[[], str]], repeat: int
) -> dict[str, tuple[float, float, str]]:
    """Best wall time, best CPU time (all threads) and last text of each run.

    Rounds interleave the runs, so load from other processes on a shared machine hits
    all of them alike; the best of ``repeat`` is the least disturbed. CPU seconds are
    less sensitive to that load than wall seconds.
    """
    texts = {name: fn() for name, fn in runs.items()}  # warm-up: allocations, VAD load
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            texts[name] = fn()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    return {name: (min(wall[name]), min(cpu[name]), texts[name]) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=ROOT / "tests/data/speech/paragraph.opus")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument(
        "--pad-sweep",
        action="store_true",
        help="also print (a) and (b) WER over several speech paddings (untimed): on one "
        "short file a word or two decides WER, and padding moves both by that much",
    )
    args = parser.parse_args()

    reference = args.file.with_suffix(".txt").read_text()
    duration = len(decode_16k(args.file)) / RATE
    model = WhisperModel(
        str(bundled_model_dir(args.cache_dir)),
        device="cpu",
        compute_type="int8",
        cpu_threads=args.cpu_threads,
        num_workers=1,
    )
    transcriber = WhisperTranscriber(model, max_batch=args.batch, num_workers=1)
    runs = {
        "(a) audioflow chain": lambda: run_audioflow(args.file, transcriber),
        "(b) BatchedInferencePipeline": lambda: run_batched(args.file, model, args.batch),
        "(c) WhisperModel vad_filter": lambda: run_sequential(args.file, model),
        "(d) = (a) on (b)'s windows": lambda: run_transcriber_on_silero_windows(
            args.file, transcriber
        ),
    }
    print(
        f"file {args.file.name}: {duration:.1f} s; Whisper-base int8 CPU, "
        f"cpu_threads={args.cpu_threads} num_workers=1 batch={args.batch} beam=5, "
        f"word timestamps, language detected; best of {args.repeat} interleaved rounds"
    )
    results = timed_rounds(runs, args.repeat)
    base_time, base_cpu, base_text = results["(b) BatchedInferencePipeline"]
    base_wer = wer(reference, base_text)
    print(
        f"{'':30} {'wall s':>7} {'x realtime':>11} {'speed/(b)':>10} {'CPU s':>7} "
        f"{'CPU/(b)':>8} {'WER':>7} {'WER-(b)':>8}"
    )
    for name, (seconds, cpu_seconds, text) in results.items():
        score = wer(reference, text)
        print(
            f"{name:30} {seconds:7.2f} {duration / seconds:11.2f} {base_time / seconds:10.2f} "
            f"{cpu_seconds:7.2f} {cpu_seconds / base_cpu:8.2f} {score:7.3f} "
            f"{score - base_wer:+8.3f}"
        )
    for name, (_, _, text) in results.items():
        print(f"{name}: {text}")
    if args.pad_sweep:
        paddings = (0.1, 0.2, 0.3, 0.4, 0.5)
        a_wer = [wer(reference, run_audioflow(args.file, transcriber, p)) for p in paddings]
        b_wer = [
            wer(reference, run_batched(args.file, model, args.batch, int(p * 1000)))
            for p in paddings
        ]
        print("padding s      " + " ".join(f"{p:6.1f}" for p in paddings) + "    mean")
        for name, scores in (("(a) WER", a_wer), ("(b) WER", b_wer)):
            cells = " ".join(f"{x:6.3f}" for x in scores)
            print(f"{name:14} {cells}  {sum(scores) / len(scores):6.3f}")


if __name__ == "__main__":
    main()
