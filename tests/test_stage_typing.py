"""Stage wiring is checked by the type checker: a chain whose stages disagree fails mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

SNIPPET = """
from audioflow.stages import Decode, DetectSpeech, Quality, Transcribe, run_stages
from audioflow.testing.transcribers import BurstTranscriber

async def good() -> None:
    segments = await run_stages(
        ["a.wav"], Decode(), Quality(), DetectSpeech(), Transcribe(BurstTranscriber())
    )
    reveal_type(segments)

async def bad() -> None:
    await run_stages(["a.wav"], Decode(), DetectSpeech(), Quality())
"""


@pytest.mark.slow
def test_mypy_checks_each_link_of_a_chain(tmp_path: Path) -> None:
    module = tmp_path / "chain.py"
    module.write_text(SNIPPET)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(module),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = out.stdout.splitlines()
    # The well-wired chain's result is typed by its last stage...
    assert any('Revealed type is "list[audioflow.records.TranscriptSegment]"' in x for x in lines)
    # ...and the mis-wired one (speech segments fed to Quality) is an error, on its line.
    errors = [x for x in lines if ": error:" in x]
    assert len(errors) == 1, out.stdout
    assert errors[0].startswith(f"{module}:12:")
