"""Tests for agent/study/door.py (with agent/study/store.py, agent/optimize.py and the CLI): a configuration is
checked once, before it is claimed, whoever proposed it; a broken proposal is no trial, its round is drawn by
the study's sampler with a warning, and a strategy broken 3 times in a row stops the run (exit 1)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from agent.errors import BrokenStrategy, InvalidSuggestion
from agent.records import ProposalInfo
from agent.space import CategoricalParam, FloatParam, SearchSpace
from agent.study import StudyStore
from agent.study.door import STRIKES, Strikes, admit
from tests.distributions import lay_out

ROOT = Path(__file__).resolve().parents[3]
SPACE = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0), "opt": CategoricalParam(choices=("a", "b"))})

#: One proposal of each way a configuration breaks the space, and the words the door says about it.
BROKEN: list[tuple[dict[str, Any], str]] = [
    ({"x": 0.5, "opt": "nope"}, "opt: not one of the choices ['a', 'b']"),
    ({"x": 0.5}, 'opt: missing; one of "a", "b"'),
    ({"x": 0.5, "opt": "a", "y": 1.0}, "y: unknown parameter"),
    ({"x": math.nan, "opt": "a"}, "x: must be finite (NaN and Infinity are not allowed)"),
    ({"x": 7.0, "opt": "b"}, "x: out of range: must be in [0, 1], got 7"),
]


@pytest.mark.parametrize(("config", "words"), BROKEN)
def test_the_door_names_what_breaks_the_space(config: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidSuggestion) as caught:
        admit(SPACE, config)
    assert words in str(caught.value)


def test_the_door_gives_the_canonical_configuration() -> None:
    space = SearchSpace(params={"n": CategoricalParam(choices=(64, 128))})
    admitted = admit(space, {"n": 128.0})
    assert admitted == {"n": 128} and type(admitted["n"]) is int


def test_strikes_warn_then_stop_at_the_third_in_a_row() -> None:
    strikes = Strikes("rogue")
    refusal = InvalidSuggestion("invalid configuration: x: out of range: must be in [0, 1], got 7")
    first = strikes.refused(refusal)
    assert first == (
        "strategy 'rogue' proposed a configuration that breaks the search space (x: out of range: must be in "
        "[0, 1], got 7); the study's sampler draws this round's configuration instead"
    )
    strikes.admitted()  # a good proposal in between: the count starts again
    strikes.refused(refusal)
    strikes.refused(refusal)
    with pytest.raises(BrokenStrategy, match=r"^strategy 'rogue' proposed 3 configurations in a row that break"):
        strikes.refused(refusal)
    assert STRIKES == 3


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StudyStore]:
    opened = StudyStore.open(save_dir=tmp_path, study_name="s", space=SPACE, meta={"task": "t"})
    yield opened
    opened.close()


@pytest.mark.parametrize(("config", "words"), BROKEN)
def test_a_refused_configuration_writes_nothing(store: StudyStore, config: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidSuggestion, match=words.split(":")[0]):
        store.claim(config, ProposalInfo(source="llm"), budget=3)
    assert store.study.get_trials() == []


def test_a_claim_writes_its_whole_trial_in_one_storage_call(store: StudyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    for method in ("create_new_trial", "set_trial_param", "set_trial_user_attr", "set_trial_system_attr"):
        real = getattr(store.storage, method)

        def counted(*args: Any, _real: Any = real, _name: str = method, **kwargs: Any) -> Any:
            writes.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store.storage, method, counted)
    info = ProposalInfo(source="llm", answer='{"x": 0.25}', reasks=1)
    assert store.claim({"x": 0.25, "opt": "b"}, info, budget=3) == (0, {"x": 0.25, "opt": "b"})
    assert writes == ["create_new_trial"], "a kill cannot leave half a configuration"
    (trial,) = store.study.get_trials()
    assert trial.state == TrialState.RUNNING and trial.params == {"x": 0.25, "opt": "b"}
    assert trial.user_attrs["source"] == "llm" and trial.user_attrs["reasks"] == 1
    assert trial.user_attrs["worker"]["pid"] == os.getpid()


class _Outside(optuna.samplers.RandomSampler):
    """A sampler of an installed package that draws ``x`` outside its range."""

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        return 7.0 if name == "x" else super().sample_independent(study, trial, name, distribution)


def test_a_sampler_draw_the_door_refuses_is_a_void_trial(store: StudyStore) -> None:
    store.study.sampler = _Outside(seed=0)
    with pytest.raises(InvalidSuggestion, match="x: out of range"):
        store.claim(None, ProposalInfo(), budget=3)
    (trial,) = store.study.get_trials()
    assert trial.state == TrialState.FAIL and "x: out of range" in trial.user_attrs["void"]
    assert store.records() == [], "a void trial is no trial of the study"
    store.study.sampler = optuna.samplers.RandomSampler(seed=0)
    assert store.claim(None, ProposalInfo(), budget=1) is not None, "nor does it use the budget"


# ---- through the command line, with strategies of an installed package --------------------------------------

MODULE = "hpo_broken_strategies"
PLUGIN = '''
"""Strategies whose proposals break the search space."""
import math

import optuna

from agent.records import Proposal
from agent.strategies.base import Strategy

BROKEN = [
    {"x": 0.5, "opt": "nope"},
    {"x": 0.5},
    {"x": 0.5, "opt": "a", "y": 1.0},
    {"x": math.nan, "opt": "a"},
    {"x": 7.0, "opt": "b"},
]


class Nope(Strategy):
    """Always a categorical value outside the choices."""

    name = "nope"

    def sampler(self, seed, n_existing):
        return optuna.samplers.RandomSampler(seed=seed + n_existing)

    async def propose(self, ctx):
        return Proposal(config=dict(BROKEN[0]), source="sampler")


class Sometimes(Nope):
    """Every other round one of the broken proposals, in turn; a good one in between."""

    name = "sometimes"

    async def propose(self, ctx):
        n = len(ctx.records)
        if n % 2 == 0 and n // 2 < len(BROKEN):
            return Proposal(config=dict(BROKEN[n // 2]), source="sampler")
        return Proposal(config={"x": n / 10, "opt": "a"}, source="sampler")


def nope(**kwargs):
    return Nope()


def sometimes(**kwargs):
    return Sometimes()
'''
ENTRY_POINTS = f"""
[llm_hpo.strategies]
nope = {MODULE}:nope
sometimes = {MODULE}:sometimes
"""
OBJECTIVE = """\
def fit(config):
    return {"loss": (config["x"] - 0.3) ** 2 + (0.1 if config["opt"] == "b" else 0.0)}
"""
TASK = """\
description: A fit; the value is its loss.
space:
  x: {type: float, low: 0.0, high: 1.0}
  opt: {type: categorical, choices: [a, b]}
metric: loss
objective: fit_objective:fit
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lay_out(tmp_path_factory.mktemp("site"), MODULE, PLUGIN, ENTRY_POINTS, "hpo-broken-strategies")


def run_agent(site: Path, folder: Path, strategy: str, budget: int) -> tuple[subprocess.CompletedProcess[str], Path]:
    (folder / "fit_objective.py").write_text(OBJECTIVE)
    (folder / "fit.yaml").write_text(TASK)
    save = folder / "study"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    argv = ["--task", str(folder / "fit.yaml"), "--strategy", strategy, "--budget", str(budget), "--save_dir"]
    run = subprocess.run(
        [sys.executable, "-m", "agent", *argv, str(save)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return run, save


@pytest.mark.slow
def test_each_broken_proposal_is_a_warning_and_a_round_of_the_sampler(site: Path, tmp_path: Path) -> None:
    run, save = run_agent(site, tmp_path, "sometimes", budget=10)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: strategy 'sometimes'")]
    assert len(warnings) == len(BROKEN), run.stderr
    for line, (_, words) in zip(warnings, BROKEN, strict=True):
        assert words in line and line.endswith("the study's sampler draws this round's configuration instead")
    assert "Traceback" not in run.stderr
    study = optuna.load_study(study_name="fit-sometimes-seed0", storage=f"sqlite:///{save / 'study.db'}")
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 10, "no RUNNING trial, no failed one"
    assert all(SPACE.validate_config(t.params) == t.params for t in trials)
    fallbacks = [t.number for t in trials if t.user_attrs.get("source") == "fallback"]
    assert fallbacks == [0, 2, 4, 6, 8]
    assert "the proposal of strategy 'sometimes' broke the search space" in trials[0].user_attrs["reason"]


@pytest.mark.slow
def test_three_broken_proposals_in_a_row_stop_the_run_naming_the_strategy(site: Path, tmp_path: Path) -> None:
    run, save = run_agent(site, tmp_path, "nope", budget=10)
    assert run.returncode == 1, run.stderr
    lines = run.stderr.splitlines()
    assert sum(line.startswith("warning: strategy 'nope' proposed a configuration") for line in lines) == 2
    assert lines[-1].startswith("error: strategy 'nope' proposed 3 configurations in a row that break the search")
    assert "opt: not one of the choices ['a', 'b']" in lines[-1] and "Traceback" not in run.stderr
    study = optuna.load_study(study_name="fit-nope-seed0", storage=f"sqlite:///{save / 'study.db'}")
    assert [(t.state, t.user_attrs.get("source")) for t in study.trials] == [(TrialState.COMPLETE, "fallback")] * 2
    assert all(t.params["opt"] in ("a", "b") for t in study.trials)


# ---- inside Optuna's own loop (StrategySampler) -----------------------------------------------------------


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(MODULE, None)


def fit(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    return (x - 0.3) ** 2 + (0.1 if trial.suggest_categorical("opt", ["a", "b"]) == "b" else 0.0)


def test_the_optuna_sampler_sends_broken_proposals_to_its_own_sampler(
    installed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.sampler import StrategySampler

    with StrategySampler("sometimes", budget=8, seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(fit, n_trials=8)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8
    assert all(SPACE.validate_config(t.params) == t.params for t in study.trials)
    warned = [r.getMessage() for r in caplog.records if r.name == "agent.sampler" and r.levelname == "WARNING"]
    assert warned and all(m.startswith("strategy 'sometimes' proposed a configuration that breaks") for m in warned)
    fallbacks = [t for t in study.trials if t.user_attrs.get("source") == "fallback"]
    assert len(fallbacks) == len(warned)


def test_the_optuna_sampler_stops_a_strategy_broken_three_times_in_a_row(installed: Path) -> None:
    from agent.sampler import StrategySampler

    with StrategySampler("nope", budget=8, seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        stop = "strategy 'nope' proposed 3 configurations in a row .* fix the strategy or give StrategySampler another"
        with pytest.raises(BrokenStrategy, match=stop):
            study.optimize(fit, n_trials=8)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.FAIL], "the first is Optuna's blind draw"
    assert all(t.params.get("opt") in ("a", "b") for t in study.trials[:3])
