"""API keys: parsing, lookup, and the per-key limits (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioflow import ConfigurationError
from audioflow.service import ApiKey, keys_from_env, parse_keys
from audioflow.service._auth import KeyRing, Limited

A = "a" * 20
B = "b" * 20


def test_entries_parse_from_commas_lines_and_comments() -> None:
    keys = parse_keys(f"# clients\nalice:{A}:hook-secret, bob:{B}\n\n")
    assert [(k.name, k.key, k.webhook_secret) for k in keys] == [
        ("alice", A, "hook-secret"),
        ("bob", B, None),
    ]
    for bad in ("alice", f"alice:{A}:s:extra", "alice:short"):
        with pytest.raises(ConfigurationError):
            parse_keys(bad)


def test_a_key_never_shows_in_its_repr_or_errors() -> None:
    key = ApiKey(name="alice", key=A, webhook_secret="hook-secret")
    assert A not in repr(key) and "hook-secret" not in repr(key)
    with pytest.raises(ConfigurationError) as info:
        parse_keys("alice:tooshortkey")
    assert "tooshortkey" not in str(info.value)
    assert A not in repr(KeyRing([key]))


def test_keys_from_the_environment_or_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUDIOFLOW_API_KEYS", f"alice:{A}")
    monkeypatch.delenv("AUDIOFLOW_API_KEYS_FILE", raising=False)
    assert [k.name for k in keys_from_env()] == ["alice"]
    file = tmp_path / "keys"
    file.write_text(f"bob:{B}\n")
    monkeypatch.setenv("AUDIOFLOW_API_KEYS_FILE", str(file))
    assert [k.name for k in keys_from_env()] == ["bob"]
    monkeypatch.setenv("AUDIOFLOW_API_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="cannot read"):
        keys_from_env()


def test_lookup_finds_exactly_the_presented_key() -> None:
    ring = KeyRing([ApiKey(name="alice", key=A), ApiKey(name="bob", key=B)])
    found = ring.find(A)
    assert found is not None and found.name == "alice"
    assert ring.find(B[:-1]) is None and ring.find("") is None and ring.find(None) is None
    with pytest.raises(ConfigurationError, match="same name"):
        KeyRing([ApiKey(name="x", key=A), ApiKey(name="x", key=B)])


def test_active_jobs_and_upload_bytes_are_limited_per_key() -> None:
    alice = ApiKey(name="alice", key=A, max_active_jobs=2, max_upload_bytes=100, window=60)
    ring = KeyRing([alice])
    ring.start_job(alice, "j1")
    ring.start_job(alice, "j2")
    with pytest.raises(Limited) as info:
        ring.start_job(alice, "j3")
    assert info.value.retry_after >= 1
    ring.end_job("alice", "j1")
    ring.start_job(alice, "j3")  # a slot freed
    ring.reserve_upload(alice, 60)
    with pytest.raises(Limited) as over:
        ring.reserve_upload(alice, 60)
    assert 1 <= over.value.retry_after <= 60 and "40 left" in str(over.value)
    ring.reserve_upload(alice, 40)  # exactly the budget
    ring.reserve_upload(alice, 500, check=False)  # bytes already received still count
    with pytest.raises(Limited):
        ring.reserve_upload(alice, 0)
