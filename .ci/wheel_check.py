"""Checks run by .ci/run on the built wheel, in a fresh venv with only the core installed.

python wheel_check.py contents WHEEL   # py.typed, licence, metadata, one version
python wheel_check.py core             # imports; each backend names its extra
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from email.parser import Parser


def contents(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "audioflow/py.typed" in names, "py.typed missing"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE missing"
    assert not any(n.startswith(("tests/", "bench/")) for n in names), "tests in the wheel"
    assert any(n.startswith("audioflow/store/lua/") for n in names), "Lua scripts missing"
    [meta_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
    assert meta["License-Expression"] == "MIT", meta["License-Expression"]
    assert meta.get_all("Classifier"), "no classifiers"
    assert meta["Requires-Python"] == ">=3.11"
    version = meta["Version"]
    source = zipfile.ZipFile(wheel).read("audioflow/_version.py").decode()
    assert f'__version__ = "{version}"' in source, "the version has two sources"
    print(f"wheel contents ok: {len(names)} files, version {version}")


def _missing(label: str, extra: str, attempt: Callable[[], object]) -> None:
    """``attempt`` must raise MissingDependencyError naming ``audioflow[extra]``."""
    from audioflow.errors import MissingDependencyError

    message = None
    try:
        attempt()
    except MissingDependencyError as exc:
        message = str(exc)
    assert message is not None, f"{label} worked without the {extra} extra"
    assert f"audioflow[{extra}]" in message, message
    print(f"{label}: {message}")


def core() -> None:
    import audioflow
    from audioflow import MemoryJobStore, Pipeline  # noqa: F401
    from audioflow.vad import make_backend

    assert audioflow.__version__
    # The backends are reachable by name; using one without its extra names the extra.
    _missing("WhisperTranscriber", "whisper", lambda: audioflow.WhisperTranscriber())
    _missing("DeepgramTranscriber", "deepgram", lambda: audioflow.DeepgramTranscriber("k" * 40))
    _missing("RedisJobStore", "redis", lambda: audioflow.RedisJobStore("redis://127.0.0.1:1"))
    _missing("silero speech detection", "vad", lambda: make_backend("silero"))
    _missing("webrtc speech detection", "vad", lambda: make_backend("webrtc"))
    _missing("audioflow.service", "service", lambda: __import__("audioflow.service"))
    _missing("audioflow.dramatiq", "dramatiq", lambda: __import__("audioflow.dramatiq"))
    print("core install ok")


if __name__ == "__main__":
    {"contents": lambda: contents(sys.argv[2]), "core": core}[sys.argv[1]]()
