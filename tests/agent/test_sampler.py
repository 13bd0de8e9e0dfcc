"""Tests for agent/sampler.py: every strategy as an Optuna sampler in plain studies with the user's objective.

Optuna's own sampler contract tests run for every strategy in test_sampler_contract.py.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import agent.sampler as sampler_module
from agent.conversation import AgentSettings
from agent.errors import ProviderUnavailable, UserError
from agent.providers.base import ChatMessage, Completion, Provider
from agent.providers.scripted import RandomAnswerProvider, ScriptedProvider
from agent.sampler import LLMSampler, StrategySampler
from agent.strategies.registry import DEFAULT_STRATEGY, list_strategies
from agent.study import study_records

STRATEGIES = [s.name for s in list_strategies()]
LLM_STRATEGIES = [s.name for s in list_strategies() if s.needs_model]

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
def test_the_embedded_model_drives_an_optuna_study(embedded_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No strategy and no provider named: the CLI's default strategy on the provider the environment names."""
    monkeypatch.setenv("AGENT_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{embedded_server.base_url}/v1")
    monkeypatch.setenv("AGENT_MODEL", "qwen")
    with StrategySampler(task_description="Minimize a smooth function of x and y.", seed=0) as s:
        assert s.strategy == DEFAULT_STRATEGY == "llm-bo"
        study = optuna.create_study(sampler=s)
        study.optimize(
            lambda t: (t.suggest_float("x", -3.0, 3.0) - 1) ** 2 + t.suggest_float("y", -3.0, 3.0) ** 2, n_trials=4
        )
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    records = study_records(study)
    assert records[1].source in ("llm", "fallback") and records[1].proposal.usage, "the model opens the search"
    assert [r.source for r in records[2:]] == ["random", "surrogate"]  # the GP's startup: 3 trials


def mixed(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    width = trial.suggest_int("width", 8, 256, log=True)
    opt = trial.suggest_categorical("opt", ["adam", "sgd"])
    return abs(lr - 1e-3) * 100 + abs(width - 64) / 64 + (opt == "sgd")


# What each strategy's trials after the first are proposed by (the first has no search space yet).
EXPECTED_SOURCES = {
    "llm": ["llm"] * 5,
    "llm-bo": ["llm", "random", "surrogate", "surrogate", "surrogate"],
    "bo": ["random", "random", "surrogate", "surrogate", "surrogate"],
    "random": ["sampler"] * 5,
    "tpe": ["sampler"] * 5,
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_drives_study_optimize(strategy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_PROVIDER", "no-such-provider")  # a strategy without a model must not open one
    provider = RandomAnswerProvider(seed=1) if strategy in LLM_STRATEGIES else None
    with StrategySampler(strategy, provider=provider, seed=0, budget=6) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(mixed, n_trials=6)
    records = study_records(study)
    assert [r.state for r in records] == ["complete"] * 6
    assert records[0].source == "sampler"
    if strategy in EXPECTED_SOURCES:
        assert [r.source for r in records[1:]] == EXPECTED_SOURCES[strategy]
    if provider is not None:
        assert provider.calls, "the model was asked"
        assert all(r.proposal.usage for r in records if r.source == "llm")
        prompt = "\n".join(m.content for m in provider.calls[0].messages)
        assert "- width: an integer in [8, 256], log scale" in prompt and "lowest value" in prompt
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 6, "no configuration twice"


def test_a_maximized_study_is_climbed_by_the_surrogate() -> None:
    with StrategySampler("bo", seed=0) as sampler:
        study = optuna.create_study(sampler=sampler, direction="maximize")
        study.optimize(lambda t: -((t.suggest_float("x", 0.0, 1.0) - 0.7) ** 2), n_trials=10)
    assert abs(study.best_params["x"] - 0.7) < 0.05
    assert [r.source for r in study_records(study)[1:]] == ["random"] * 2 + ["surrogate"] * 7


def test_distributions_a_search_space_cannot_hold_are_sampled_by_the_strategy_sampler() -> None:
    def stepped(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0, step=0.25)
        n = trial.suggest_int("n", 0, 10, step=5)
        y = trial.suggest_float("y", 0.0, 1.0)
        return x + n + y

    provider = RandomAnswerProvider(seed=0)
    with StrategySampler("llm", provider=provider, seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(stepped, n_trials=4)
    assert all(t.params["x"] in (0.0, 0.25, 0.5, 0.75, 1.0) and t.params["n"] in (0, 5, 10) for t in study.trials)
    prompt = "\n".join(m.content for m in provider.calls[-1].messages)
    assert "- y: a number in [0, 1]" in prompt and "- x:" not in prompt and "- n:" not in prompt
    assert [r.source for r in study_records(study)[1:]] == ["llm"] * 3


class Unreachable(Provider):
    """Fault injection: the model's endpoint is down (the provider's retries ran out)."""

    async def complete(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        raise ProviderUnavailable("connection refused")


def test_an_unreachable_model_is_a_fallback_and_the_study_goes_on() -> None:
    with StrategySampler("llm-bo", provider=Unreachable(), seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=4)
    records = study_records(study)
    assert all(r.state == "complete" for r in records)
    assert records[1].source == "fallback"
    assert records[1].proposal.reason == "the model could not be reached: connection refused"
    assert [r.source for r in records[2:]] == ["random", "surrogate"]


def test_an_unknown_strategy_names_the_valid_ones() -> None:
    with pytest.raises(UserError, match=f"unknown strategy 'gpt'; choose from {', '.join(STRATEGIES)}"):
        StrategySampler("gpt")
    assert LLMSampler is StrategySampler


def readme_snippet() -> str:
    """The code of README's "In your own Optuna code"."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("**In your own Optuna code**") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    return code[: code.index("\n```")]


@pytest.mark.slow
def test_the_readme_optuna_snippet_runs_from_any_folder(tmp_path: Path) -> None:
    """Copied into a folder of the user's, outside this clone, with random search and a small budget (no model)."""
    code = readme_snippet()
    for old, new in (('"llm-bo"', '"random"'), ("budget=20", "budget=3"), ("n_trials=20", "n_trials=3")):
        assert code.count(old) == 1, f"the snippet changed: {old} is no longer there once"
        code = code.replace(old, new)
    # The clone's own folders (examples/, benchmarks/) are not there for a user: importing them fails.
    blocked = "import sys\nsys.modules.update(examples=None, benchmarks=None, tests=None)\n"
    run = subprocess.run(
        [sys.executable, "-c", blocked + code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{tmp_path / 'digits.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert 0.0 <= study.best_value < 1.0
    assert f"{study.best_value}" in run.stdout


def test_the_sampler_learns_from_earlier_studies_given_to_it(tmp_path: Path) -> None:
    """An Optuna user's study of kc1 learns from a car study run by the CLI: its best configurations open the
    study (after Optuna's first, blind draw), and what it learned from is kept with the study."""
    import anyio

    from agent.session import StudyConfig, run_study
    from agent.tasks import build_task

    car = tmp_path / "car"
    config = StudyConfig(task=build_task("hpobench-car", seed=3), strategy="random", budget=10, seed=3, save_dir=car)
    anyio.run(lambda: run_study(config, say=lambda line: None))
    kc1 = build_task("hpobench-kc1")
    grids = {name: list(p.choices) for name, p in kc1.space.params.items()}  # type: ignore[union-attr]

    def table(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_categorical(name, choices) for name, choices in grids.items()}
        assert kc1.true_error is not None
        return kc1.true_error(params)

    with pytest.raises(UserError, match="^learn_from .*nowhere: no such file or folder"):  # a library's words
        StrategySampler("bo", learn_from=[str(tmp_path / "nowhere")])
    with StrategySampler("bo", budget=6, seed=0, learn_from=str(car)) as sampler:  # one source, as a string
        study = optuna.create_study(sampler=sampler)
        study.optimize(table, n_trials=6)
    records = study_records(study)
    assert [r.source for r in records].count("transfer") == 1, "one source: one opener"
    assert "weights" in records[-1].proposal.decision
    assert study.user_attrs["experience"][0]["how"] == "identical"


def test_the_sampler_is_quiet_about_its_own_work(caplog: pytest.LogCaptureFixture) -> None:
    """Optuna says "A new study created in memory" for the user's study; the strategy's optimizer makes one per
    proposal on the sampler's thread, and those are not the user's to read."""
    caplog.set_level(logging.INFO, logger="optuna")
    with StrategySampler("bo", budget=6, seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=6)
    assert [r.source for r in study_records(study)][3:] == ["surrogate"] * 3
    created = [r for r in caplog.records if "A new study created in memory" in r.getMessage()]
    assert len(created) == 1, "the user's own study only"
    assert logging.getLogger("optuna.storages._in_memory").filters == [], "the filter goes with the sampler"


def test_trials_outside_todays_space_are_checked_once_and_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's study whose objective narrowed its space: earlier (failed) trials outside it are not shown to the
    strategy, and each finished trial is checked once, not on every proposal."""
    study = optuna.create_study()
    wide, narrow = optuna.distributions.FloatDistribution(-5.0, 5.0), optuna.distributions.FloatDistribution(0.0, 1.0)
    for x in (4.0, -3.0):  # failed before the space was narrowed: not in Optuna's intersection of complete trials
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params={"x": x}, distributions={"x": wide}))
    for x in (0.2, 0.7):
        study.add_trial(optuna.trial.create_trial(value=x * x, params={"x": x}, distributions={"x": narrow}))
    checked: list[int] = []
    real = sampler_module._fitted

    def counting(record: Any, space: Any) -> Any:
        checked.append(record.number)
        return real(record, space)

    monkeypatch.setattr(sampler_module, "_fitted", counting)
    seen: list[list[float]] = []
    with StrategySampler("bo", budget=8, seed=0) as sampler:
        original = sampler._records

        def records(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            seen.append([r.config["x"] for r in out])
            return out

        monkeypatch.setattr(sampler, "_records", records)
        study.sampler = sampler
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0) ** 2, n_trials=3)
    assert seen[0] == [0.2, 0.7], "the failed trials at 4 and -3 lie outside [0, 1]"
    assert len(seen) == 3 and all(0.0 <= x <= 1.0 for xs in seen for x in xs)
    assert sorted(checked) == [0, 1, 2, 3, 4, 5], "each finished trial checked once, over three proposals"
