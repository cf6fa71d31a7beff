"""The public surface: what ``import audioflow`` offers, and what it does not pull in."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

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


def test_backends_import_by_name_from_their_package_without_their_extras() -> None:
    from audioflow.transcribers import DeepgramTranscriber, WhisperTranscriber

    assert audioflow.WhisperTranscriber is WhisperTranscriber
    assert audioflow.DeepgramTranscriber is DeepgramTranscriber
    # Lazily: importing the package pulls in neither backend nor its dependencies.
    code = (
        "import sys, audioflow.transcribers; "
        "print(sorted(m for m in ('faster_whisper', 'deepgram', 'audioflow.transcribers.whisper',"
        " 'audioflow.transcribers.deepgram') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import audioflow.transcribers as package

    with pytest.raises(AttributeError, match="NoSuchTranscriber"):
        package.NoSuchTranscriber  # noqa: B018


def test_all_is_exactly_the_public_surface() -> None:
    import types

    # Every public, non-module name a user can reach is listed, and nothing else is:
    # a name added without an __all__ entry (or left in __all__ after removal) fails.
    import_helpers = {"Any", "TYPE_CHECKING", "annotations"}
    for module in (audioflow, audioflow.transcribers):
        public = {
            name
            for name in dir(module)
            if not name.startswith("_")
            and name not in import_helpers
            and not isinstance(getattr(module, name), types.ModuleType)
        }
        lazy = {"RedisJobStore", "DeepgramTranscriber", "WhisperTranscriber"}
        dunders = {"__version__"} & set(module.__all__)
        assert public | (lazy & set(module.__all__)) | dunders == set(module.__all__)
