"""The ``audioflow`` command: the edge where flags and environment become arguments.

    audioflow transcribe FILE... [--out DIR] [--format srt,vtt,json,txt,md]
                                 [--transcriber whisper|deepgram] [--store URL]
                                 [--concurrency N] [--language CODE]
    audioflow worker --store URL --broker URL [--processes N] [--threads M]
    audioflow submit FILE... --store URL --broker URL       (prints one job id a line)
    audioflow watch JOB_ID --store URL [--out DIR]
    audioflow cancel JOB_ID --store URL
    audioflow status [JOB_ID] --store URL
    audioflow serve --store URL [--broker URL] [--host H] [--port P]
    audioflow --version

``--store`` and ``--broker`` default to ``AUDIOFLOW_STORE`` and ``AUDIOFLOW_BROKER``.
Exit status: 0 when every file was transcribed (``watch``: the job completed), 1 when
some failed (one line each on stderr, no traceback), 2 for usage errors. The Deepgram
key comes from ``DEEPGRAM_API_KEY``. Output files are written only inside ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.to_thread
import msgspec

from ._config import WorkerConfig, make_transcriber, redact_url, store_from_url
from ._version import __version__
from .errors import AudioflowError, ConfigurationError
from .pipeline import Pipeline
from .records import Job, JobOptions, JobPage, JobResult, JobStatus, Progress
from .render import FORMATS, CaptionRules
from .store._watch import watching
from .store.protocol import JobStore
from .transcribers.base import Transcriber
from .vad import SegmentRules

__all__ = ["main"]


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


_RULES = CaptionRules()  # the defaults the help text shows


def _boolean(text: str) -> bool:
    """``True``/``False`` as WhisperX's flags take them (also yes/no, 1/0, on/off)."""
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, not {text!r}")


# Where Whisper's language codes differ from the ISO ones a name lookup gives.
_WHISPER_CODES = {"jv": "jw", "cmn": "zh"}


def resolve_language(text: str | None, transcriber: str) -> str | None:
    """``--language`` as a code the transcriber takes: a code, or a language's name in
    English or in the language itself (``english``, ``Deutsch``). Whisper takes its own
    codes; Deepgram BCP-47 tags (``en-US``). Other transcribers get it as given.

    Raises:
        UsageError: neither a code nor a name the transcriber knows.
    """
    if text is None or transcriber not in ("whisper", "deepgram"):
        return text
    value = text.strip()
    if transcriber == "deepgram":
        tag = _language_tag(value)
        if tag is not None:
            return tag
        raise UsageError(
            f"--language {text!r}: not a language; give a BCP-47 tag (en, en-US) or a "
            "name (english)"
        )
    from faster_whisper import tokenizer

    codes: Sequence[str] = getattr(tokenizer, "_LANGUAGE_CODES", ())
    if value.lower() in codes:
        return value.lower()
    tag = _language_tag(value)  # a name, or a tag such as en-US: its language
    code = tag.split("-")[0] if tag else None
    code = _WHISPER_CODES.get(code, code) if code else None
    if code in codes:
        return code
    raise UsageError(
        f"--language {text!r}: not a language Whisper knows; give one of its codes "
        f"({', '.join(codes[:8])}, ...) or a name (english)"
    )


def _language_tag(value: str) -> str | None:
    """A BCP-47 tag for ``value`` (a tag, or a language's name), or ``None``."""
    try:
        import langcodes
    except ImportError:  # the cli extra brings it; without it, codes only
        return None
    if langcodes.tag_is_valid(value):
        return str(langcodes.standardize_tag(value))
    try:
        return str(langcodes.find(value).to_tag())
    except LookupError:
        return None


def _speech_rules(args: argparse.Namespace, transcriber: Transcriber) -> SegmentRules | None:
    """The transcriber's speech rules with the flags given over them (``None``: none)."""
    changes = {
        key: value
        for key, value in (
            ("threshold", args.vad_threshold),
            ("neg_threshold", args.vad_neg_threshold),
            ("min_silence", args.min_silence),
            ("padding", args.speech_pad),
        )
        if value is not None
    }
    if not changes:
        return None
    for key in ("threshold", "neg_threshold"):
        if key in changes and not 0.0 <= changes[key] <= 1.0:
            flag = "--vad-threshold" if key == "threshold" else "--vad-neg-threshold"
            raise UsageError(f"{flag} must be between 0 and 1")
    base = getattr(transcriber, "speech_rules", None)
    try:
        return dataclasses.replace(
            base if isinstance(base, SegmentRules) else SegmentRules(), **changes
        )
    except ValueError as exc:
        raise UsageError(f"--min-silence/--speech-pad: {exc}") from None


def _caption_rules(args: argparse.Namespace) -> CaptionRules:
    try:
        return CaptionRules(
            max_chars_per_line=args.max_line_width,
            max_lines=args.max_line_count,
            highlight_words=args.highlight_words,
        )
    except ValueError as exc:
        raise UsageError(f"--max-line-width/--max-line-count: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audioflow", description="Transcribe audio and video files into captions."
    )
    parser.add_argument("--version", action="version", version=f"audioflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe files and write their renderings")
    t.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="audio or video files (- for standard input); folders with --recursive",
    )
    t.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="a folder given as FILE stands for the media files in it and its subfolders",
    )
    t.add_argument("--out", type=Path, default=Path("."), help="output directory (default: .)")
    t.add_argument(
        "--format",
        type=_formats,
        default=FORMATS,
        help=f"comma-separated formats (default: {','.join(FORMATS)})",
    )
    t.add_argument(
        "--transcriber",
        default="whisper",
        help="whisper (offline, the bundled model; default), deepgram ($DEEPGRAM_API_KEY) "
        "or package.module:factory",
    )
    jobs = t.add_mutually_exclusive_group()
    jobs.add_argument(
        "--resume",
        action="store_true",
        help="continue each file's last unfinished job in --store (its kept windows are "
        "not transcribed again)",
    )
    jobs.add_argument("--job-id", default=None, help="the job's id, new or to resume (one FILE)")
    t.add_argument("--store", default="memory", help="memory (default) or a redis:// URL")
    t.add_argument("--prefix", default="audioflow:", help="Redis key prefix")
    t.add_argument("--concurrency", type=int, default=2, help="files at once (default: 2)")
    t.add_argument(
        "--language",
        default=None,
        help="a code (en) or a name (english, Deutsch); default: detect",
    )
    t.add_argument(
        "--vad",
        choices=("energy", "webrtc", "silero"),
        default=None,
        help="speech detection (default: silero with whisper, energy with deepgram)",
    )
    t.add_argument(
        "--model",
        default=None,
        help="Whisper: a model directory or name (default: the bundled base model); "
        "Deepgram: its model (default: nova-3)",
    )
    t.add_argument(
        "--model-cache",
        type=Path,
        default=None,
        help="where the bundled Whisper model is assembled (default: ~/.cache/audioflow)",
    )
    t.add_argument("--deepgram-url", default=None, help="Deepgram base URL (self-hosted)")
    model = t.add_argument_group("Whisper (faster-whisper's and WhisperX's names also work)")
    model.add_argument("--device", default=None, help="cpu (default) or cuda")
    model.add_argument(
        "--compute-type",
        "--compute_type",
        default=None,
        help="CTranslate2 compute type (default: int8)",
    )
    model.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="threads per model call (default: one per core, at most 4)",
    )
    model.add_argument(
        "--beam-size",
        "--beam_size",
        type=int,
        default=None,
        metavar="N",
        help="beam width (default: 5)",
    )
    model.add_argument(
        "--task",
        choices=("transcribe", "translate"),
        default=None,
        help="transcribe (default) or translate into English",
    )
    model.add_argument(
        "--initial-prompt",
        "--initial_prompt",
        default=None,
        metavar="TEXT",
        help="text every window is told came before it (names, spellings)",
    )
    model.add_argument("--hotwords", default=None, metavar="TEXT", help="words to prefer")
    model.add_argument(
        "--batch-size",
        "--batch_size",
        type=int,
        default=None,
        metavar="N",
        help="windows a model call decodes together (default: 3)",
    )
    t.add_argument(
        "--diarize",
        action="store_true",
        help="label each word's speaker (with --transcriber deepgram)",
    )
    speech = t.add_argument_group("speech detection (faster-whisper's vad_parameters)")
    speech.add_argument(
        "--vad-threshold",
        "--vad_onset",
        type=float,
        default=None,
        metavar="P",
        help="speech probability that starts speech (Silero default: 0.5)",
    )
    speech.add_argument(
        "--vad-neg-threshold",
        "--vad_offset",
        type=float,
        default=None,
        metavar="P",
        help="probability below which a pause starts (default: threshold - 0.15)",
    )
    speech.add_argument(
        "--min-silence",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a pause longer than this ends speech (Whisper default: 0.16)",
    )
    speech.add_argument(
        "--speech-pad",
        type=float,
        default=None,
        metavar="SECONDS",
        help="context kept around each stretch of speech (Whisper default: 0.4)",
    )
    t.add_argument(
        "--output-name",
        default="{stem}",
        metavar="TEMPLATE",
        help="each output's name before its extension; fields {stem}, {name}, {parent}, "
        "{index} (default: {stem}); two inputs may not get the same name",
    )
    captions = t.add_argument_group("captions (SRT and WebVTT; WhisperX's names also work)")
    captions.add_argument(
        "--max-line-width",
        "--max_line_width",
        type=int,
        default=_RULES.max_chars_per_line,
        metavar="N",
        help=f"characters a line (default: {_RULES.max_chars_per_line})",
    )
    captions.add_argument(
        "--max-line-count",
        "--max_line_count",
        type=int,
        default=_RULES.max_lines,
        metavar="N",
        help=f"lines a cue (default: {_RULES.max_lines})",
    )
    captions.add_argument(
        "--highlight-words",
        "--highlight_words",
        type=_boolean,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="a cue per word, the spoken word underlined (default: off)",
    )

    s = sub.add_parser("status", help="show a job's status, or list the jobs")
    s.add_argument("job_id", nargs="?", help="the job (default: list the most recent jobs)")
    s.add_argument("--status", choices=[x.value for x in JobStatus], help="list only these")
    s.add_argument("--limit", type=int, default=20, help="jobs a page (default: 20)")
    s.add_argument(
        "--oldest", action="store_true", help="list from the oldest job, a page at a time"
    )
    s.add_argument("--cursor", default=None, help="the page after the one that printed it")
    _store_flags(s)

    w = sub.add_parser("worker", help="run worker processes that take jobs from the broker")
    _store_flags(w)
    _broker_flags(w)
    w.add_argument("--processes", type=int, default=1, help="worker processes (default: 1)")
    w.add_argument("--threads", type=int, default=2, help="jobs at once per process (default: 2)")
    w.add_argument(
        "--transcriber",
        default="whisper",
        help="whisper (default), deepgram, or package.module:factory returning a transcriber",
    )
    w.add_argument(
        "--vad",
        choices=("energy", "webrtc", "silero"),
        default=None,
        help="speech detection (default: silero with whisper, energy otherwise)",
    )
    w.add_argument("--model", default=None, help="Whisper model directory or name")
    w.add_argument("--model-cache", default=None, help="where the bundled model is assembled")
    w.add_argument("--deepgram-url", default=None, help="Deepgram base URL (self-hosted)")
    w.add_argument(
        "--concurrency", type=int, default=2, help="transcriber calls in flight per job"
    )
    w.add_argument("--lease-seconds", type=float, default=60.0, help="job lease (default: 60)")
    w.add_argument(
        "--sweep-interval",
        type=float,
        default=None,
        help="seconds between sweeps of expired leases (default: half the lease)",
    )
    w.add_argument(
        "--max-attempts", type=int, default=3, help="attempts before a job fails (default: 3)"
    )

    u = sub.add_parser("submit", help="queue files for the workers; prints one job id a line")
    u.add_argument("files", nargs="+", type=Path, metavar="FILE", help="media on shared storage")
    _store_flags(u)
    _broker_flags(u)
    u.add_argument("--job-id", default=None, help="the job's id (one FILE only)")
    u.add_argument("--format", type=_formats, default=FORMATS, help="formats to render")
    u.add_argument("--language", default=None, help="language code (default: detect)")

    a = sub.add_parser("watch", help="follow a job until it ends")
    a.add_argument("job_id")
    _store_flags(a)
    a.add_argument("--out", type=Path, default=None, help="write its renderings here")

    v = sub.add_parser("serve", help="run the HTTP service (API, live events, web page)")
    _store_flags(v)
    v.add_argument(
        "--broker",
        default=os.environ.get("AUDIOFLOW_BROKER"),
        help="send jobs to workers on this broker (default: run them in this process)",
    )
    v.add_argument("--queue", default="audioflow", help="queue name (default: audioflow)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    v.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    v.add_argument(
        "--upload-dir",
        type=Path,
        default=Path("audioflow-uploads"),
        help="where uploads are kept (shared storage when workers run elsewhere)",
    )
    v.add_argument(
        "--max-upload-mb", type=int, default=2048, help="largest upload in MB (default: 2048)"
    )
    v.add_argument(
        "--transcriber",
        default="whisper",
        help="without --broker: whisper (default), deepgram, or package.module:factory",
    )
    v.add_argument("--vad", choices=("energy", "webrtc", "silero"), default=None)
    v.add_argument("--max-running", type=int, default=2, help="jobs at once without --broker (2)")

    c = sub.add_parser("cancel", help="cancel a queued or running job")
    c.add_argument("job_id")
    _store_flags(c)
    return parser


def _store_flags(parser: argparse.ArgumentParser) -> None:
    store = os.environ.get("AUDIOFLOW_STORE")
    parser.add_argument(
        "--store",
        default=store,
        required=store is None,
        help="the job store, a redis:// URL (default: $AUDIOFLOW_STORE)",
    )
    parser.add_argument("--prefix", default="audioflow:", help="Redis key prefix")


def _broker_flags(parser: argparse.ArgumentParser) -> None:
    broker = os.environ.get("AUDIOFLOW_BROKER")
    parser.add_argument(
        "--broker",
        default=broker,
        required=broker is None,
        help="redis:// or amqp:// URL of the Dramatiq broker (default: $AUDIOFLOW_BROKER)",
    )
    parser.add_argument("--queue", default="audioflow", help="queue name (default: audioflow)")


def _store(url: str, prefix: str, *, memory: bool = True) -> JobStore:
    try:
        return store_from_url(url, prefix=prefix, memory=memory)
    except ConfigurationError as exc:
        raise UsageError(f"--store: {exc}") from None


def _transcriber(args: argparse.Namespace) -> Transcriber:
    try:
        given = [
            (flag, key, value)
            for flag, key, value in (
                ("--device", "device", args.device),
                ("--compute-type", "compute_type", args.compute_type),
                ("--threads", "cpu_threads", args.threads),
                ("--beam-size", "beam_size", args.beam_size),
                ("--batch-size", "max_batch", args.batch_size),
                ("--task", "task", args.task),
                ("--initial-prompt", "initial_prompt", args.initial_prompt),
                ("--hotwords", "hotwords", args.hotwords),
            )
            if value is not None
        ]
        if given and args.transcriber != "whisper":
            flags = ", ".join(flag for flag, _, _ in given)
            raise UsageError(f"{flags}: Whisper's settings, not {args.transcriber}'s")
        for flag, _, value in given:
            least = 0 if flag == "--threads" else 1  # 0 threads: CTranslate2's own default
            if isinstance(value, int) and value < least:
                raise UsageError(f"{flag} must be at least {least}")
        whisper = {key: value for _, key, value in given}
        if args.diarize and args.transcriber != "deepgram":
            raise UsageError(
                "--diarize needs a transcriber that tells speakers apart: --transcriber "
                "deepgram (Whisper does not)"
            )
        return make_transcriber(
            args.transcriber,
            model=args.model,
            model_cache=str(args.model_cache) if args.model_cache else None,
            deepgram_url=args.deepgram_url,
            whisper=whisper,
            deepgram={"diarize": True} if args.diarize else None,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def output_path(out: Path, source: Path, fmt: str) -> Path:
    """``out/<source stem>.<ext>``, refusing anything that would land outside ``out``."""
    return _confined(out, f"{source.stem}.{fmt}")


def _confined(out: Path, name: str) -> Path:
    root = out.resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise AudioflowError(f"refusing to write outside {out}: {target}")
    return target


#: What ``--recursive`` takes from a folder: the extensions of audio and video files.
MEDIA_SUFFIXES = frozenset(
    ".aac .aif .aiff .amr .avi .caf .flac .m4a .m4v .mka .mkv .mov .mp3 .mp4 .mpeg .mpg "
    ".oga .ogg .opus .ts .wav .weba .webm .wma .wmv .3gp".split()
)


def expand_folders(files: Sequence[Path]) -> list[Path]:
    """``files`` with each folder replaced by the media files under it, in name order.

    Raises:
        UsageError: a folder holds no media file.
    """
    out: list[Path] = []
    for path in files:
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES
        )
        if not found:
            raise UsageError(f"{path}: no audio or video files in it")
        out += found
    return out


#: The fields ``--output-name`` may use.
_NAME_FIELDS = ("stem", "name", "parent", "index")


def plan_outputs(
    files: Sequence[Path], out: Path, formats: Sequence[str], template: str = "{stem}"
) -> list[str]:
    """Each input's output name (``template`` filled in), checked before any work.

    Raises:
        UsageError: an input that does not exist or is a folder; ``out`` that is not a
            folder; a template with unknown fields or a path in it; two inputs that
            would write the same file; an output that would land outside ``out`` (a
            link planted there).
    """
    for path in files:
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if path.is_dir():
            raise UsageError(f"{path}: is a folder; give the files in it, or --recursive")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    names: list[str] = []
    for index, path in enumerate(files, start=1):
        fields = {
            "stem": path.stem,
            "name": path.name,
            "parent": path.resolve().parent.name,
            "index": index,
        }
        try:
            name = template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            problem = f"unknown field {{{exc.args[0]}}}" if isinstance(exc, KeyError) else exc
            raise UsageError(
                f"--output-name {template!r}: {problem}; fields: "
                + ", ".join("{" + f + "}" for f in _NAME_FIELDS)
            ) from None
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise UsageError(f"--output-name {template!r} gives {name!r} for {path}: not a name")
        names.append(name)
    seen: dict[str, Path] = {}
    for path, name in zip(files, names, strict=True):
        if name in seen:
            raise UsageError(
                f"{seen[name]} and {path} would both write {out / name}.*; "
                "name the outputs apart, e.g. --output-name '{parent}-{stem}' or '{name}'"
            )
        seen[name] = path
    for name in names:
        for fmt in formats:
            try:
                _confined(out, f"{name}.{fmt}")
            except AudioflowError as exc:
                raise UsageError(str(exc)) from None
    return names


class _Progress:
    """A bar per file on a terminal (``rich``: fraction, stage, elapsed time, time left),
    plain lines otherwise (one per stage a file enters, then its end)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last: dict[str, str] = {}
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        if stream.isatty():
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    Progress,
                    TaskProgressColumn,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
            except ImportError:  # the cli extra brings rich; without it, plain lines
                return
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[stage]:<10}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=Console(file=stream),
                transient=False,
            )
            self._bars.start()

    def _task(self, name: str) -> Any:
        if name not in self._tasks:
            self._tasks[name] = self._bars.add_task(name, total=1.0, stage="start")
        return self._tasks[name]

    def update(self, name: str, progress: Progress) -> None:
        stage = progress.stage or "start"
        if self._bars is not None:
            self._bars.update(self._task(name), completed=progress.fraction, stage=stage)
        elif self.last.get(name) != stage:  # plain output: one line per stage change
            self.last[name] = stage
            self.stream.write(f"{name}: {stage} {progress.fraction:.0%}\n")
            self.stream.flush()

    def done(self, name: str, message: str) -> None:
        if self._bars is not None:
            if message.startswith("done"):
                self._bars.update(self._task(name), completed=1.0, stage="done")
            self._bars.console.print(f"{name}: {message}", markup=False, highlight=False)
            return
        self.stream.write(f"{name}: {message}\n")
        self.stream.flush()

    def note(self, name: str, message: str) -> None:
        """A line about one file that is not its end (its job id, what was kept)."""
        self.line(f"{name}: {message}")

    def line(self, message: str) -> None:
        if self._bars is not None:
            self._bars.console.print(message, markup=False, highlight=False)
            return
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Stop redrawing (the bars stay as they last were)."""
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def summary(self, files: int, failed: int, audio: float, wall: float) -> None:
        """One line at the end: files, audio, wall time, speed, failures."""
        self.close()
        speed = f" ({audio / wall:.1f}x real time)" if wall > 0 and audio > 0 else ""
        self.stream.write(
            f"{files} file{'s' if files != 1 else ''}, {_duration(audio)} of audio in "
            f"{_duration(wall)}{speed}" + (f"; {failed} failed" if failed else "") + "\n"
        )
        self.stream.flush()


def _duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``12.3 s``."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


async def _transcribe(args: argparse.Namespace) -> int:
    """``-`` among the files is standard input, spooled to a temporary file first."""
    dashes = [str(p) for p in args.files].count("-")
    if not dashes:
        return await _transcribe_files(args)
    if dashes > 1:
        raise UsageError("- (standard input) can be given once")
    if sys.stdin.isatty():
        raise UsageError("-: standard input is a terminal; pipe a file in")
    if args.resume or args.job_id:
        raise UsageError("- (standard input) is read once: it cannot be resumed")
    folder = Path(tempfile.mkdtemp(prefix="audioflow-stdin-"))
    try:
        spooled = folder / "stdin"

        def spool() -> None:
            with spooled.open("wb") as out:
                shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)

        await anyio.to_thread.run_sync(spool)
        args.files = [spooled if str(p) == "-" else p for p in args.files]
        return await _transcribe_files(args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _transcribe_files(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if (args.resume or args.job_id) and args.store == "memory":
        raise UsageError(
            "--resume and --job-id need a store that outlives the command: --store redis://..."
        )
    if args.job_id and (len(args.files) != 1 or args.recursive):
        raise UsageError("--job-id names one job: give one FILE")
    rules = _caption_rules(args)
    language = resolve_language(args.language, args.transcriber)
    paths: list[Path] = expand_folders(args.files) if args.recursive else list(args.files)
    names = plan_outputs(paths, args.out, args.format, args.output_name)
    sources = [str(p.resolve()) for p in paths]  # a job's source: the same from any folder
    store = _store(args.store, args.prefix)
    display = _Progress(sys.stderr)
    # Files are called by their name, or by their path where two share a name.
    labels = [p.name if [q.name for q in paths].count(p.name) == 1 else str(p) for p in paths]
    options = JobOptions(formats=args.format, language=language)
    transcriber: Transcriber | None = None
    try:
        transcriber = _transcriber(args)
        if args.job_id:
            await _check_job_id(store, args.job_id, sources[0], options)
            found: list[str | None] = [args.job_id]
        elif args.resume:
            found = await _last_unfinished(store, sources, options)
        else:
            found = [None] * len(paths)
        ids = [i or uuid.uuid4().hex for i in found]
        speech_rules = _speech_rules(args, transcriber)
        # Every input is checked: the model loads while the jobs are made and the
        # first source is decoded (WhisperTranscriber.load_in_background), not once
        # transcription starts; never for a command that is then refused.
        load_in_background = getattr(transcriber, "load_in_background", None)
        if load_in_background is not None:
            load_in_background()
    except BaseException:
        display.close()
        if transcriber is not None:
            await transcriber.aclose()
        await store.aclose()
        raise
    pipeline = Pipeline(
        transcriber,
        store=store,
        formats=args.format,
        vad=args.vad,
        rules=rules,
        speech_rules=speech_rules,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for label, job_id in zip(labels, ids, strict=True):
        display.note(label, f"job {job_id}")
    failed: list[Path] = []
    ended: set[int] = set()
    audio_seconds = 0.0
    started = time.perf_counter()

    def done(i: int, result: JobResult | AudioflowError) -> None:
        nonlocal audio_seconds
        ended.add(i)
        if isinstance(result, JobResult):
            try:
                for fmt, text in result.artifacts.items():
                    _confined(args.out, f"{names[i]}.{fmt}").write_text(text, encoding="utf-8")
            except AudioflowError as exc:
                result = exc
            else:
                media = result.media
                audio_seconds += (
                    (media.decoded_duration or media.duration or 0.0) if media else 0.0
                )
                display.done(labels[i], f"done -> {args.out}/{names[i]}.*{_language_note(result)}")
                return
        message = " ".join(str(result).split())
        display.done(labels[i], f"failed: {type(result).__name__}: {message}")
        failed.append(paths[i])

    interrupted = False
    try:
        async with anyio.create_task_group() as tg:
            work = anyio.CancelScope()

            async def on_ctrl_c() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT) as signals:
                    async for _ in signals:
                        if interrupted:  # the second: at once, whatever is running
                            os._exit(130)
                        interrupted = True
                        display.line("interrupted: stopping (Ctrl-C again to quit at once)")
                        work.cancel()

            tg.start_soon(on_ctrl_c)
            with work:
                await pipeline.run_many(
                    sources,
                    concurrency=args.concurrency,
                    options=options,
                    on_progress=lambda i, p: display.update(labels[i], p),
                    on_done=done,
                    job_ids=ids,
                )
            tg.cancel_scope.cancel()
        if interrupted:
            await _report_kept(store, args, paths, labels, ids, ended, display)
    finally:
        display.close()
        await transcriber.aclose()
        await store.aclose()
    wall = time.perf_counter() - started
    display.summary(len(paths), len(failed), audio_seconds, wall)
    if interrupted:
        return 130
    return 1 if failed else 0


def _language_note(result: JobResult) -> str:
    """`` (en, detected 0.97)`` or `` (en, given)``: the language and where it came from."""
    transcript = result.transcript
    if transcript is None or transcript.language is None:
        return ""
    if transcript.language_source == "detected" and transcript.language_probability:
        return f" ({transcript.language}, detected {transcript.language_probability:.2f})"
    return f" ({transcript.language}, {transcript.language_source or 'reported'})"


async def _check_job_id(store: JobStore, job_id: str, source: str, options: JobOptions) -> None:
    """``--job-id`` of an existing job must be that file's, asked the same way."""
    job = await store.get(job_id)
    if job is None:
        return
    if job.source != source:
        raise UsageError(f"--job-id {job_id}: that job transcribes {job.source}, not {source}")
    if job.options != options:
        raise UsageError(
            f"--job-id {job_id}: that job was asked for other outputs or language "
            f"({', '.join(job.options.formats)}; language {job.options.language or 'detected'})"
        )


async def _each_job(store: JobStore, status: JobStatus | None) -> AsyncIterator[Job]:
    """Every job (of ``status``) in the store, oldest first, a page at a time."""
    cursor = None
    while True:
        page = await store.list(status=status, limit=500, cursor=cursor)
        for job in page.jobs:
            yield job
        if page.cursor is None:
            return
        cursor = page.cursor


async def _last_unfinished(
    store: JobStore, sources: Sequence[str], options: JobOptions
) -> list[str | None]:
    """Each source's most recent job that did not complete and was asked the same way
    (formats, language), if the store has one."""
    wanted = set(sources)
    found: dict[str, Job] = {}
    for status in (JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.RUNNING):
        async for job in _each_job(store, status):
            if job.source in wanted and job.options == options:
                best = found.get(job.source)
                if best is None or job.created_at > best.created_at:
                    found[job.source] = job
    return [found[s].id if s in found else None for s in sources]


async def _report_kept(
    store: JobStore,
    args: argparse.Namespace,
    paths: Sequence[Path],
    labels: Sequence[str],
    ids: Sequence[str],
    ended: set[int],
    display: _Progress,
) -> None:
    """After Ctrl-C: what each unfinished job kept, and how to go on with it."""
    for i, (path, label, job_id) in enumerate(zip(paths, labels, ids, strict=True)):
        if i in ended:
            continue
        if args.store == "memory":
            display.note(label, "stopped; nothing kept (the memory store ends with the command)")
            continue
        with anyio.move_on_after(5):
            job = await store.get(job_id)
            kept = len(job.checkpoint.windows) if job and job.checkpoint else 0
            display.note(
                label,
                f"stopped, {kept} window{'s' if kept != 1 else ''} kept in job {job_id}; "
                f"resume: audioflow transcribe {path} --store {redact_url(args.store)}"
                + ("" if args.prefix == "audioflow:" else f" --prefix {args.prefix}")
                + " --resume",
            )


async def _status(args: argparse.Namespace) -> int:
    store = _store(args.store, args.prefix, memory=False)
    try:
        if args.job_id is None:
            status = JobStatus(args.status) if args.status else None
            limit = max(1, args.limit)
            if args.cursor is None and not args.oldest:
                page = await _most_recent(store, status, limit)
            else:
                page = await store.list(status=status, limit=limit, cursor=args.cursor)
            job = None
        else:
            job = await store.get(args.job_id)
    finally:
        await store.aclose()
    if args.job_id is None:
        for listed in page.jobs:
            progress = listed.progress
            print(
                f"{listed.id}  {listed.status.value:<9}  {progress.fraction:4.0%} "
                f"{progress.stage or '':<10}  {listed.source}"
            )
        if not page.jobs:
            print(f"no jobs in {redact_url(args.store)}", file=sys.stderr)
        if page.cursor is not None:
            print(f"more: audioflow status --cursor {page.cursor}", file=sys.stderr)
        return 0
    if job is None:
        return _no_such_job(args)
    progress = job.progress
    print(f"job:      {job.id}")
    print(f"status:   {job.status.value}")
    print(f"source:   {job.source}")
    print(f"progress: {progress.fraction:.0%} {progress.stage or ''} {progress.message}".rstrip())
    print(f"attempts: {job.attempts}")
    if job.lease is not None and job.status is JobStatus.RUNNING:
        print(f"worker:   {job.lease.owner} (lease until {job.lease.expires_at:%H:%M:%S})")
    if job.error is not None:
        print(f"error:    {job.error.type}: {job.error.message}")
    if job.artifacts:
        print(f"formats:  {', '.join(sorted(job.artifacts))}")
    return 0


async def _most_recent(store: JobStore, status: JobStatus | None, limit: int) -> JobPage:
    """The ``limit`` most recent jobs, oldest of them first (a scan of the list)."""
    recent: collections.deque[Job] = collections.deque(maxlen=limit)
    async for job in _each_job(store, status):
        recent.append(job)
    return JobPage(jobs=tuple(recent))


def _no_such_job(args: argparse.Namespace) -> int:
    print(f"audioflow: no job {args.job_id!r} in {redact_url(args.store)}", file=sys.stderr)
    return 1


def _worker(args: argparse.Namespace) -> int:
    """Check the settings, then hand over to Dramatiq's process runner."""
    # Dramatiq reads these when first imported. A worker takes no more messages than it
    # has threads (a job never waits behind a long one while another worker idles), and
    # an idle worker asks the Redis broker every 100 ms, not every second. The
    # environment can set either otherwise.
    os.environ.setdefault("dramatiq_queue_prefetch", str(max(1, args.threads)))
    os.environ.setdefault("dramatiq_worker_timeout", "100")
    try:
        from dramatiq.cli import main as dramatiq_main
        from dramatiq.cli import make_argument_parser
    except ImportError:
        raise UsageError("`audioflow worker` needs: pip install 'audioflow[dramatiq]'") from None
    if args.processes < 1 or args.threads < 1:
        raise UsageError("--processes and --threads must be at least 1")
    if not args.broker.startswith(("redis://", "rediss://", "unix://", "amqp://", "amqps://")):
        broker = redact_url(args.broker)
        raise UsageError(f"--broker must be a redis:// or amqp:// URL, not {broker!r}")
    config = WorkerConfig(
        store=args.store,
        broker=args.broker,
        prefix=args.prefix,
        queue=args.queue,
        transcriber=args.transcriber,
        model=args.model,
        model_cache=args.model_cache,
        deepgram_url=args.deepgram_url,
        vad=args.vad,
        concurrency=args.concurrency,
        lease_seconds=args.lease_seconds,
        sweep_interval=args.sweep_interval or args.lease_seconds / 2,
        max_attempts=args.max_attempts,
    )
    try:
        config.check()
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    os.environ["AUDIOFLOW_WORKER"] = msgspec.json.encode(config).decode()
    dramatiq_args = make_argument_parser().parse_args(  # type: ignore[no-untyped-call]
        [
            "audioflow._dramatiq_boot:broker",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            "--queues",
            args.queue,
        ]
    )
    status: int = dramatiq_main(dramatiq_args)  # type: ignore[no-untyped-call]
    return status


def _serve(args: argparse.Namespace) -> int:
    """Check the settings, build the app, and serve it with uvicorn until stopped."""
    try:
        import uvicorn

        from .service import create_app, keys_from_env
    except ImportError:
        raise UsageError("`audioflow serve` needs: pip install 'audioflow[service]'") from None
    if args.max_running < 1 or args.max_upload_mb < 1:
        raise UsageError("--max-running and --max-upload-mb must be at least 1")
    try:
        keys = keys_from_env()
        store_from_url(args.store, prefix=args.prefix, memory=False)
        if args.broker is None and args.transcriber not in ("whisper", "deepgram"):
            WorkerConfig(store=args.store, broker="", transcriber=args.transcriber).check()
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    if not keys:
        raise UsageError("set AUDIOFLOW_API_KEYS (name:key[:webhook_secret],...) or _FILE")
    store = store_from_url(args.store, prefix=args.prefix, memory=False)
    kwargs: dict[str, object] = {}
    if args.broker is not None:
        from .dramatiq import DramatiqQueue

        kwargs["enqueue"] = DramatiqQueue(args.broker, queue_name=args.queue).enqueue
    else:
        config = WorkerConfig(
            store=args.store, broker="", transcriber=args.transcriber, vad=args.vad
        )
        kwargs["pipeline"] = lambda: config.pipeline(store)
        kwargs["max_running"] = args.max_running
    app = create_app(
        store,
        keys=keys,
        upload_dir=args.upload_dir,
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        **kwargs,  # type: ignore[arg-type]
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


async def _submit(args: argparse.Namespace) -> int:
    if args.job_id is not None and len(args.files) > 1:
        raise UsageError("--job-id names one job: give one FILE with it")
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    store = _store(args.store, args.prefix, memory=False)
    try:
        from .dramatiq import DramatiqQueue
    except ImportError:
        raise UsageError("`audioflow submit` needs: pip install 'audioflow[dramatiq]'") from None
    queue = DramatiqQueue(args.broker, queue_name=args.queue)
    options = JobOptions(formats=args.format, language=args.language)
    try:
        for path in args.files:
            # Workers read the file at this path: give them the absolute one.
            job = await queue.submit(store, path.resolve(), job_id=args.job_id, options=options)
            print(job.id, flush=True)
    finally:
        queue.close()
        await store.aclose()
    return 0


async def _cancel(args: argparse.Namespace) -> int:
    from .worker import cancel

    store = _store(args.store, args.prefix, memory=False)
    try:
        job = await cancel(store, args.job_id)
    finally:
        await store.aclose()
    print(f"{job.id}: cancelled")
    return 0


async def _watch(args: argparse.Namespace) -> int:
    store = _store(args.store, args.prefix, memory=False)
    try:
        job = await store.get(args.job_id)
        if job is None:
            return _no_such_job(args)
        progress = job.progress
        with _WatchDisplay(args.job_id, sys.stderr) as display:
            async with watching(store, args.job_id) as events:
                async for event in events:
                    if isinstance(event.changes.progress, Progress):
                        progress = event.changes.progress
                    display.update(event.status, progress)
        job = await store.get(args.job_id)
    finally:
        await store.aclose()
    if job is None:
        print(f"audioflow: job {args.job_id!r} was deleted", file=sys.stderr)
        return 1
    return _report_end(job, args)


def _report_end(job: Job, args: argparse.Namespace) -> int:
    if job.status is not JobStatus.COMPLETED:
        reason = f": {job.error.type}: {job.error.message}" if job.error else ""
        print(f"{job.id}: {job.status.value}{reason}")
        return 1
    formats = ", ".join(sorted(job.artifacts))
    where = f"store {redact_url(args.store)}, job {job.id} (formats: {formats})"
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for fmt, text in job.artifacts.items():
            output_path(args.out, Path(job.id), fmt).write_text(text, encoding="utf-8")
        where = f"{args.out}/{job.id}.*"
    print(f"{job.id}: completed -> {where}")
    return 0


class _WatchDisplay:
    """A live bar on a terminal (``rich``, when installed); a line per stage otherwise."""

    def __init__(self, job_id: str, stream: TextIO) -> None:
        self.job_id = job_id
        self.stream = stream
        self.last: tuple[object, ...] = ()
        self._progress = None
        self._task = None
        if stream.isatty():
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    Progress,
                    TaskProgressColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:
                return
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stage]}"),
                console=Console(file=stream),
            )
            self._task = self._progress.add_task(job_id, total=1.0, stage="")

    def __enter__(self) -> _WatchDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, status: JobStatus | None, progress: Progress | None) -> None:
        fraction = progress.fraction if progress else 0.0
        stage = (progress.stage if progress else None) or ""
        label = status.value if status and status is not JobStatus.RUNNING else stage
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=fraction, stage=label)
            return
        state = (status, stage)
        if state != self.last:
            self.last = state
            self.stream.write(f"{self.job_id}: {label or 'queued'} {fraction:.0%}\n")
            self.stream.flush()


_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _limit_malloc_arenas() -> bool:
    """One glibc malloc arena for this process and the workers it starts.

    glibc gives threads their own arenas (up to 8 per core) and memory freed in one is
    not reused by another: the model, decoder and speech-detection threads of a long
    job fragment the heap. On a 2-hour file the command peaked at 1042 MiB with glibc's
    default against about 870 MiB on a 5-minute one; with two model calls at once
    (``WhisperTranscriber(num_workers=2)``, the default then) two arenas peaked at
    1068-1162 MiB and one at 981-992 MiB, with no speed lost outside the noise
    (docs/pipeline.md). An operator's own ``MALLOC_ARENA_MAX`` is left alone. Returns
    whether it was set.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    os.environ["MALLOC_ARENA_MAX"] = "1"  # for the worker processes started from here
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, 1))  # for this one, already running
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    _limit_malloc_arenas()
    try:
        if args.command == "worker":
            return _worker(args)
        if args.command == "serve":
            return _serve(args)
        commands = {
            "transcribe": _transcribe,
            "status": _status,
            "submit": _submit,
            "watch": _watch,
            "cancel": _cancel,
        }
        status = anyio.run(commands[args.command], args)
        if status == 130 and args.command == "transcribe":
            # Interrupted: every job's state is written, and the model call that was
            # in flight was abandoned. Python would wait for its thread at exit (a
            # batch's time); the command ends now instead.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return status
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
