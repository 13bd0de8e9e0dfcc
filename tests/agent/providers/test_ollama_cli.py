"""The Ollama CLI provider against a stand-in ``ollama`` executable (the real one is not installable here).

The stand-in implements ``ollama run MODEL --format json`` and ``ollama show MODEL``: it records its argv,
reads the prompt from stdin and answers through the embedded llama.cpp server (``STANDIN_URL``), or echoes a
fixed JSON object when no server is given, or fails like a daemon that is down (``STANDIN_FAIL``) or like
Ollama asked for a model it does not have (one outside ``STANDIN_MODELS``).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from agent.errors import ProviderUnavailable, UserError
from agent.providers.base import ChatMessage
from agent.providers.embedded import EmbeddedServer
from agent.providers.ollama_cli import OllamaCLIProvider, render_prompt

STANDIN = '''#!{python}
"""A stand-in for `ollama run MODEL --format json`."""
import json, os, sys, urllib.request

with open(os.environ["STANDIN_ARGV_FILE"], "a") as f:
    f.write(json.dumps(sys.argv) + "\\n")
prompt = sys.stdin.read()
with open(os.environ["STANDIN_ARGV_FILE"] + ".stdin", "w") as f:
    f.write(prompt)
if os.environ.get("STANDIN_FAIL"):
    sys.stderr.write("Error: could not connect to ollama app, is it running?\\n")
    sys.exit(1)
known = os.environ.get("STANDIN_MODELS")
if known is not None and sys.argv[2] not in known.split(","):
    sys.stderr.write(f"Error: model '{{sys.argv[2]}}' not found\\n")
    sys.exit(1)
if sys.argv[1:2] == ["show"] and len(sys.argv) == 3:
    print("  Model\\n    architecture    qwen2")
    sys.exit(0)
if len(sys.argv) != 5 or sys.argv[1] != "run" or sys.argv[3:] != ["--format", "json"]:
    sys.exit("usage: ollama run MODEL --format json")
url = os.environ.get("STANDIN_URL")
if not url:
    print(json.dumps({{"echo": True}}))
    sys.exit(0)
body = {{
    "messages": [{{"role": "user", "content": prompt}}],
    "response_format": {{"type": "json_object"}},
    "temperature": 0.0,
    "max_tokens": 24,
}}
request = urllib.request.Request(
    url + "/v1/chat/completions", data=json.dumps(body).encode(), headers={{"Content-Type": "application/json"}}
)
with urllib.request.urlopen(request, timeout=600) as response:
    answer = json.load(response)
print(answer["choices"][0]["message"]["content"])
'''

MESSAGES = [
    ChatMessage(role="system", content="You answer with JSON only."),
    ChatMessage(role="user", content='Give a learning rate as {"lr": <number>}.'),
    ChatMessage(role="assistant", content='{"lr": 0.1}'),
    ChatMessage(role="user", content="Smaller, please."),
]


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "bin" / "ollama"
    exe.parent.mkdir()
    exe.write_text(STANDIN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("STANDIN_ARGV_FILE", str(tmp_path / "argv.jsonl"))
    monkeypatch.delenv("STANDIN_URL", raising=False)
    monkeypatch.delenv("STANDIN_FAIL", raising=False)
    monkeypatch.delenv("STANDIN_MODELS", raising=False)
    monkeypatch.delenv("OLLAMA_EXECUTABLE", raising=False)
    return exe


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]


def test_render_prompt() -> None:
    assert render_prompt(MESSAGES) == (
        "You answer with JSON only.\n"
        "\n"
        'User: Give a learning rate as {"lr": <number>}.\n'
        "\n"
        'Assistant: {"lr": 0.1}\n'
        "\n"
        "User: Smaller, please.\n"
    )
    assert render_prompt([ChatMessage(role="user", content="hi")]) == "User: hi\n"


@pytest.mark.anyio
async def test_argv_is_exactly_run_model_format_json(standin: Path, tmp_path: Path) -> None:
    provider = OllamaCLIProvider("qwen2.5-coder:1.5b", executable=str(standin))
    completion = await provider.complete(MESSAGES, json_schema={"type": "object"}, temperature=0.1, seed=4)
    assert json.loads(completion.text) == {"echo": True}
    assert calls(tmp_path) == [[str(standin), "run", "qwen2.5-coder:1.5b", "--format", "json"]]
    assert (tmp_path / "argv.jsonl.stdin").read_text() == render_prompt(MESSAGES)
    usage = completion.usage
    assert (usage.provider, usage.model, usage.prompt_tokens, usage.completion_tokens) == (
        "ollama",
        "qwen2.5-coder:1.5b",
        0,
        0,
    )
    assert usage.latency_s > 0


@pytest.mark.anyio
async def test_executable_from_env(standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_EXECUTABLE", str(standin))
    provider = OllamaCLIProvider("m")
    assert provider.executable == str(standin)
    await provider.complete(MESSAGES)
    assert calls(tmp_path)[0][0] == str(standin)


@pytest.mark.anyio
async def test_executable_found_on_path(standin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(standin.parent))
    assert OllamaCLIProvider("m").executable == str(standin)


def test_missing_executable_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_EXECUTABLE", raising=False)
    with pytest.raises(UserError, match="OLLAMA_EXECUTABLE"):
        OllamaCLIProvider("m", executable=str(tmp_path / "no-such-ollama"))
    monkeypatch.setenv("OLLAMA_EXECUTABLE", str(tmp_path / "no-such-ollama"))
    with pytest.raises(UserError, match="OLLAMA_EXECUTABLE"):
        OllamaCLIProvider("m")
    monkeypatch.delenv("OLLAMA_EXECUTABLE")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="not on PATH.*OLLAMA_EXECUTABLE"):
        OllamaCLIProvider("m")


@pytest.mark.anyio
async def test_failing_cli_is_retried_then_unavailable_with_stderr(
    standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "1")
    provider = OllamaCLIProvider("m", executable=str(standin), max_attempts=3)
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.complete(MESSAGES)
    message = str(caught.value)
    assert "after 3 attempts" in message
    assert "exit status 1" in message
    assert "could not connect to ollama app, is it running?" in message
    assert "ollama serve" in message
    assert len(calls(tmp_path)) == 3
    assert len(sleeps) == 2


@pytest.mark.anyio
async def test_timeout_is_retried(standin: Path, tmp_path: Path, sleeps: list[float]) -> None:
    slow = tmp_path / "bin" / "slow-ollama"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    slow.chmod(0o755)
    provider = OllamaCLIProvider("m", executable=str(slow), max_attempts=2, timeout_s=0.5)
    with pytest.raises(ProviderUnavailable, match="no answer within 0.5 s"):
        await provider.complete(MESSAGES)


@pytest.mark.embedded
@pytest.mark.anyio
async def test_answers_json_through_the_embedded_server(
    standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_server: EmbeddedServer
) -> None:
    monkeypatch.setenv("STANDIN_URL", embedded_server.base_url)
    provider = OllamaCLIProvider("qwen2.5-coder:1.5b", executable=str(standin))
    completion = await provider.complete(MESSAGES, max_tokens=24)
    answer = json.loads(completion.text)
    assert isinstance(answer, dict)
    assert len(calls(tmp_path)) == 1
    assert os.environ["STANDIN_URL"].startswith("http://127.0.0.1:")


@pytest.mark.anyio
async def test_probe_asks_ollama_show_for_the_model(
    standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODELS", "qwen2.5-coder:1.5b")
    await OllamaCLIProvider("qwen2.5-coder:1.5b", executable=str(standin)).probe()
    assert calls(tmp_path) == [[str(standin), "show", "qwen2.5-coder:1.5b"]]


@pytest.mark.anyio
async def test_an_unknown_model_is_fatal_at_the_probe_and_at_a_call(
    standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setenv("STANDIN_MODELS", "llama3.1")
    provider = OllamaCLIProvider("lama3.1", executable=str(standin))
    with pytest.raises(UserError, match=r"Ollama has no model 'lama3.1' .*not found.*ollama pull lama3.1"):
        await provider.probe()
    with pytest.raises(UserError, match="ollama pull lama3.1"):
        await provider.complete(MESSAGES)
    assert len(calls(tmp_path)) == 2 and sleeps == [], "never retried"


@pytest.mark.anyio
async def test_probe_of_a_daemon_that_is_down_is_unavailable_not_fatal(
    standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "1")
    with pytest.raises(ProviderUnavailable, match="could not connect to ollama app.*ollama serve"):
        await OllamaCLIProvider("m", executable=str(standin)).probe()
