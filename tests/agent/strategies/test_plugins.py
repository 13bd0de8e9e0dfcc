"""Strategies of installed packages (entry-point group ``llm_hpo.strategies``): a real distribution on the path,
listed, run by the command line, the bench and the Optuna sampler, with no change to the project."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from agent.errors import UserError
from agent.sampler import StrategySampler
from agent.strategies.baselines import SamplerStrategy
from agent.strategies.registry import ENTRY_POINT_GROUP, get_strategy, list_strategies, make_strategy
from agent.tasks import build_task
from tests.distributions import lay_out

ROOT = Path(__file__).resolve().parents[3]
MODULE = "hpo_strategy_demo"

PLUGIN = '''
"""Strategies of a demo package."""
import optuna

from agent.records import Proposal
from agent.strategies.base import Strategy


def cmaes(*, seed, budget, **kwargs):
    """Optuna's CMA-ES, its startup trials a fifth of the budget."""
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=max(2, budget // 5))


class Centre(Strategy):
    """Always the centre of the first parameter's range, then the study's sampler."""

    name = "centre"

    def sampler(self, seed, n_existing):
        return optuna.samplers.RandomSampler(seed=seed + n_existing)

    async def propose(self, ctx):
        if ctx.records:
            return Proposal(config=None, source="sampler")
        config = {n: p.low + (p.high - p.low) / 2 for n, p in ctx.space.params.items()}
        return Proposal(config=config, source="sampler")


def centre(*, seed, budget, **kwargs):
    """A project strategy: the centre first."""
    return Centre()


def raising(*, seed, budget, **kwargs):
    return 1 / 0


def wrong_type(*, seed, budget, **kwargs):
    return "tpe"
'''

ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
cmaes = {MODULE}:cmaes
centre = {MODULE}:centre
raising = {MODULE}:raising
wrong-type = {MODULE}:wrong_type
broken = {MODULE}:no_such_factory
tpe = {MODULE}:cmaes
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an installed distribution, as pip lays one out: the module and its dist-info."""
    return lay_out(tmp_path_factory.mktemp("site"), MODULE, PLUGIN, ENTRY_POINTS, "hpo-strategy-demo")


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(MODULE, None)


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_registered_strategies_are_listed_with_their_package(installed: Path) -> None:
    listed = {spec.name: spec for spec in list_strategies()}
    assert listed["cmaes"].summary == "Optuna's CMA-ES, its startup trials a fifth of the budget."
    assert listed["cmaes"].origin == "hpo-strategy-demo 0.1" and not listed["cmaes"].needs_model
    assert listed["broken"].summary.startswith(f"cannot load {MODULE}:no_such_factory (AttributeError")
    assert listed["tpe"].origin == "built-in", "a built-in strategy of the same name wins"


def test_a_sampler_factory_becomes_a_strategy_reseeded_on_resume(installed: Path) -> None:
    strategy = make_strategy("cmaes", task=build_task("toy-branin"), budget=10, seed=4)
    assert isinstance(strategy, SamplerStrategy) and strategy.name == "cmaes"
    first, resumed = strategy.sampler(4, 0), strategy.sampler(4, 7)
    assert isinstance(first, optuna.samplers.CmaEsSampler) and isinstance(resumed, optuna.samplers.CmaEsSampler)
    assert first is not resumed


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken", "strategy 'broken' (hpo_strategy_demo:no_such_factory, entry point group llm_hpo.strategies)"),
        (
            "raising",
            "strategy 'raising' (hpo_strategy_demo:raising, entry point group llm_hpo.strategies): "
            "its factory raised ZeroDivisionError",
        ),
        ("wrong-type", "its factory returned a str, not an Optuna sampler or a Strategy"),
    ],
)
def test_a_broken_registration_is_one_error_naming_it(installed: Path, name: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        make_strategy(name, task=build_task("toy-branin"), budget=5, seed=0)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_name_lists_the_installed_ones_too(installed: Path) -> None:
    with pytest.raises(UserError, match="unknown strategy 'nope'; choose from llm-bo, hybrid, .*cmaes, centre"):
        get_strategy("nope")


def test_the_optuna_sampler_runs_a_registered_strategy(installed: Path) -> None:
    with StrategySampler("centre", budget=4, seed=0) as sampler:
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: (t.suggest_float("x", 0.0, 4.0) - 1.0) ** 2, n_trials=4)
    assert len(study.trials) == 4
    assert study.trials[1].params["x"] == 2.0, "the registered strategy's own proposal (the first is Optuna's)"


@pytest.mark.slow
def test_the_command_line_and_the_bench_list_and_run_it(site: Path, tmp_path: Path) -> None:
    env = _env(site)
    listing = subprocess.run(
        [sys.executable, "-m", "agent", "strategies"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    line = "Optuna's CMA-ES, its startup trials a fifth of the budget. (hpo-strategy-demo 0.1)"
    assert re.search(rf"^cmaes +{re.escape(line)}$", listing.stdout, re.MULTILINE), listing.stdout

    save = tmp_path / "study"
    args = ["--task", "toy-branin", "--strategy", "cmaes", "--budget", "8", "--save_dir", str(save), "--quiet"]
    run = subprocess.run([sys.executable, "-m", "agent", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="toy-branin-cmaes-seed0", storage=f"sqlite:///{save / 'study.db'}")
    assert len(study.trials) == 8 and study.user_attrs["strategy"] == "cmaes"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    out = tmp_path / "bench"
    bench = ["bench", "--tasks", "toy-branin", "--strategies", "cmaes,random", "--budget", "6", "--seeds", "2"]
    bench += ["--out", str(out), "--random-samples", "50", "--quiet"]
    run = subprocess.run([sys.executable, "-m", "agent", *bench], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = (out / "report.md").read_text()
    assert "cmaes" in report
    summaries = optuna.get_all_study_summaries(f"sqlite:///{out / 'bench.db'}")
    assert sorted(s.study_name for s in summaries if "cmaes" in s.study_name) == [
        "toy-branin/cmaes/seed0",
        "toy-branin/cmaes/seed1",
    ]
    assert all(s.n_trials == 6 for s in summaries)
