"""Choosing a provider by name: env defaults, flags override, unknown names explained."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.providers import get_provider, list_providers
from agent.providers.embedded import EmbeddedProvider
from agent.providers.ollama_cli import OllamaCLIProvider
from agent.providers.openai_compat import OpenAICompatProvider

ENV = ("AGENT_PROVIDER", "AGENT_MODEL", "AGENT_EMBEDDED_MODEL", "OLLAMA_EXECUTABLE", "OPENAI_BASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_ollama(tmp_path: Path) -> Path:
    exe = tmp_path / "ollama"
    exe.write_text(f"#!{sys.executable}\nprint('{{}}')\n")
    exe.chmod(0o755)
    return exe


def test_names() -> None:
    assert [p.name for p in list_providers()][:3] == ["embedded", "openai", "ollama"]


def test_default_is_embedded() -> None:
    provider = get_provider()
    assert isinstance(provider, EmbeddedProvider)
    assert provider.name == "embedded"


@pytest.mark.anyio
async def test_env_selects_provider_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_PROVIDER", "openai")
    monkeypatch.setenv("AGENT_MODEL", "gpt-4o")
    async with get_provider() as provider:
        assert isinstance(provider, OpenAICompatProvider)
        assert provider.model == "gpt-4o"


@pytest.mark.anyio
async def test_flags_override_env(monkeypatch: pytest.MonkeyPatch, fake_ollama: Path) -> None:
    monkeypatch.setenv("AGENT_PROVIDER", "openai")
    monkeypatch.setenv("AGENT_MODEL", "gpt-4o")
    async with get_provider("ollama", "llama3.1:8b", executable=str(fake_ollama)) as provider:
        assert isinstance(provider, OllamaCLIProvider)
        assert provider.model == "llama3.1:8b"
    async with get_provider(model="gpt-4.1-mini", max_attempts=2) as provider:  # name from env, model from flag
        assert isinstance(provider, OpenAICompatProvider)
        assert provider.model == "gpt-4.1-mini"


@pytest.mark.anyio
async def test_name_is_case_insensitive_and_defaults_fill_the_model(
    monkeypatch: pytest.MonkeyPatch, fake_ollama: Path
) -> None:
    monkeypatch.setenv("OLLAMA_EXECUTABLE", str(fake_ollama))
    async with get_provider(" Ollama ") as provider:
        assert provider.model == "qwen2.5-coder:1.5b"
    async with get_provider("OPENAI") as provider:
        assert provider.model == "gpt-4o-mini"


@pytest.mark.parametrize("source", ["flag", "env"])
def test_unknown_name_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    if source == "env":
        monkeypatch.setenv("AGENT_PROVIDER", "gpt")
    with pytest.raises(UserError) as caught:
        get_provider("gpt" if source == "flag" else None)
    message = str(caught.value)
    assert "'gpt'" in message
    assert "embedded, openai, ollama" in message
    assert "--provider" in message and "AGENT_PROVIDER" in message


def test_embedded_model_is_a_gguf_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    provider = get_provider("embedded", str(gguf))
    assert isinstance(provider, EmbeddedProvider) and provider.model == "other"
    monkeypatch.setenv("AGENT_MODEL", "gpt-4o")
    with pytest.raises(UserError, match="AGENT_MODEL is 'gpt-4o'.*GGUF|GGUF.*AGENT_MODEL is 'gpt-4o'"):
        get_provider("embedded")


@pytest.mark.parametrize("name", ["openai", "ollama", "embedded"])
def test_backends_load_lazily(name: str, tmp_path: Path, fake_ollama: Path) -> None:
    """Choosing a provider imports only its backend; even ``embedded`` imports xllamacpp only to start."""
    code = (
        "import sys, os\n"
        "from agent.providers import get_provider\n"
        "assert 'agent.providers.embedded' not in sys.modules\n"
        f"p = get_provider({name!r})\n"
        "assert 'xllamacpp' not in sys.modules, sorted(m for m in sys.modules if 'llama' in m)\n"
        f"assert ('agent.providers.embedded' in sys.modules) == {name == 'embedded'}\n"
    )
    env = {"PATH": "/usr/bin:/bin", "OLLAMA_EXECUTABLE": str(fake_ollama), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[3], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
