"""Fixtures for pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from burst_media import bursts, write_bursts


@pytest.fixture
def burst_file(tmp_path: Path) -> tuple[Path, list[tuple[int, float, float]]]:
    """25 s of FLAC with ten tone bursts at known times."""
    plan = bursts(400)
    return write_bursts(tmp_path / "bursts.flac", plan, 25.0), plan
