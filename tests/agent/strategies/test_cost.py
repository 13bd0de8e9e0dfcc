"""Tests for agent/strategies/cost.py and its use by ``bo`` under a time budget: the model of what a configuration
costs, expected improvement per second, and a study whose time is short spending it on cheaper trials."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.deadline import StudyClock
from agent.optimize import StudyLoop
from agent.records import SourceData, TrialRecord
from agent.space import Choice, FloatParam, SearchSpace
from agent.strategies.base import ProposeContext
from agent.strategies.bo import BOStrategy
from agent.strategies.cost import CostModel, per_second
from agent.study import StudyStore
from agent.tasks import build_task
from evaluators.base import EvalResult
from tools.base import NO_TRIAL, TrialContext
from tools.evaluate_toy import EvaluateToy

SPACE = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0), "y": FloatParam(low=0.0, high=1.0)})
TASK = build_task("toy-branin")


def seconds(config: Mapping[str, Any]) -> float:
    """A configuration's cost: 1 s at x = 0, about 400 s at x = 1 (as epochs or widths make training dearer)."""
    return math.exp(6.0 * float(config["x"]))


def trial(number: int, config: dict[str, Choice], value: float, cost_s: float | None) -> TrialRecord:
    return TrialRecord(number=number, config=config, state="complete", value=value, cost_s=cost_s)


class Flat:
    """A model that believes every configuration equally promising: what to try is then the costs' to say."""

    incumbent = 0.0

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(configs)), np.ones(len(configs))

    def seeds(self, space: SearchSpace, rng: random.Random) -> list[dict[str, Choice]]:
        return [{"x": 0.5, "y": 0.5}]

    def values(self, mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return mean, sd


def paid(n: int, cost: Any = seconds) -> list[TrialRecord]:
    rng = random.Random(0)
    configs = [SPACE.sample(rng) for _ in range(n)]
    return [trial(i, c, float(i), cost(c)) for i, c in enumerate(configs)]


def test_the_cost_model_learns_which_configurations_are_dear() -> None:
    model = CostModel.of(SPACE, paid(8))
    assert model is not None
    cheap, dear = model.log_seconds([{"x": 0.1, "y": 0.5}, {"x": 0.9, "y": 0.5}])
    assert dear - cheap > 2.0, (cheap, dear)


def test_no_cost_model_without_three_paid_trials_or_where_every_trial_cost_the_same() -> None:
    assert CostModel.of(SPACE, paid(2)) is None
    assert CostModel.of(SPACE, paid(8, cost=lambda c: 30.0)) is None, "equal costs: nothing to weigh"
    unpaid = [r.model_copy(update={"cost_s": None, "seconds": None}) for r in paid(8)]
    assert CostModel.of(SPACE, unpaid) is None
    stopped = [r.model_copy(update={"state": "pruned"}) for r in paid(8)]
    assert CostModel.of(SPACE, stopped) is None, "a stopped trial's seconds are not what its configuration costs"


def test_expected_improvement_per_second_prefers_the_cheap_early_and_ignores_cost_once_the_time_is_spent() -> None:
    model = CostModel.of(SPACE, paid(8))
    assert model is not None
    first = {"x": 0.95, "y": 0.5}  # the model's own choice, and a dear one
    early = per_second(SPACE, Flat(), first, model, 1.0, random.Random(0), set())
    assert early != first and seconds(early) < seconds(first) / 20, early
    assert per_second(SPACE, Flat(), first, model, 0.0, random.Random(0), set()) == first


def context(records: Sequence[TrialRecord], time_left: float | None) -> ProposeContext:
    return ProposeContext(space=SPACE, records=records, rng=random.Random(1), time_left=time_left)


@pytest.mark.anyio
async def test_bo_weighs_cost_only_under_a_time_budget_and_says_how_much() -> None:
    records = paid(6)
    timed = await BOStrategy().propose(context(records, 0.8))
    assert timed.decision == {"cost_weight": 0.8}
    untimed = await BOStrategy().propose(context(records, None))
    assert "cost_weight" not in untimed.decision
    plain = await BOStrategy(cost_aware=False).propose(context(records, 0.8))
    assert plain.config == untimed.config, "without weighing cost, a time budget changes nothing in a proposal"
    scheduled = [r.model_copy(update={"curve": {1: r.value or 0.0}}) for r in records]
    assert "cost_weight" not in (await BOStrategy().propose(context(scheduled, 0.8))).decision
    configs = [SPACE.sample(random.Random(i)) for i in range(12)]
    source = SourceData("earlier", tuple(configs), tuple(float(c["x"]) for c in configs))
    learning = await BOStrategy(experience=[source], n_open=0).propose(context(records, 0.8))
    assert learning.config is not None and "cost_weight" not in learning.decision, "not weighed with sources"


class Dear(EvaluateToy):
    """Branin whose evaluations record a cost that grows with ``x2`` (1 s at its low end, ~400 s at its high):
    two of its three minima lie where trials are cheap."""

    def __init__(self) -> None:
        super().__init__("branin", TASK.space)

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        p = TASK.space.params["x2"]
        assert isinstance(p, FloatParam)
        share = (float(config["x2"]) - p.low) / (p.high - p.low)
        return replace(await super().evaluate(config), cost_s=math.exp(6.0 * share))


@pytest.mark.anyio
async def test_a_study_short_of_time_runs_more_and_cheaper_trials_than_one_blind_to_cost(tmp_path: Path) -> None:
    async def run(name: str, cost_aware: bool) -> list[TrialRecord]:
        store = StudyStore.open(
            save_dir=tmp_path / name, study_name=name, space=TASK.space, meta={"task": TASK.name},
            storage=str(tmp_path / name / "study.log"),
        )  # fmt: skip
        try:
            strategy = BOStrategy(cost_aware=cost_aware)
            clock = StudyClock(2000.0, clock=lambda: 0.0)  # only the recorded costs move the clock
            await StudyLoop(tool=Dear(), strategy=strategy, store=store, budget=60, clock=clock, seed=3).run()
            return store.records()
        finally:
            store.close()

    weighed, blind = await run("weighed", True), await run("blind", False)
    weights = [r.proposal.decision.get("cost_weight") for r in weighed]
    given = [w for w in weights if w is not None]
    assert given and given == sorted(given, reverse=True), "the weight of cost falls as the time runs out"
    assert len(weighed) > len(blind), (len(weighed), len(blind))
    after_startup = statistics.median(r.compute_s or 0.0 for r in weighed[3:])
    assert after_startup < statistics.median(r.compute_s or 0.0 for r in blind[3:])
