"""The ``audioflow`` command, run as a user runs it: the installed script, in a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pysubs2
import pytest

import audioflow
from audioflow import Job, JobError, JobStatus, RedisJobStore
from audioflow.cli import output_path
from audioflow.errors import AudioflowError
from audioflow.render import parse_json
from support.redis_server import delete_prefix, redis_url
from support.speech import wer

COMMAND = shutil.which("audioflow", path=str(Path(sys.executable).parent)) or "audioflow"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"audioflow {audioflow.__version__}"


SAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "sample.flac")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("transcribe",), "FILE"),
        (("transcribe", SAMPLE, "--format", "srt,docx"), "docx"),
        (("transcribe", SAMPLE, "--store", "postgres://nope"), "--store"),
        (("transcribe", SAMPLE, "--concurrency", "0"), "--concurrency"),
        (("transcribe", SAMPLE, "--max-line-width", "0"), "--max-line-width"),
        (("transcribe", SAMPLE, "--highlight_words", "maybe"), "maybe"),
        (("transcribe", SAMPLE, "--beam_size", "0"), "--beam-size must be at least 1"),
        (("transcribe", SAMPLE, "--batch-size", "0"), "--batch-size must be at least 1"),
        (("transcribe", SAMPLE, "--threads", "-1"), "--threads must be at least 0"),
        (
            ("transcribe", SAMPLE, "--transcriber", "deepgram", "--beam-size", "2"),
            "--beam-size: Whisper's settings, not deepgram's",
        ),
        (("transcribe", SAMPLE, "--language", "xx"), "not a language Whisper knows"),
        (("transcribe", SAMPLE, "--task", "summarize"), "invalid choice"),
        (("transcribe", SAMPLE, "--diarize"), "--diarize needs a transcriber"),
        (("transcribe", "-", "-"), "can be given once"),
        (("transcribe", SAMPLE, "--vad_onset", "1.5"), "--vad-threshold must be between 0"),
        (("transcribe", SAMPLE, "--min-silence", "-1"), "durations must be >= 0"),
        (("transcribe", str(Path(SAMPLE).parent)), "is a folder; give the files in it, or"),
        (
            ("transcribe", SAMPLE, "--transcriber", "deepgram", "--task", "translate"),
            "--task: Whisper's settings",
        ),
        (("transcribe", SAMPLE, "--resume"), "need a store that outlives the command"),
        (
            ("transcribe", SAMPLE, SAMPLE, "--job-id", "j1", "--store", "redis://127.0.0.1:1"),
            "--job-id names one job",
        ),
        (("transcribe", SAMPLE, "--job-id", "j1", "--resume"), "not allowed with"),
        (("frobnicate",), "frobnicate"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path / "home")}
    if args[0] == "transcribe":
        out = run(*args, "--out", str(tmp_path / "out"), env=home)
    else:
        out = run(*args, env=home)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert says in out.stderr
    assert not (tmp_path / "out").exists()
    # The model starts loading only once every input is checked: a refused command
    # never builds the model cache.
    assert not (tmp_path / "home" / ".cache").exists()


@pytest.mark.parametrize(
    ("given", "transcriber", "code"),
    [
        ("en", "whisper", "en"),
        ("EN", "whisper", "en"),
        ("english", "whisper", "en"),
        ("Deutsch", "whisper", "de"),  # a name in its own language
        ("en-US", "whisper", "en"),  # a tag: its language
        ("javanese", "whisper", "jw"),  # Whisper's own code, not ISO's jv
        ("mandarin", "whisper", "zh"),
        ("yue", "whisper", "yue"),
        ("en-us", "deepgram", "en-US"),
        ("english", "deepgram", "en"),
        ("anything", "mymodule:factory", "anything"),  # a custom transcriber decides
    ],
)
def test_languages_by_code_or_name(given: str, transcriber: str, code: str) -> None:
    from audioflow.cli import resolve_language

    assert resolve_language(given, transcriber) == code


@pytest.mark.parametrize(
    ("given", "transcriber"), [("xx", "whisper"), ("klingon", "whisper"), ("xx", "deepgram")]
)
def test_unknown_languages_are_usage_errors(given: str, transcriber: str) -> None:
    from audioflow.cli import UsageError, resolve_language

    with pytest.raises(UsageError, match="--language"):
        resolve_language(given, transcriber)


def test_recursive_takes_the_media_files_of_a_folder(tmp_path: Path) -> None:
    from audioflow.cli import UsageError, expand_folders, plan_outputs

    (tmp_path / "talks" / "day2").mkdir(parents=True)
    for name in ("talks/a.flac", "talks/day2/b.MP4", "talks/day2/a.wav"):
        (tmp_path / name).write_bytes(b"media")
    (tmp_path / "talks" / "notes.txt").write_text("not media")
    alone = tmp_path / "c.mp3"
    alone.write_bytes(b"media")
    files = expand_folders([tmp_path / "talks", alone])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "talks/a.flac",
        "talks/day2/a.wav",
        "talks/day2/b.MP4",
        "c.mp3",
    ]
    # Two a.* in different folders: refused before any work, unless named apart.
    with pytest.raises(UsageError, match="would both write"):
        plan_outputs(files, tmp_path / "out", ["txt"])
    names = plan_outputs(files, tmp_path / "out", ["txt"], "{parent}-{stem}")
    assert names == ["talks-a", "day2-a", "day2-b", f"{tmp_path.name}-c"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no audio or video files"):
        expand_folders([tmp_path / "empty"])


def test_speech_detection_flags_go_over_the_transcribers_rules() -> None:
    import argparse

    from audioflow.cli import _speech_rules
    from audioflow.testing.transcribers import BurstTranscriber
    from audioflow.vad import SegmentRules

    class Whisperish(BurstTranscriber):
        speech_rules = SegmentRules(min_speech=0.0, min_silence=0.16, padding=0.4)

    flags = {"vad_threshold": None, "vad_neg_threshold": None, "min_silence": None}
    none = argparse.Namespace(**flags, speech_pad=None)
    assert _speech_rules(none, Whisperish()) is None  # the pipeline's own choice stands
    some = argparse.Namespace(**{**flags, "vad_threshold": 0.6}, speech_pad=0.2)
    assert _speech_rules(some, Whisperish()) == SegmentRules(
        threshold=0.6, min_speech=0.0, min_silence=0.16, padding=0.2
    )


def test_deepgram_without_key_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEEPGRAM_API_KEY"}
    out = subprocess.run(
        [COMMAND, "transcribe", str(EXAMPLES / "sample.flac"), "--transcriber", "deepgram"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 2
    assert "DEEPGRAM_API_KEY" in out.stderr


def test_status_reads_a_job_from_redis() -> None:
    prefix = f"audioflow-test:{os.urandom(6).hex()}:"

    async def seed() -> None:
        async with RedisJobStore(redis_url(), prefix=prefix) as store:
            await store.create(Job(id="cli-1", source="talk.mp3"))
            await store.transition("cli-1", JobStatus.RUNNING)
            await store.transition(
                "cli-1",
                JobStatus.FAILED,
                error=JobError(type="CorruptMediaError", message="talk.mp3: no audio"),
            )

    try:
        anyio.run(seed)
        out = run("status", "cli-1", "--store", redis_url(), "--prefix", prefix)
        assert out.returncode == 0, out.stderr
        assert "status:   failed" in out.stdout
        assert "CorruptMediaError: talk.mp3: no audio" in out.stdout
        missing = run("status", "nope", "--store", redis_url(), "--prefix", prefix)
        assert missing.returncode == 1
        assert "no job 'nope'" in missing.stderr
    finally:
        delete_prefix(redis_url(), prefix)


def test_status_lists_the_most_recent_jobs_or_pages_from_the_oldest() -> None:
    from datetime import UTC, datetime, timedelta

    prefix = f"audioflow-test:{os.urandom(6).hex()}:"
    start = datetime(2030, 1, 1, tzinfo=UTC)

    async def seed() -> None:
        async with RedisJobStore(redis_url(), prefix=prefix) as store:
            for i in range(7):
                job = Job(id=f"j{i}", source=f"t{i}.mp3", created_at=start + timedelta(minutes=i))
                await store.create(job)

    def listed(*more: str) -> list[str]:
        out = run("status", "--store", redis_url(), "--prefix", prefix, *more)
        assert out.returncode == 0, out.stderr
        return [line.split()[0] for line in out.stdout.splitlines()]

    try:
        anyio.run(seed)
        assert listed("--limit", "3") == ["j4", "j5", "j6"]  # the most recent, newest last
        assert listed("--limit", "3", "--oldest") == ["j0", "j1", "j2"]
    finally:
        delete_prefix(redis_url(), prefix)


def test_output_paths_stay_inside_the_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert output_path(out, Path("/data/talk.mp3"), "srt") == out / "talk.srt"
    assert output_path(out, Path(".."), "srt").parent == out  # a name, not a way up
    # A link planted in the output directory must not redirect a write elsewhere.
    (tmp_path / "elsewhere").mkdir()
    (out / "evil.srt").symlink_to(tmp_path / "elsewhere" / "passwd")
    with pytest.raises(AudioflowError, match="outside"):
        output_path(out, Path("evil.wav"), "srt")


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
def test_transcribes_the_shipped_sample_offline(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "transcribe",
        str(EXAMPLES / "sample.flac"),
        "--out",
        str(out),
        "--model-cache",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "sample.json",
        "sample.md",
        "sample.srt",
        "sample.txt",
        "sample.vtt",
    ]
    srt = (out / "sample.srt").read_text()
    assert srt.startswith("1\n00:00:")
    assert (out / "sample.vtt").read_text().startswith("WEBVTT")
    transcript = parse_json((out / "sample.json").read_text())
    heard = " ".join(w.text for s in transcript.segments for w in s.words)
    # The language was detected, and the transcript and the command say how surely.
    assert (transcript.language, transcript.language_source) == ("en", "detected")
    assert transcript.language_probability is not None
    assert 0.5 < transcript.language_probability <= 1.0
    assert f"(en, detected {transcript.language_probability:.2f})" in result.stderr
    assert wer((EXAMPLES / "sample.txt").read_text(), heard) <= 0.25
    # The captions end with the media (16.47 s), not a linger after it, and the cue
    # that ran across "...quick start." and the pause after it is cut there.
    events = pysubs2.SSAFile.from_string(srt, format_="srt")
    assert transcript.duration is not None
    assert events[-1].end <= round(transcript.duration * 1000)
    assert not any("start. The" in e.plaintext.replace("\n", " ") for e in events)

    # WhisperX's caption flags, by WhisperX's names.
    narrow = tmp_path / "narrow"
    result = run(
        "transcribe",
        str(EXAMPLES / "sample.flac"),
        "--out",
        str(narrow),
        "--format",
        "srt,json",
        "--model-cache",
        str(tmp_path / "cache"),
        "--max_line_width",
        "24",
        "--highlight_words",
        "True",
        "--language",
        "english",
    )
    assert result.returncode == 0, result.stderr
    blocks = pysubs2.SSAFile.from_string((narrow / "sample.srt").read_text(), format_="srt")
    assert len(blocks) == len(heard.split())  # one block per word
    given = parse_json((narrow / "sample.json").read_text())
    assert (given.language, given.language_source, given.language_probability) == (
        "en",
        "given",
        None,
    )
    assert "(en, given)" in result.stderr
    for block in blocks:
        assert block.text.count("{\\u1}") == 1  # pysubs2 reads <u> as underline
        assert all(len(line) <= 24 for line in block.plaintext.split("\n"))


@pytest.mark.slow
def test_the_command_killed_while_its_model_loads_leaves_no_model_and_the_next_run_works(
    tmp_path: Path,
) -> None:
    import hashlib
    import signal
    import time

    from audioflow.transcribers._whisper_model import BUNDLED_INT8_SHA256, BUNDLED_MODEL_SHA256

    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["transcribe", str(EXAMPLES / "sample.flac"), "--out", str(out)]
    args += ["--model-cache", str(cache), "--language", "en"]
    model = cache / "models" / f"whisper-base-{BUNDLED_MODEL_SHA256[:16]}-int8"
    child = subprocess.Popen(
        [COMMAND, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # The background load (started once the inputs are checked) is building the
        # model's int8 copy: its temporary file exists.
        deadline = time.monotonic() + 120
        while not list(model.glob(".model.bin.*.tmp")) and child.poll() is None:
            assert time.monotonic() < deadline, "the command never started its load"
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL  # killed mid-load, not finished
    assert not (model / "model.bin").exists()  # no partial model in place
    assert not out.exists() or list(out.iterdir()) == []  # no partial outputs

    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "sample.json",
        "sample.md",
        "sample.srt",
        "sample.txt",
        "sample.vtt",
    ]
    heard = " ".join(
        w.text for s in parse_json((out / "sample.json").read_text()).segments for w in s.words
    )
    assert wer((EXAMPLES / "sample.txt").read_text(), heard) <= 0.25
    # The model was built whole, and the killed build's temporary file is gone.
    with (model / "model.bin").open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == BUNDLED_INT8_SHA256
    assert [p.name for p in model.iterdir() if p.name.endswith(".tmp")] == []


def test_inputs_and_outputs_are_checked_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    first, second = tmp_path / "d1" / "x.flac", tmp_path / "d2" / "x.mp4"
    for path in (first, second):
        path.write_bytes((EXAMPLES / "sample.flac").read_bytes())
    out = tmp_path / "out"

    def refused(*args: str) -> str:
        result = run("transcribe", *args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert not out.exists()  # nothing was made before the refusal
        return result.stderr

    # Same stem: the second would overwrite the first.
    message = refused(str(first), str(second), "--out", str(out))
    assert f"{first} and {second} would both write {out / 'x'}.*" in message
    assert "--output-name" in message
    assert "no such file" in refused(str(first), str(tmp_path / "nope.wav"), "--out", str(out))
    assert "not a folder" in refused(str(first), "--out", str(first))
    assert "unknown field {size}" in refused(
        str(first), "--out", str(out), "--output-name", "{size}"
    )
    assert "not a name" in refused(str(first), "--out", str(out), "--output-name", "a/{stem}")


@pytest.mark.slow
def test_an_output_name_template_keeps_same_stem_inputs_apart(tmp_path: Path) -> None:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    for folder in ("d1", "d2"):
        (tmp_path / folder / "x.flac").write_bytes((EXAMPLES / "sample.flac").read_bytes())
    out = tmp_path / "out"
    result = run(
        "transcribe",
        str(tmp_path / "d1" / "x.flac"),
        str(tmp_path / "d2" / "x.flac"),
        "--out",
        str(out),
        "--format",
        "txt",
        "--output-name",
        "{parent}-{stem}",
        "--model-cache",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["d1-x.txt", "d2-x.txt"]
    # Progress names each file by its path (they share a name), and a summary ends it.
    assert f"{tmp_path / 'd1' / 'x.flac'}: done -> {out}/d1-x.*" in result.stderr
    assert re.search(r"^2 files, 32\.\d s of audio in .* real time\)$", result.stderr, re.M)


def test_bad_file_is_one_line_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n")
    result = run(
        "transcribe", str(bad), "--out", str(tmp_path), "--model-cache", str(tmp_path / "c")
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failures = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert len(failures) == 1
    assert failures[0].startswith("notes.wav: failed: ") and "Error" in failures[0]
    assert result.stderr.splitlines()[-1].endswith("; 1 failed")
    assert list(tmp_path.glob("notes.*")) == [bad]


def test_the_command_limits_malloc_arenas_unless_the_operator_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from audioflow import cli

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert cli._limit_malloc_arenas() is True
    assert os.environ["MALLOC_ARENA_MAX"] == "1"  # inherited by worker processes
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert cli._limit_malloc_arenas() is False
    assert os.environ["MALLOC_ARENA_MAX"] == "8"
