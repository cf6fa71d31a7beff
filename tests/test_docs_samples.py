"""The code samples of README.md and docs/ run as written.

Each ```python block runs in a fresh interpreter, in a scratch directory that holds
``examples/`` (the shipped sample), with ``HOME`` in a per-session directory (the
bundled model is assembled there once, never into the real ``~/.cache``). A sample
that names the local Redis (``redis://127.0.0.1:6379/0``) gets the test Redis and a key
prefix of its own, deleted afterwards.

``docs/custom-jobstore.md`` walks through a store shipped in the package: its excerpts
must be the shipped code (line for line, in order), its import list must import, and
its test module runs under pytest against the shipped store.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.redis_server import delete_prefix, redis_url

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    "README.md",
    "docs/index.md",
    "docs/pipeline.md",
    "docs/stages.md",
    "docs/rendering.md",
    "docs/service.md",
    "docs/workers.md",
    "docs/testing.md",
]
WALKTHROUGH = "docs/custom-jobstore.md"
SHIPPED_STORE = ROOT / "src/audioflow/testing/sqlite.py"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def _blocks(doc: str) -> list[str]:
    return _BLOCK.findall((ROOT / doc).read_text())


def _samples() -> list[tuple[str, int, str]]:
    return [(doc, i, code) for doc in DOCS for i, code in enumerate(_blocks(doc))]


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    yield home
    shutil.rmtree(home, ignore_errors=True)  # the assembled model is 145 MB


def _run(code: str, cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (cwd / "examples").symlink_to(ROOT / "examples")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "CI": "true"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    ("doc", "index", "code"), _samples(), ids=lambda v: str(v).splitlines()[0][:20]
)
def test_sample_runs(doc: str, index: int, code: str, tmp_path: Path, sample_home: Path) -> None:
    url = prefix = None
    if LOCAL_REDIS in code:
        url, prefix = redis_url(), f"test-docs-{uuid.uuid4().hex[:8]}:"
        # The sample's store, on the test Redis, under its own prefix.
        code = code.replace(
            f'RedisJobStore("{LOCAL_REDIS}")', f'RedisJobStore("{url}", prefix="{prefix}")'
        )
        assert LOCAL_REDIS not in code or url == LOCAL_REDIS, "a Redis URL left unpatched"
    try:
        done = _run(code, tmp_path, sample_home)
    finally:
        if url and prefix:
            delete_prefix(url, prefix)
    assert done.returncode == 0, f"{doc} sample {index} failed:\n{done.stderr}"


def _sample(doc: str, needle: str) -> str:
    [code] = [c for c in _blocks(doc) if needle in c]
    return code


def test_the_deepgram_sample_prints_the_retry_it_made(tmp_path: Path, sample_home: Path) -> None:
    done = _run(_sample("docs/testing.md", "FakeDeepgramServer"), tmp_path, sample_home)
    assert done.stdout.splitlines()[-1] == "[429, 200]"


def test_the_many_files_sample_reports_the_missing_file(tmp_path: Path, sample_home: Path) -> None:
    done = _run(_sample("docs/pipeline.md", "run_many"), tmp_path, sample_home)
    sample, missing = done.stdout.splitlines()
    assert re.fullmatch(r"examples/sample\.flac: [1-9]\d* segments", sample)
    assert missing == "missing.wav: DecodeError: missing.wav: no such file"


def test_the_rendering_sample_writes_captions(tmp_path: Path, sample_home: Path) -> None:
    done = _run(_sample("docs/rendering.md", "from_deepgram"), tmp_path, sample_home)
    assert done.returncode == 0, done.stderr
    srt = (tmp_path / "talk.srt").read_text()
    assert srt.startswith("1\n00:00:00,100 --> ")
    assert "Hello there." in srt and "Welcome to the show." in srt


# ------------------------------------------------------------------ the walkthrough


def _stripped(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_the_walkthrough_quotes_the_shipped_store_line_for_line() -> None:
    shipped = _stripped(SHIPPED_STORE.read_text())
    excerpts = [c for c in _blocks(WALKTHROUGH) if "class TestSqliteJobStore" not in c]
    excerpts = [c for c in excerpts if not c.lstrip().startswith("from audioflow import (")]
    assert len(excerpts) >= 10
    for code in excerpts:
        at = 0
        for line in _stripped(code):
            if line == "...":  # an elision
                continue
            assert line in shipped[at:], f"not in {SHIPPED_STORE.name} (in order): {line!r}"
            at = shipped.index(line, at) + 1


def test_the_walkthrough_imports_are_public_and_import(tmp_path: Path, sample_home: Path) -> None:
    code = _sample(WALKTHROUGH, "from audioflow import (")
    done = _run(code, tmp_path, sample_home)
    assert done.returncode == 0, done.stderr
    assert "._" not in code  # public names only


@pytest.mark.slow
def test_the_walkthrough_test_module_proves_the_shipped_store(tmp_path: Path) -> None:
    (tmp_path / "test_sqlite_store.py").write_text(_sample(WALKTHROUGH, "TestSqliteJobStore"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "anyio", "test_sqlite_store.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    # What the page says the reader will see.
    [claimed] = re.findall(r"^(\d+ passed, \d+ skipped)$", (ROOT / WALKTHROUGH).read_text(), re.M)
    assert summary.startswith(claimed + " in "), summary
