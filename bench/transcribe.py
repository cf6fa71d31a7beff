"""End-to-end transcription: the ``audioflow`` CLI vs faster-whisper's pipelines, per file.

    python bench/transcribe.py [--manifest ~/.cache/audioflow/evalset/manifest.json]
                               [--repeat 3] [--files allison.wav,sample]
                               [--pipelines A,B,C] [--batch-size 8] [--cpu-threads 0]

For every file of the evaluation set (``bench/evalset.py`` writes it and its manifest)
and for the shipped ``examples/sample.flac`` (reference ``examples/sample.txt``; named
``sample``), each pipeline runs in a fresh process, model load included:

(A) ``audioflow transcribe FILE --out TMP --format json --language en``: the CLI as a
    user runs it (``Pipeline.default()``: PyAV decode, Silero VAD, WhisperTranscriber
    with the bundled Whisper-base int8 model); words read from the JSON it writes;
(B) ``BatchedInferencePipeline(model).transcribe(FILE, language="en",
    word_timestamps=True, batch_size=--batch-size)`` in ``python -c``;
(C) ``WhisperModel.transcribe(FILE, language="en", vad_filter=True,
    word_timestamps=True)`` in ``python -c``;

(B) and (C) load the same bundled model directory the CLI resolves, int8 on CPU, and
all three keep faster-whisper's default beam of 5. ``--cpu-threads N`` (N > 0) sets
``OMP_NUM_THREADS=N`` for all three children (CTranslate2 takes it when its
``cpu_threads`` is 0, which is what the CLI passes) and ``cpu_threads=N`` for (B), (C).

Printed per file and pipeline: WER against the manifest's reference (its prompts'
normalised texts joined; the hypothesis goes through the same rules,
``bench/evalset.py``'s ``normalize_text``: lower case, numbers as words, punctuation
removed), hypothesis and reference word counts, wall and
CPU seconds (medians of ``--repeat`` alternating rounds A, B, C, A, B, C... after one
untimed warm-up run per pipeline), x realtime, peak RSS, and for files with prompt
timings the share of words inside some prompt's speech (±0.3 s) and the words lying
wholly outside every prompt (±0.3 s): words invented in silence, noise or hum. Then
A-vs-B ratios, a TOTAL over all files shown, one line per aim, and the startup costs
that load-included timings contain. It prints, it never asserts.

Peak RSS is exact: ``ru_maxrss`` of the child as ``os.wait4`` returns it, the kernel's
high-water mark of the child's resident set (Linux), not a sampled value.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = Path.home() / ".cache" / "audioflow" / "evalset" / "manifest.json"
SAMPLE = ROOT / "examples" / "sample.flac"
MARGIN = 0.3  # seconds of slack around a prompt for the timing checks
SPEED_AIM = 1.1

# ------------------------------------------------------------------- normalisation

# The evaluation set's own rules (lower case, numbers spelled out, punctuation removed,
# apostrophes inside words kept): its manifest asks transcripts to go through them.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalset import normalize_text  # noqa: E402


def normalize(text: str) -> list[str]:
    """``text`` as the evaluation set's references are written, split into words."""
    return normalize_text(text).split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)]


# ------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Prompt:
    start: float
    end: float
    speech_start: float
    speech_end: float


@dataclass(frozen=True)
class Item:
    """One file to transcribe, its reference and (for the evaluation set) its prompts."""

    name: str  # the file's name (allison.mp3): manifest names repeat across containers
    group: str  # the manifest's name (allison)
    path: Path
    container: str
    duration: float
    speakers: int | None
    reference: list[str]
    prompts: tuple[Prompt, ...] = ()


def load_manifest(path: Path) -> list[Item]:
    data = json.loads(path.read_text())
    if data.get("version") != 1:
        raise SystemExit(f"{path}: manifest version {data.get('version')!r}, expected 1")
    items = []
    for f in data["files"]:
        prompts, speakers = f["prompts"], f.get("speakers")
        items.append(
            Item(
                name=Path(f["path"]).name,
                group=f["name"],
                path=(path.parent / f["path"]).resolve(),
                container=f.get("container", Path(f["path"]).suffix.lstrip(".")),
                duration=float(f["duration"]),
                speakers=len(speakers) if isinstance(speakers, list) else speakers,
                reference=normalize(" ".join(p["text"] for p in prompts)),
                prompts=tuple(
                    Prompt(p["start"], p["end"], p["speech_start"], p["speech_end"])
                    for p in prompts
                ),
            )
        )
    return items


def sample_item() -> Item:
    import av

    with av.open(str(SAMPLE)) as container:
        duration = (container.duration or 0) / 1e6
    return Item(
        name="sample",
        group="sample",
        path=SAMPLE,
        container=SAMPLE.suffix.lstrip("."),
        duration=duration,
        speakers=1,
        reference=normalize(SAMPLE.with_suffix(".txt").read_text()),
    )


# ---------------------------------------------------------------------- pipelines


@dataclass(frozen=True)
class HypWord:
    text: str
    start: float
    end: float


_FW_SCRIPT = """
import json, sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
kind, model_dir, path, threads, batch = sys.argv[1:6]
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=int(threads))
if kind == "batched":
    segments, _ = BatchedInferencePipeline(model).transcribe(
        path, language="en", word_timestamps=True, batch_size=int(batch)
    )
else:
    segments, _ = model.transcribe(path, language="en", vad_filter=True, word_timestamps=True)
words = [[w.word, w.start, w.end] for s in segments for w in s.words or ()]
json.dump(words, sys.stdout)
"""


@dataclass(frozen=True)
class Pipeline:
    key: str
    label: str
    # (file, scratch directory) -> argv
    command: Callable[[Path, Path], list[str]]
    # (child's stdout, scratch directory, file) -> words
    read: Callable[[str, Path, Path], list[HypWord]]


def _read_audioflow(_: str, out: Path, source: Path) -> list[HypWord]:
    transcript = json.loads((out / f"{source.stem}.json").read_text())
    words: list[HypWord] = []
    for segment in transcript["segments"]:
        if segment.get("words"):
            words += [HypWord(w["text"], w["start"], w["end"]) for w in segment["words"]]
        elif segment["text"].strip():  # untimed text still counts for WER
            words.append(HypWord(segment["text"], float("nan"), float("nan")))
    return words


def _read_faster_whisper(stdout: str, _: Path, __: Path) -> list[HypWord]:
    return [HypWord(text, start, end) for text, start, end in json.loads(stdout)]


def make_pipelines(model_dir: Path, batch_size: int, cpu_threads: int) -> dict[str, Pipeline]:
    cli = Path(sys.executable).parent / "audioflow"
    audioflow = str(cli) if cli.exists() else shutil.which("audioflow") or "audioflow"

    def faster_whisper(kind: str) -> Callable[[Path, Path], list[str]]:
        return lambda path, _: [
            sys.executable,
            "-c",
            _FW_SCRIPT,
            kind,
            str(model_dir),
            str(path),
            str(cpu_threads),
            str(batch_size),
        ]

    pipelines = (
        Pipeline(
            "A",
            "A audioflow CLI",
            lambda path, out: [
                audioflow,
                "transcribe",
                str(path),
                "--out",
                str(out),
                "--format",
                "json",
                "--language",
                "en",
            ],
            _read_audioflow,
        ),
        Pipeline("B", "B fw batched", faster_whisper("batched"), _read_faster_whisper),
        Pipeline("C", "C fw vad_filter", faster_whisper("sequential"), _read_faster_whisper),
    )
    return {p.key: p for p in pipelines}


# -------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Child:
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the child (and any children it waited for)
    peak_rss: int  # bytes: ru_maxrss from wait4
    returncode: int
    stdout: str
    stderr: str


def run_child(argv: list[str], env: dict[str, str]) -> Child:
    """Run ``argv`` to completion; time it and take its rusage from ``os.wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Child(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_rss=usage.ru_maxrss * 1024,  # KiB on Linux
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


@dataclass
class Run:
    child: Child
    words: list[HypWord] | None  # None: the run failed


def run_pipeline(pipeline: Pipeline, item: Item, env: dict[str, str]) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as scratch:
        child = run_child(pipeline.command(item.path, Path(scratch)), env)
        if child.returncode != 0:
            tail = " | ".join(child.stderr.strip().splitlines()[-3:])
            print(f"  {pipeline.key} on {item.name} failed ({child.returncode}): {tail}")
            return Run(child, None)
        try:
            return Run(child, pipeline.read(child.stdout, Path(scratch), item.path))
        except (OSError, ValueError, KeyError) as exc:
            print(f"  {pipeline.key} on {item.name}: unreadable output: {exc!r}")
            return Run(child, None)


# ------------------------------------------------------------------------ scores


@dataclass
class Score:
    """One pipeline on one file (or pooled over files for TOTAL)."""

    errors: int = 0
    ref_words: int = 0
    hyp_words: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0
    duration: float = 0.0
    timed_words: int = 0  # words checked for timing (files with prompts)
    in_speech: int = 0
    invented: int = 0
    timed_files: int = 0
    varied: bool = False  # the text differed between rounds
    failed: bool = False

    @property
    def wer(self) -> float:
        return self.errors / max(self.ref_words, 1)

    def add(self, other: Score) -> None:
        for name in (
            "errors",
            "ref_words",
            "hyp_words",
            "wall",
            "cpu",
            "duration",
            "timed_words",
            "in_speech",
            "invented",
            "timed_files",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.peak_rss = max(self.peak_rss, other.peak_rss)
        self.varied |= other.varied
        self.failed |= other.failed


def score(item: Item, runs: list[Run]) -> Score:
    good = [r for r in runs if r.words is not None]
    if not good or len(good) < len(runs):
        return Score(failed=True, duration=item.duration)
    words = good[0].words or []
    hyp = normalize(" ".join(w.text for w in words))
    result = Score(
        errors=edit_distance(item.reference, hyp),
        ref_words=len(item.reference),
        hyp_words=len(hyp),
        wall=statistics.median(r.child.wall for r in good),
        cpu=statistics.median(r.child.cpu for r in good),
        peak_rss=max(r.child.peak_rss for r in good),
        duration=item.duration,
        varied=any([w.text for w in r.words or []] != [w.text for w in words] for r in good[1:]),
    )
    if item.prompts:
        result.timed_files = 1
        for w in words:
            if w.start != w.start:  # NaN: no timing
                continue
            result.timed_words += 1
            result.in_speech += any(
                p.speech_start - MARGIN <= w.start and w.end <= p.speech_end + MARGIN
                for p in item.prompts
            )
            result.invented += all(
                w.end < p.start - MARGIN or w.start > p.end + MARGIN for p in item.prompts
            )
    return result


# ------------------------------------------------------------------------ output

MiB = 1 << 20
HEADER = (
    f"  {'pipeline':16} {'WER':>6} {'hyp w':>6} {'ref w':>6} {'wall s':>7} {'x rt':>6} "
    f"{'CPU s':>7} {'peak MiB':>8} {'in-speech':>9} {'invented':>8}"
)


def row(label: str, s: Score) -> str:
    if s.failed:
        return f"  {label:16} failed"
    timing = (
        f"{s.in_speech / max(s.timed_words, 1):9.1%} {s.invented:8d}"
        if s.timed_files
        else f"{'n/a':>9} {'n/a':>8}"
    )
    return (
        f"  {label:16} {s.wer:6.3f} {s.hyp_words:6d} {s.ref_words:6d} {s.wall:7.2f} "
        f"{s.duration / s.wall:6.1f} {s.cpu:7.2f} {s.peak_rss / MiB:8.0f} {timing}"
        + (" *" if s.varied else "")
    )


def versus(scores: dict[str, Score]) -> str:
    a, b = scores.get("A"), scores.get("B")
    if a is None or b is None or a.failed or b.failed:
        return "  A vs B: n/a"
    return (
        f"  A vs B: WER A-B {a.wer - b.wer:+.3f}   speed B s / A s {b.wall / a.wall:.2f}x   "
        f"CPU B/A {b.cpu / a.cpu:.2f}x   peak RSS A/B {a.peak_rss / b.peak_rss:.2f}x"
    )


def print_aims(per_file: dict[str, dict[str, Score]], total: dict[str, Score]) -> None:
    print("\naims (A = audioflow CLI, B = faster-whisper BatchedInferencePipeline):")
    pairs = {n: (s["A"], s["B"]) for n, s in per_file.items() if "A" in s and "B" in s}
    pairs = {n: (a, b) for n, (a, b) in pairs.items() if not (a.failed or b.failed)}
    if not pairs or total["A"].failed or total["B"].failed:
        print("  n/a: needs pipelines A and B, both successful")
        return
    a, b = total["A"], total["B"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    worse = [n for n, (x, y) in pairs.items() if x.errors * y.ref_words > y.errors * x.ref_words]
    print(
        f"  WER audioflow <= batched on every file and in total: total A {a.wer:.3f} vs "
        f"B {b.wer:.3f}; A worse on {len(worse)}/{len(pairs)} files"
        + (f" ({', '.join(worse)})" if worse else "")
        + f" -> {verdict(not worse and a.errors * b.ref_words <= b.errors * a.ref_words)}"
    )
    speeds = {n: y.wall / x.wall for n, (x, y) in pairs.items()}
    slow = [n for n, ratio in speeds.items() if ratio < SPEED_AIM]
    print(
        f"  audioflow end-to-end >= {SPEED_AIM}x faster than batched on every file and in "
        f"total: total B s / A s = {b.wall:.1f} / {a.wall:.1f} = {b.wall / a.wall:.2f}x; "
        f"below on {len(slow)}/{len(pairs)} files"
        + (f" ({', '.join(f'{n} {speeds[n]:.2f}x' for n in slow)})" if slow else "")
        + f" -> {verdict(not slow and b.wall / a.wall >= SPEED_AIM)}"
    )
    bigger = [n for n, (x, y) in pairs.items() if x.peak_rss > y.peak_rss]
    print(
        f"  peak RSS audioflow <= batched: max A {a.peak_rss / MiB:.0f} MiB vs B "
        f"{b.peak_rss / MiB:.0f} MiB; A larger on {len(bigger)}/{len(pairs)} files"
        + (f" ({', '.join(bigger)})" if bigger else "")
        + f" -> {verdict(not bigger)}"
    )


def print_overheads(env: dict[str, str], model_dir: Path, repeat: int) -> None:
    """Startup costs inside the load-included timings: medians of alternating runs."""
    py = sys.executable
    cli = Path(py).parent / "audioflow"
    probes = {
        "python -c pass": [py, "-c", "pass"],
        "audioflow --version (CLI imports)": [str(cli), "--version"],
        "import faster_whisper": [py, "-c", "import faster_whisper"],
        "bundled model resolve (with imports)": [
            py,
            "-c",
            "from audioflow.transcribers._whisper_model import bundled_model_dir, "
            "default_cache_dir; bundled_model_dir(default_cache_dir())",
        ],
        "WhisperModel load": [
            py,
            "-c",
            "import sys; from faster_whisper import WhisperModel; "
            "WhisperModel(sys.argv[1], device='cpu', compute_type='int8')",
            str(model_dir),
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(repeat):
        for name, argv in probes.items():
            times[name].append(run_child(argv, env).wall)
    print(f"\nstartup costs contained in the timings above (median of {repeat}, wall s):")
    for name, values in times.items():
        print(f"  {name:36} {statistics.median(values):6.2f}")
    print("  (A resolves the bundled model, hashing it only when the file changed since its")
    print("   stamp; B, C are handed the directory. All import faster-whisper and load it.)")


# -------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--files",
        default=None,
        help="comma-separated: file names (allison.mp3), manifest names (allison: all "
        "its containers), sample",
    )
    parser.add_argument("--pipelines", default="A,B,C", help="subset of A,B,C")
    parser.add_argument("--batch-size", type=int, default=8, help="B's batch_size")
    parser.add_argument(
        "--cpu-threads", type=int, default=0, help="0: library default; N: for all children"
    )
    parser.add_argument("--no-overheads", action="store_true", help="skip the startup costs")
    args = parser.parse_args()

    from audioflow.transcribers._whisper_model import bundled_model_dir, default_cache_dir

    items: list[Item] = []
    if args.manifest.is_file():
        items = load_manifest(args.manifest)
    else:
        print(f"note: no manifest at {args.manifest}; the sample only", file=sys.stderr)
    items.append(sample_item())
    if args.files:
        wanted = {n.strip() for n in args.files.split(",") if n.strip()}
        unknown = wanted - {i.name for i in items} - {i.group for i in items}
        if unknown:
            parser.error(f"--files: unknown {', '.join(sorted(unknown))}")
        items = [i for i in items if i.name in wanted or i.group in wanted]
    model_dir = bundled_model_dir(default_cache_dir())  # what the CLI resolves
    pipelines = make_pipelines(model_dir, args.batch_size, args.cpu_threads)
    keys = [k.strip().upper() for k in args.pipelines.split(",") if k.strip()]
    if not keys or any(k not in pipelines for k in keys):
        parser.error("--pipelines: a subset of A,B,C")
    selected = [pipelines[k] for k in dict.fromkeys(keys)]
    env = dict(os.environ)
    if args.cpu_threads > 0:
        env["OMP_NUM_THREADS"] = str(args.cpu_threads)

    print(
        f"Whisper-base int8 CPU (bundled, {model_dir.name}); language en; beam 5; "
        f"B batch_size {args.batch_size}; cpu_threads "
        f"{args.cpu_threads or 'library default'}; {os.cpu_count()} CPUs; each run a fresh "
        f"process, load included; median of {args.repeat} alternating rounds after one "
        f"warm-up per pipeline; WER pooled; timing margin {MARGIN} s; * = text varied "
        "between rounds"
    )
    warm = min(items, key=lambda i: i.duration)
    for p in selected:
        run_pipeline(p, warm, env)

    per_file: dict[str, dict[str, Score]] = {}
    for item in items:
        runs: dict[str, list[Run]] = {p.key: [] for p in selected}
        for round_ in range(args.repeat):
            for p in selected:
                run = run_pipeline(p, item, env)
                runs[p.key].append(run)
                print(
                    f"  [{item.name} {round_ + 1}/{args.repeat} {p.key} {run.child.wall:.1f} s]",
                    file=sys.stderr,
                    flush=True,
                )
        scores = {key: score(item, r) for key, r in runs.items()}
        per_file[item.name] = scores
        print(
            f"\n{item.name}: {item.container}, {item.duration:.1f} s, "
            f"{item.speakers or '?'} speaker(s), {len(item.prompts) or 'no'} prompts"
            + ("" if item.prompts else " (timing checks n/a)")
        )
        print(HEADER)
        for p in selected:
            print(row(p.label, scores[p.key]))
        print(versus(scores), flush=True)

    total: dict[str, Score] = {p.key: Score() for p in selected}
    for scores in per_file.values():
        for key, s in scores.items():
            total[key].add(s)
    print(f"\nTOTAL over {len(per_file)} files (WER, in-speech pooled; seconds summed)")
    print(HEADER)
    for p in selected:
        print(row(p.label, total[p.key]))
    print(versus(total))
    print_aims(per_file, total)
    if not args.no_overheads:
        print_overheads(env, model_dir, args.repeat)


if __name__ == "__main__":
    main()
