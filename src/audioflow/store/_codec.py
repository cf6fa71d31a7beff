"""One msgspec JSON encoder and one typed decoder per ``Job`` field.

Stores persist each record field on its own (the Redis hash holds one JSON value per
field), so a field is encoded, validated and decoded on its own too. A value that cannot
be decoded into its field's type surfaces as ``JobCorruptedError(job_id, field)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import numpy as np

from ..errors import JobCorruptedError
from ..records import Job, JobChanges

__all__ = [
    "FIELDS",
    "decode_changes",
    "decode_field",
    "decode_job",
    "encode_field",
    "encode_json",
    "normalize_values",
    "text_of",
]


def _enc_hook(obj: Any) -> Any:
    # numpy scalars (a transcriber's np.float64 times) are stored as plain numbers.
    if isinstance(obj, np.generic):
        return obj.item()
    raise NotImplementedError(f"cannot store objects of type {type(obj).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)

#: Record fields in declaration order.
FIELDS: tuple[str, ...] = Job.__struct_fields__

_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    f.name: msgspec.json.Decoder(f.type) for f in msgspec.structs.fields(Job)
}


def encode_field(name: str, value: Any) -> bytes:
    """Encode one field's value, refusing values that would not decode back.

    Raises:
        TypeError: the value is not of the field's type.
    """
    try:
        raw = _encoder.encode(value)
        _decoders[name].decode(raw)
    except (TypeError, msgspec.ValidationError) as exc:
        raise TypeError(f"job field {name!r}: {exc}") from None
    return raw


def encode_json(value: Any) -> bytes:
    """Plain msgspec JSON (for values that are not whole fields, e.g. a timestamp)."""
    return _encoder.encode(value)


def normalize_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The values as a persisting store would read them back (``TypeError`` if invalid).

    ``progress={"fraction": 0.5}`` becomes ``Progress(fraction=0.5)``, so the in-memory
    store holds exactly what the Redis store would return.
    """
    return {name: _decoders[name].decode(encode_field(name, v)) for name, v in fields.items()}


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
    for key, value in raw.items():
        name = text_of(key)
        if name in _decoders:  # skip internal (``_``-prefixed) and newer writers' fields
            values[name] = decode_field(job_id, name, value)
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
