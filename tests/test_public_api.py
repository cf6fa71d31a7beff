"""The public surface: what ``import audioflow`` offers, and what it does not pull in."""

from __future__ import annotations

import inspect
import subprocess
import sys

import audioflow


def test_every_exported_name_resolves_and_is_documented() -> None:
    assert len(set(audioflow.__all__)) == len(audioflow.__all__)
    for name in audioflow.__all__:
        obj = getattr(audioflow, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"audioflow.{name} has no docstring"


def test_import_does_not_require_optional_extras() -> None:
    code = (
        "import sys, audioflow; print(sorted(m for m in ('redis', 'pytest') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_redis_store_is_reachable_lazily() -> None:
    from audioflow.store.redis import RedisJobStore

    assert audioflow.RedisJobStore is RedisJobStore
