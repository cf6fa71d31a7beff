"""``audioflow transcribe``'s progress (bars in a pseudo-terminal, plain lines in a pipe)
and standard input.

A real process on two files, with the worker tests' transcriber (0.5 s a window, so
transcription lasts a few seconds and the bars are caught moving).
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parent / "workers"
sys.path.insert(0, str(WORKERS))
from worker_procs import burst_media  # noqa: E402

COMMAND = [sys.executable, "-c", "import sys; from audioflow.cli import main; sys.exit(main())"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

pytestmark = pytest.mark.slow


def _args(tmp_path: Path) -> list[str]:
    files = [burst_media(tmp_path / f"{name}.wav", count=16) for name in ("a", "b")]
    return [
        *COMMAND,
        "transcribe",
        *map(str, files),
        "--out",
        str(tmp_path / "out"),
        "--transcriber",
        "worker_transcriber:make",
        "--format",
        "txt",
    ]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(WORKERS), *sys.path]),
        "AF_TEST_PAUSE": "0.5",
        "COLUMNS": "120",
        "TERM": "xterm-256color",
    }


def test_a_terminal_gets_a_bar_per_file_that_moves_during_transcription(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        _args(tmp_path), stdin=follower, stdout=follower, stderr=follower, env=_env()
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    screen = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    frames = re.split(r"[\r\n]+", screen)
    bars = [f for f in frames if "━" in f]
    # One bar per file, each with its stage, elapsed time and time left.
    for name in ("a.wav", "b.wav"):
        mine = [f for f in bars if f.startswith(name)]
        assert mine, screen[-2000:]
        assert any(re.search(r"\d+%\s+transcribe\s+\d:\d\d:\d\d left", f) for f in mine)
        # Seen part-way through transcription, before the file was done.
        done_at = screen.index(f"{name}: done -> ")
        moving = [
            m.start()
            for m in re.finditer(re.escape(name) + r"\s+\S+\s+(\d+)%\s+transcribe", screen)
            if 30 < int(m.group(1)) < 100
        ]
        assert moving and moving[0] < done_at, screen[-2000:]
    assert re.search(r"2 files, 1 min 17 s of audio in [\d.]+ s \([\d.]+x real time\)", screen)


def test_a_pipe_gets_plain_lines(tmp_path: Path) -> None:
    done = subprocess.run(_args(tmp_path), capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert not ANSI.search(done.stderr) and "━" not in done.stderr
    text = done.stderr
    for name in ("a\\.wav", "b\\.wav"):
        assert re.search(rf"^{name}: job \w+$", text, re.M), text
        assert re.search(rf"^{name}: transcribe \d+%$", text, re.M), text
        assert re.search(rf"^{name}: done -> ", text, re.M), text
    assert text.splitlines()[-1].startswith("2 files, ")


def test_standard_input_is_transcribed_as_stdin(tmp_path: Path) -> None:
    media = burst_media(tmp_path / "piped.wav", count=4)
    out = tmp_path / "out"
    args = [*COMMAND, "transcribe", "-", "--out", str(out), "--format", "txt"]
    args += ["--transcriber", "worker_transcriber:make"]
    with media.open("rb") as stdin:
        done = subprocess.run(
            args, stdin=stdin, capture_output=True, text=True, env=_env(), timeout=60
        )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^stdin: done -> ", done.stderr, re.M)
    assert len((out / "stdin.txt").read_text().split()) >= 4
    # The spooled copy is gone with the command.
    assert not list(Path(tempfile.gettempdir()).glob("audioflow-stdin-*"))
