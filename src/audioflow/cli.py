"""The ``audioflow`` command: the edge where flags and environment become arguments.

    audioflow transcribe FILE... [--out DIR] [--format srt,vtt,json,txt,md]
                                 [--transcriber whisper|deepgram] [--store URL]
                                 [--concurrency N] [--language CODE]
    audioflow status JOB_ID --store URL
    audioflow --version

Exit status: 0 when every file was transcribed, 1 when some failed (one line each on
stderr, no traceback), 2 for usage errors. The Deepgram key comes from
``DEEPGRAM_API_KEY``. Output files are written only inside ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio

from ._version import __version__
from .errors import AudioflowError
from .pipeline import Pipeline
from .records import JobOptions, JobResult, Progress
from .render import FORMATS
from .store.memory import MemoryJobStore
from .store.protocol import JobStore
from .transcribers.base import Transcriber

__all__ = ["main"]

_EXTENSIONS = {"srt": "srt", "vtt": "vtt", "json": "json", "txt": "txt", "md": "md"}


class UsageError(Exception):
    """Bad flags or environment: exit status 2."""


def _formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {','.join(FORMATS)}"
        )
    return formats


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audioflow", description="Transcribe audio and video files into captions."
    )
    parser.add_argument("--version", action="version", version=f"audioflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe files and write their renderings")
    t.add_argument("files", nargs="+", type=Path, metavar="FILE")
    t.add_argument("--out", type=Path, default=Path("."), help="output directory (default: .)")
    t.add_argument(
        "--format",
        type=_formats,
        default=FORMATS,
        help=f"comma-separated formats (default: {','.join(FORMATS)})",
    )
    t.add_argument("--transcriber", choices=("whisper", "deepgram"), default="whisper")
    t.add_argument("--store", default="memory", help="memory (default) or a redis:// URL")
    t.add_argument("--prefix", default="audioflow:", help="Redis key prefix")
    t.add_argument("--concurrency", type=int, default=2, help="files at once (default: 2)")
    t.add_argument("--language", default=None, help="language code (default: detect)")
    t.add_argument(
        "--vad",
        choices=("energy", "webrtc", "silero"),
        default=None,
        help="speech detection (default: silero with whisper, energy with deepgram)",
    )
    t.add_argument("--model", default=None, help="Whisper model directory or name")
    t.add_argument(
        "--model-cache",
        type=Path,
        default=None,
        help="where the bundled Whisper model is assembled (default: ~/.cache/audioflow)",
    )
    t.add_argument("--deepgram-url", default=None, help="Deepgram base URL (self-hosted)")

    s = sub.add_parser("status", help="show a job's status")
    s.add_argument("job_id")
    s.add_argument("--store", required=True, help="a redis:// URL")
    s.add_argument("--prefix", default="audioflow:", help="Redis key prefix")
    return parser


def _store(url: str, prefix: str) -> JobStore:
    if url == "memory":
        return MemoryJobStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .store.redis import RedisJobStore

        return RedisJobStore(url, prefix=prefix)
    raise UsageError(f"--store must be 'memory' or a redis:// URL, not {url!r}")


def _transcriber(args: argparse.Namespace) -> Transcriber:
    if args.transcriber == "deepgram":
        key = os.environ.get("DEEPGRAM_API_KEY")
        if not key:
            raise UsageError("--transcriber deepgram needs DEEPGRAM_API_KEY in the environment")
        from .transcribers.deepgram import DeepgramTranscriber

        kwargs: dict[str, Any] = {"base_url": args.deepgram_url} if args.deepgram_url else {}
        transcriber: Transcriber = DeepgramTranscriber(key, **kwargs)
        return transcriber
    from .transcribers.whisper import WhisperTranscriber

    whisper: Transcriber = WhisperTranscriber(args.model, cache_dir=args.model_cache)
    return whisper


def output_path(out: Path, source: Path, fmt: str) -> Path:
    """``out/<source stem>.<ext>``, refusing anything that would land outside ``out``."""
    root = out.resolve()
    target = (root / f"{source.stem}.{_EXTENSIONS[fmt]}").resolve()
    if target.parent != root:
        raise AudioflowError(f"refusing to write outside {out}: {target}")
    return target


class _Progress:
    """One status line per file: redrawn in place on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last: dict[str, str] = {}

    def update(self, name: str, progress: Progress) -> None:
        stage = progress.stage or "start"
        if self.tty:
            filled = int(progress.fraction * 20)
            bar = "#" * filled + "-" * (20 - filled)
            self.stream.write(f"\r{name}: [{bar}] {progress.fraction:4.0%} {stage:<10}")
            self.stream.flush()
        elif self.last.get(name) != stage:  # plain output: one line per stage change
            self.last[name] = stage
            self.stream.write(f"{name}: {stage} {progress.fraction:.0%}\n")
            self.stream.flush()

    def done(self, name: str, message: str) -> None:
        self.stream.write(("\r" if self.tty else "") + f"{name}: {message}\n")
        self.stream.flush()


async def _transcribe(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    store = _store(args.store, args.prefix)
    transcriber = _transcriber(args)
    vad = args.vad or ("silero" if args.transcriber == "whisper" else "energy")
    pipeline = Pipeline(transcriber, store=store, formats=args.format, vad=vad)
    args.out.mkdir(parents=True, exist_ok=True)
    display = _Progress(sys.stderr)
    failures = 0
    slots = anyio.Semaphore(args.concurrency)

    async def one(path: Path) -> None:
        nonlocal failures
        async with slots:
            try:
                result: JobResult = await pipeline.run(
                    path,
                    options=JobOptions(formats=args.format, language=args.language),
                    on_progress=lambda p: display.update(path.name, p),
                )
                for fmt, text in result.artifacts.items():
                    output_path(args.out, path, fmt).write_text(text, encoding="utf-8")
                display.done(path.name, f"done -> {args.out}/{path.stem}.*")
            except AudioflowError as exc:
                failures += 1
                message = " ".join(str(exc).split())
                display.done(path.name, f"failed: {type(exc).__name__}: {message}")

    try:
        async with anyio.create_task_group() as tg:
            for path in args.files:
                tg.start_soon(one, path)
    finally:
        await transcriber.aclose()
        await store.aclose()
    return 1 if failures else 0


async def _status(args: argparse.Namespace) -> int:
    store = _store(args.store, args.prefix)
    try:
        job = await store.get(args.job_id)
    finally:
        await store.aclose()
    if job is None:
        print(f"audioflow: no job {args.job_id!r} in {args.store}", file=sys.stderr)
        return 1
    progress = job.progress
    print(f"job:      {job.id}")
    print(f"status:   {job.status.value}")
    print(f"source:   {job.source}")
    print(f"progress: {progress.fraction:.0%} {progress.stage or ''} {progress.message}".rstrip())
    if job.error is not None:
        print(f"error:    {job.error.type}: {job.error.message}")
    if job.artifacts:
        print(f"formats:  {', '.join(sorted(job.artifacts))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        command = _transcribe if args.command == "transcribe" else _status
        return anyio.run(command, args)
    except UsageError as exc:
        print(f"audioflow: error: {exc}", file=sys.stderr)
        return 2
    except AudioflowError as exc:
        print(f"audioflow: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
