"""The code samples of the docs run as written (each ```python block, in a fresh
interpreter, in a scratch directory). Files are added here as their samples are made
self-contained."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["docs/testing.md"]
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def _samples() -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        for i, code in enumerate(_BLOCK.findall((ROOT / doc).read_text())):
            out.append((doc, i, code))
    return out


@pytest.mark.parametrize(("doc", "index", "code"), _samples(), ids=lambda v: str(v)[:20])
def test_sample_runs(doc: str, index: int, code: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{doc} sample {index} failed:\n{done.stderr}"


def test_the_deepgram_sample_prints_the_retry_it_made() -> None:
    [(_, _, code)] = [s for s in _samples() if "FakeDeepgramServer" in s[2]]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "[429, 200]"
