"""Shared fixtures: the anyio backends every async test runs on, hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# CI runs are derandomized so that a landing never depends on luck; locally hypothesis
# explores new examples each run (and prints the seed of any failure).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, print_blob=True)
_default_profile = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every ``@pytest.mark.anyio`` test runs on asyncio and on trio."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def asyncio_only(anyio_backend: tuple[str, dict[str, object]]) -> None:
    """Skip on trio: for code bound to asyncio (redis-py's asyncio client)."""
    if anyio_backend[0] != "asyncio":
        pytest.skip("redis.asyncio runs on asyncio only")
