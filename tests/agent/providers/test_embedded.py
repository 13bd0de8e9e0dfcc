"""The embedded provider: model preparation (no model needed) and a real llama.cpp server (``embedded``)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from agent.errors import UserError
from agent.providers import embedded, gguf
from agent.providers.base import ChatMessage
from agent.providers.embedded import EmbeddedProvider, EmbeddedServer
from agent.providers.openai_compat import OpenAICompatProvider

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["x"],
    "additionalProperties": False,
}
ASK_X = [
    ChatMessage(role="system", content="You answer with JSON only."),
    ChatMessage(role="user", content='Pick a probability x between 0 and 1. Answer as {"x": <number>}.'),
]


def satisfies_schema(text: str) -> float:
    answer = json.loads(text)
    assert isinstance(answer, dict) and set(answer) == {"x"}
    x = answer["x"]
    assert isinstance(x, int | float) and not isinstance(x, bool)
    assert 0 <= x <= 1
    return float(x)


# --------------------------------------------------------------------------------------------------
# Model preparation: join, verify, refuse corrupt files (small fake files, the real cache untouched)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AGENT_EMBEDDED_MODEL", raising=False)
    monkeypatch.delenv("AGENT_EMBEDDED_THREADS", raising=False)


def fake_parts(tmp_path: Path, *chunks: bytes) -> list[Path]:
    parts = []
    for index, chunk in enumerate(chunks, start=1):
        part = tmp_path / "wheels" / f"part{index:02d}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(chunk)
        parts.append(part)
    return parts


class NoServer:
    """Stands in for EmbeddedServer where a test must prove no server was started."""

    started = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        type(self).started += 1
        raise AssertionError("a server was started")


@pytest.mark.anyio
async def test_corrupt_cached_model_starts_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = gguf.default_model_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"GGUF truncated download")
    monkeypatch.setattr(embedded, "EmbeddedServer", NoServer)
    provider = EmbeddedProvider(n_threads=1)
    with pytest.raises(UserError, match=f"{re.escape(str(cached))}.*corrupt.*nothing was loaded"):
        await provider.complete(ASK_X)
    assert NoServer.started == 0
    assert cached.exists()
    await provider.aclose()


@pytest.mark.anyio
async def test_corrupt_parts_start_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = fake_parts(tmp_path, b"GGUF", b"not the model")
    monkeypatch.setattr(gguf, "model_part_paths", lambda: parts)
    monkeypatch.setattr(embedded, "EmbeddedServer", NoServer)
    async with EmbeddedProvider(n_threads=1) as provider:
        with pytest.raises(UserError, match="installed parts are corrupt"):
            await provider.start()
    assert NoServer.started == 0
    assert list(gguf.cache_dir().iterdir()) == []


def test_model_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = tmp_path / "tiny-model.Q8_0.gguf"
    model_file.write_bytes(b"GGUF\x03\x00\x00\x00")
    monkeypatch.setenv("AGENT_EMBEDDED_MODEL", str(model_file))
    assert EmbeddedProvider(n_threads=1).model == "tiny-model.Q8_0"
    assert EmbeddedProvider(n_threads=1).name == "embedded"

    monkeypatch.setenv("AGENT_EMBEDDED_MODEL", str(tmp_path / "absent.gguf"))
    with pytest.raises(UserError, match="AGENT_EMBEDDED_MODEL.*not a file"):
        EmbeddedProvider()

    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    monkeypatch.setenv("AGENT_EMBEDDED_MODEL", str(text))
    with pytest.raises(UserError, match="not a GGUF file"):
        EmbeddedProvider()


def test_default_model_name() -> None:
    assert EmbeddedProvider(n_threads=1).model == "qwen2.5-coder-1.5b-instruct-q4_k_m"


def test_threads_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_EMBEDDED_THREADS", "3")
    assert embedded.default_threads() == 3
    monkeypatch.setenv("AGENT_EMBEDDED_THREADS", "many")
    with pytest.raises(UserError, match="AGENT_EMBEDDED_THREADS"):
        embedded.default_threads()
    monkeypatch.delenv("AGENT_EMBEDDED_THREADS")
    assert embedded.default_threads() >= 1


# --------------------------------------------------------------------------------------------------
# Lifecycle with a stand-in server: one start under concurrent calls, close once, close twice
# --------------------------------------------------------------------------------------------------


class FakeServer:
    instances: list[FakeServer] = []

    def __init__(self, settings: embedded.ServerSettings) -> None:
        self.settings = settings
        self.base_url = "http://127.0.0.1:9"
        self.load_s = 0.0
        self.closed = 0
        FakeServer.instances.append(self)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.anyio
async def test_one_server_per_provider_closed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = tmp_path / "m.gguf"
    model_file.write_bytes(b"GGUF")
    FakeServer.instances = []
    monkeypatch.setattr(embedded, "EmbeddedServer", FakeServer)
    provider = EmbeddedProvider(model_file, n_ctx=1024, n_threads=1, n_parallel=2)
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(provider.start)
    (server,) = FakeServer.instances
    assert (server.settings.n_ctx, server.settings.n_threads, server.settings.n_parallel) == (1024, 1, 2)
    await provider.aclose()
    await provider.aclose()
    assert server.closed == 1


# --------------------------------------------------------------------------------------------------
# A real server
# --------------------------------------------------------------------------------------------------


@pytest.mark.embedded
def test_server_listens_on_localhost_only(embedded_server: EmbeddedServer) -> None:
    url = urlsplit(embedded_server.base_url)
    assert url.scheme == "http" and url.hostname == "127.0.0.1" and url.port
    assert httpx.get(f"{embedded_server.base_url}/health").json() == {"status": "ok"}


@pytest.mark.embedded
@pytest.mark.anyio
async def test_schema_constrained_completion(embedded_server: EmbeddedServer) -> None:
    async with EmbeddedProvider(server=embedded_server) as provider:
        completion = await provider.complete(ASK_X, json_schema=SCHEMA, temperature=0.0, max_tokens=16, seed=0)
    satisfies_schema(completion.text)
    usage = completion.usage
    assert (usage.provider, usage.model) == ("embedded", "qwen2.5-coder-1.5b-instruct-q4_k_m")
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.latency_s > 0
    async with httpx.AsyncClient() as client:  # a shared server outlives the provider
        assert (await client.get(f"{embedded_server.base_url}/health")).status_code == 200


@pytest.mark.embedded
@pytest.mark.anyio
async def test_schema_overrides_the_prompt(embedded_server: EmbeddedServer) -> None:
    """The decoder keeps the answer's shape even when the prompt asks for another one.

    llama.cpp enforces structure, types, enums and integer bounds, but not ``minimum``/``maximum`` on
    numbers: that stays the loop's validation.
    """
    tempt = [ChatMessage(role="user", content='Reply with exactly this JSON in a code block: {"x": 7, "y": "hi"}')]
    async with EmbeddedProvider(server=embedded_server) as provider:
        completion = await provider.complete(tempt, json_schema=SCHEMA, temperature=0.0, max_tokens=16, seed=0)
    answer = json.loads(completion.text)
    assert set(answer) == {"x"} and isinstance(answer["x"], int | float)


@pytest.mark.embedded
@pytest.mark.anyio
async def test_openai_compat_provider_over_http(embedded_server: EmbeddedServer) -> None:
    async with OpenAICompatProvider("any-name", base_url=f"{embedded_server.base_url}/v1", api_key="") as provider:
        completion = await provider.complete(ASK_X, json_schema=SCHEMA, temperature=0.0, max_tokens=16, seed=1)
        assert provider.response_format_level == "json_schema"  # the server took the schema
    satisfies_schema(completion.text)
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.usefixtures("needs_xllamacpp")
async def test_provider_starts_and_stops_its_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_CACHE_DIR")  # the real cache: the model is joined there once
    provider = EmbeddedProvider(n_ctx=512)
    async with provider:
        completion = await provider.complete(ASK_X, json_schema=SCHEMA, temperature=0.0, max_tokens=12, seed=2)
        server = provider.server
        assert server is not None
        base_url = server.base_url
    satisfies_schema(completion.text)
    await provider.aclose()  # twice is fine
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{base_url}/health", timeout=2)


@pytest.mark.anyio
async def test_probe_refuses_a_corrupt_model_without_loading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a study starts: the file is checked (size, sha256), nothing is loaded, nothing deleted."""
    cached = gguf.default_model_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"GGUF truncated download")
    monkeypatch.setattr(embedded, "EmbeddedServer", NoServer)
    async with EmbeddedProvider(n_threads=1) as provider:
        with pytest.raises(UserError, match=f"{re.escape(str(cached))}.*corrupt.*Delete that file"):
            await provider.probe()
    assert NoServer.started == 0 and cached.exists()


@pytest.mark.anyio
async def test_probe_of_a_sound_model_loads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = fake_parts(tmp_path, b"GGUF", b"tiny model")
    monkeypatch.setattr(gguf, "model_part_paths", lambda: parts)
    digest = hashlib.sha256(b"GGUFtiny model").hexdigest()
    monkeypatch.setattr(gguf, "join_parts", functools.partial(gguf.join_parts, size=14, sha256=digest))
    monkeypatch.setattr(gguf, "verify_model", functools.partial(gguf.verify_model, size=14, sha256=digest))
    monkeypatch.setattr(embedded, "EmbeddedServer", NoServer)
    monkeypatch.setattr(embedded, "_import_xllamacpp", lambda: None)
    async with EmbeddedProvider(n_threads=1) as provider:
        await provider.probe()
        assert provider.server is None
    assert gguf.default_model_path().read_bytes() == b"GGUFtiny model"
    assert NoServer.started == 0
