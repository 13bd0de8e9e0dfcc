"""Tests for agent/sampler.py: ``LLMSampler`` in plain Optuna studies with the user's own objective."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from agent.loop import AgentSettings
from agent.providers.scripted import ScriptedProvider
from agent.sampler import LLMSampler
from agent.study import study_records

call = ScriptedProvider.call


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 1, 8)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 1.0) ** 2 + n + (0.5 if kind == "b" else 0.0)


def test_the_model_proposes_every_trial_after_the_first(tmp_path: Any) -> None:
    answers = [
        call("evaluate", x=1.0, n=1, kind="a"),
        call("evaluate", x=0.5, n=2, kind="b"),
    ]
    provider = ScriptedProvider(answers)
    study = optuna.create_study(
        sampler=LLMSampler("llm", task_description="A test objective.", provider=provider, seed=0)
    )
    study.optimize(objective, n_trials=3)

    first, second, third = study.get_trials()
    records = study_records(study)
    assert records[0].source == "sampler", "the first trial has no search space yet: random"
    assert second.params == {"x": 1.0, "n": 1, "kind": "a"}
    assert third.params == {"x": 0.5, "n": 2, "kind": "b"}
    assert second.value == pytest.approx(1.0)
    assert records[1].source == "llm"
    assert records[1].proposal.answer == answers[0]
    assert records[1].proposal.reasks == 0
    assert len(records[1].proposal.usage) == 1
    # The model saw the search space from Optuna's distributions and the finished trials.
    prompt = "\n".join(m.content for m in provider.calls[-1].messages)
    assert "- x: a number in [-5, 5]" in prompt and '- kind: one of "a", "b"' in prompt
    assert f'trial 0: {{"kind": "a", "n": 6, "x": {first.params["x"]:.6g}}} -> value {first.value:.6g}' in prompt
    assert "trial 1: " in prompt and "value 1" in prompt


def test_invalid_answers_are_reasked_then_fall_back_to_random() -> None:
    answers = [
        call("evaluate", x=99.0, n=1, kind="a"),  # out of range: reasked
        call("evaluate", x=2.0, n=3, kind="a"),  # fixed
        "not json",
        call("evaluate", x=1.0, n=1, kind="zzz"),  # still invalid: the reasks (1) ran out -> random
    ]
    provider = ScriptedProvider(answers)
    sampler = LLMSampler(
        "llm", task_description="A test objective.", provider=provider, seed=1, settings=AgentSettings(max_retries=1)
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=3)
    sampler.close()

    _, fixed, fallback = study.get_trials()
    _, fixed_record, fallback_record = study_records(study)
    assert fixed.params == {"x": 2.0, "n": 3, "kind": "a"}
    assert fixed_record.proposal.reasks == 1
    assert "out of range" in provider.calls[1].messages[-1].content
    assert fallback_record.source == "fallback"
    assert fallback.state == TrialState.COMPLETE
    assert -5.0 <= fallback.params["x"] <= 5.0 and fallback.params["kind"] in ("a", "b")


def test_a_maximized_study_is_shown_its_values_and_the_direction_plainly() -> None:
    def flaky(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            raise optuna.TrialPruned()
        return x

    provider = ScriptedProvider([call("evaluate", x=0.25), call("evaluate", x=0.75)])
    with LLMSampler("llm", task_description="Maximize x.", provider=provider) as sampler:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(flaky, n_trials=3)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    last = "\n".join(m.content for m in provider.calls[-1].messages)
    assert "the configuration with the highest value" in last
    assert f"value {study.trials[0].value:.6g}" in last
    assert 'trial 1: {"x": 0.25} -> pruned' in last


@pytest.mark.embedded
def test_the_embedded_model_drives_an_optuna_study(embedded_server: Any) -> None:
    from agent.providers.openai_compat import OpenAICompatProvider

    provider = OpenAICompatProvider(model="qwen", base_url=f"{embedded_server.base_url}/v1", api_key="")
    with LLMSampler("llm", task_description="Minimize a smooth function of x and y.", provider=provider, seed=0) as s:
        study = optuna.create_study(sampler=s)
        study.optimize(
            lambda t: (t.suggest_float("x", -3.0, 3.0) - 1) ** 2 + t.suggest_float("y", -3.0, 3.0) ** 2, n_trials=3
        )
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    records = study_records(study)
    assert all(r.source in ("llm", "fallback") for r in records[1:])
    assert all(r.proposal.usage for r in records[1:])
