"""One msgspec JSON encoder and one typed decoder per ``Job`` field.

Stores persist each record field on its own (the Redis hash holds one JSON value per
field), so a field is checked, encoded and decoded on its own too:

* :func:`encode_field` refuses a value of the wrong type (``TypeError``, also for values
  that msgspec would silently turn into another type, such as ``bytes`` for a ``str``
  field), a value out of range (``ValueError``: a ``fraction`` outside 0..1, negative
  ``attempts``, a naive datetime, NaN or infinity) and a value larger than the store's
  per-field limit (``JobTooLargeError``).
* A value that cannot be decoded into its field's type surfaces as
  ``JobCorruptedError(job_id, field)``.

The checkpoint is stored as one field per window (``checkpoint:<index>``) beside a
``checkpoint`` field that holds only its key, so that adding a window costs that window
only; :func:`decode_job` puts it back together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from ..errors import JobCorruptedError, JobTooLargeError
from ..records import Checkpoint, Job, JobChanges, WindowTranscript

__all__ = [
    "FIELDS",
    "WINDOW_PREFIX",
    "checkpoint_parts",
    "decode_changes",
    "decode_field",
    "decode_job",
    "encode_checkpoint_key",
    "encode_field",
    "encode_json",
    "encode_window",
    "normalize_values",
    "text_of",
    "typed_checkpoint",
]


def _enc_hook(obj: Any) -> Any:
    # numpy scalars (a transcriber's np.float64 times) are stored as plain numbers.
    if isinstance(obj, np.generic):
        return obj.item()
    raise NotImplementedError(f"cannot store objects of type {type(obj).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)

#: Record fields in declaration order.
FIELDS: tuple[str, ...] = Job.__struct_fields__
#: Hash fields holding one checkpoint window each: ``checkpoint:<index>``.
WINDOW_PREFIX = "checkpoint:"

_types: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(Job)}
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(t) for name, t in _types.items()
}
_window_decoder = msgspec.json.Decoder(WindowTranscript)
# Kept as themselves by to_builtins, so that convert() judges their type: bytes given
# for a str field is refused instead of being stored as base64 text.
_BUILTIN = (bytes, bytearray, memoryview, datetime)


def _typed(name: str, value: Any) -> Any:
    """``value`` as the field's type, checked all the way down (``TypeError`` if not)."""
    try:
        plain = msgspec.to_builtins(value, builtin_types=_BUILTIN, enc_hook=_enc_hook)
        return msgspec.convert(plain, _types[name])
    except (TypeError, NotImplementedError, msgspec.ValidationError) as exc:
        raise TypeError(f"job field {name!r}: {exc}") from None


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(
            f"job field {name!r}: naive datetime {value.isoformat()}; "
            "use a timezone-aware (UTC) datetime"
        )


def _check_range(name: str, value: Any) -> None:
    """The rules a value's type cannot express (``ValueError``)."""
    if name == "progress":
        fraction = value.fraction
        if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
            raise ValueError(f"job field 'progress': fraction must be within 0..1, not {fraction}")
        _aware(name, value.updated_at)
    elif name == "attempts" and value < 0:
        raise ValueError(f"job field 'attempts' must not be negative, not {value}")
    elif name in ("created_at", "started_at", "finished_at"):
        _aware(name, value)
    elif name == "lease" and value is not None:
        _aware(name, value.expires_at)


def _encode_checked(name: str, typed: Any) -> bytes:
    raw = _encoder.encode(typed)
    try:  # NaN and infinity encode as null, which no float field accepts back
        _decoders[name].decode(raw) if name in _decoders else _window_decoder.decode(raw)
    except msgspec.ValidationError:
        raise ValueError(
            f"job field {name!r}: not representable as JSON (a NaN or infinite number?)"
        ) from None
    return raw


def _limit(job_id: str, name: str, raw: bytes, limit: int | None) -> bytes:
    if limit is not None and len(raw) > limit:
        raise JobTooLargeError(job_id, name, len(raw), limit)
    return raw


def encode_field(name: str, value: Any, *, job_id: str = "", limit: int | None = None) -> bytes:
    """Check and encode one field's value.

    Raises:
        TypeError: the value is not of the field's type.
        ValueError: the value is out of range.
        JobTooLargeError: its JSON is longer than ``limit`` bytes.
    """
    typed = _typed(name, value)
    _check_range(name, typed)
    return _limit(job_id, name, _encode_checked(name, typed), limit)


def encode_window(window: Any, *, job_id: str = "", limit: int | None = None) -> bytes:
    """Check and encode one checkpoint window (a :class:`WindowTranscript`)."""
    try:
        plain = msgspec.to_builtins(window, builtin_types=_BUILTIN, enc_hook=_enc_hook)
        typed = msgspec.convert(plain, WindowTranscript)
    except (TypeError, NotImplementedError, msgspec.ValidationError) as exc:
        raise TypeError(f"checkpoint window: {exc}") from None
    if typed.index < 0:
        raise ValueError(f"checkpoint window index must not be negative, not {typed.index}")
    return _limit(job_id, "checkpoint", _encode_checked("window", typed), limit)


def encode_checkpoint_key(key: str) -> bytes:
    """The ``checkpoint`` field of a checkpoint whose windows are stored apart."""
    if not isinstance(key, str):
        raise TypeError(f"checkpoint key must be a str, not {type(key).__name__}")
    return _encoder.encode(Checkpoint(key=key))


def typed_checkpoint(value: Any) -> Checkpoint:
    """A checkpoint value checked, with its windows in index order (last one wins)."""
    checkpoint: Checkpoint = _typed("checkpoint", value)
    by_index = {w.index: w for w in checkpoint.windows}
    ordered = tuple(by_index[i] for i in sorted(by_index))
    if ordered != checkpoint.windows:
        checkpoint = msgspec.structs.replace(checkpoint, windows=ordered)
    return checkpoint


def checkpoint_parts(
    checkpoint: Checkpoint | None, *, job_id: str = "", limit: int | None = None
) -> list[tuple[str, bytes]]:
    """The hash fields that store ``checkpoint``: its key, then one per window."""
    if checkpoint is None:
        return [("checkpoint", b"null")]
    checkpoint = typed_checkpoint(checkpoint)
    parts = [("checkpoint", encode_checkpoint_key(checkpoint.key))]
    for window in checkpoint.windows:
        raw = encode_window(window, job_id=job_id, limit=limit)
        parts.append((f"{WINDOW_PREFIX}{window.index}", raw))
    return parts


def encode_json(value: Any) -> bytes:
    """Plain msgspec JSON (for values that are not whole fields, e.g. a timestamp)."""
    return _encoder.encode(value)


def normalize_values(
    fields: Mapping[str, Any], *, job_id: str = "", limit: int | None = None
) -> dict[str, tuple[Any, dict[str, int]]]:
    """Each value as a persisting store would read it back, with its stored parts' sizes.

    ``progress={"fraction": 0.5}`` becomes ``Progress(fraction=0.5)``, so the in-memory
    store holds exactly what the Redis store would return. The sizes map each stored
    part (the field itself; for ``checkpoint`` also one ``checkpoint:<index>`` per
    window) to its bytes of JSON. Raises as :func:`encode_field`.
    """
    out = {}
    for name, value in fields.items():
        if name == "checkpoint":
            parts = checkpoint_parts(value, job_id=job_id, limit=limit)
            typed = None if value is None else typed_checkpoint(value)
            out[name] = (typed, {part: len(raw) for part, raw in parts})
        else:
            raw = encode_field(name, value, job_id=job_id, limit=limit)
            out[name] = (_decoders[name].decode(raw), {name: len(raw)})
    return out


def decode_field(job_id: str, name: str, raw: bytes | str) -> Any:
    try:
        return _decoders[name].decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise JobCorruptedError(job_id, name, str(exc)) from exc


def text_of(key: bytes | str) -> str:
    """A Redis reply as ``str``, whether the client decodes responses or not."""
    return key.decode() if isinstance(key, bytes) else key


def _decode_known(job_id: str, raw: Mapping[Any, Any]) -> dict[str, Any]:
    values = {}
    windows: list[WindowTranscript] = []
    for key, value in raw.items():
        name = text_of(key)
        if name in _decoders:  # skip internal (``_``-prefixed) and newer writers' fields
            values[name] = decode_field(job_id, name, value)
        elif name.startswith(WINDOW_PREFIX):
            try:
                windows.append(_window_decoder.decode(value))
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise JobCorruptedError(job_id, name, str(exc)) from exc
    checkpoint = values.get("checkpoint")
    if checkpoint is not None and windows:
        merged = {w.index: w for w in checkpoint.windows}  # windows stored inline (older)
        merged.update((w.index, w) for w in windows)
        values["checkpoint"] = msgspec.structs.replace(
            checkpoint, windows=tuple(merged[i] for i in sorted(merged))
        )
    return values


def decode_job(job_id: str, raw: Mapping[Any, Any]) -> Job:
    """Build a ``Job`` from a mapping of field name to JSON (bytes or str keys/values).

    Missing fields take their defaults (records written by older versions).
    """
    values = _decode_known(job_id, raw)
    values["id"] = job_id
    return Job(**values)


def decode_changes(job_id: str, raw: Mapping[Any, Any], skip: Iterable[str] = ()) -> JobChanges:
    values = _decode_known(job_id, raw)
    for name in ("id", "status", "version", *skip):
        values.pop(name, None)
    return JobChanges(**values)
