"""Whole LLM studies on the real embedded model: the default provider, end to end, as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from agent.cli import main
from agent.providers.embedded import EmbeddedServer
from agent.study import study_records

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.embedded, pytest.mark.slow]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "OPENAI_", "OLLAMA_"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


@pytest.mark.usefixtures("needs_xllamacpp")
def test_llm_study_on_hpobench_australian_with_the_default_embedded_model(tmp_path: Path) -> None:
    """No provider configured, no strategy named: the embedded model opens a budget-10 llm-bo study."""
    save = tmp_path / "llm"
    result = subprocess.run(
        [sys.executable, "-m", "agent", "--task", "hpobench-australian", "--budget", "10", "--save_dir", str(save)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="hpobench-australian-llm-bo-seed0", storage=f"sqlite:///{save / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 10
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    sources = [r.source for r in study_records(study)]
    assert sources[0] in ("llm", "fallback") and sources[1:] == ["random"] * 2 + ["surrogate"] * 7, sources
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 10
    record = json.loads((save / "trials" / "trial_0000.json").read_text())
    usage = record["usage"][0]
    assert usage["provider"] == "embedded"
    assert usage["model"] == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    events = [json.loads(line) for line in (save / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "llm_call" for e in events) >= 1
    assert "LLM usage" in result.stdout and "best value" in result.stdout


def test_api_key_is_never_written_anywhere(
    embedded_server: EmbeddedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A study through the OpenAI-compatible provider with a recognisable key: grep every output for it."""
    key = "sk-FAKE-do-not-log-3f9a1c77e2"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{embedded_server.base_url}/v1")
    save = tmp_path / "k"
    code = main(
        ["--task", "toy-branin", "--provider", "openai", "--model", "qwen", "--budget", "2", "--save_dir", str(save)]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert key not in out.out and key not in out.err
    files = [p for p in save.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"study.db", "events.jsonl", "trial_0000.json", "trial_0001.json"}
    for path in files:
        assert key.encode() not in path.read_bytes(), f"the API key leaked into {path}"
    record = json.loads((save / "trials" / "trial_0000.json").read_text())
    assert record["usage"][0]["provider"] == "openai"


def test_provider_down_stops_with_a_clear_message_and_the_study_resumes(
    embedded_server: EmbeddedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --on-provider-error stop, a refused connection stops the run once its call's time (here 5 s) ran out,
    with a clear message; the same command later resumes, losing nothing."""
    save = tmp_path / "down"
    monkeypatch.setenv("AGENT_PROVIDER", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # The paper's loop calls the model every trial, so the provider is needed again after the resume.
    argv = ["--task", "toy-branin", "--strategy", "llm", "--model", "qwen", "--save_dir", str(save), "--quiet"]
    argv += ["--on-provider-error", "stop"]

    monkeypatch.setenv("OPENAI_BASE_URL", f"{embedded_server.base_url}/v1")
    assert main([*argv, "--budget", "2"]) == 0
    capsys.readouterr()

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    assert main([*argv, "--budget", "4", "--provider-timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "run the same command again to resume" in err
    assert "127.0.0.1:9" in err

    monkeypatch.setenv("OPENAI_BASE_URL", f"{embedded_server.base_url}/v1")
    assert main([*argv, "--budget", "4"]) == 0
    trials = optuna.load_study(study_name="toy-branin-llm-seed0", storage=f"sqlite:///{save / 'study.db'}").get_trials(
        deepcopy=False
    )
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
