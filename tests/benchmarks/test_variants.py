from __future__ import annotations

import random

import pytest

from agent.providers.scripted import ScriptedProvider
from agent.records import TrialRecord
from agent.strategies.base import BuildContext, ProposeContext
from agent.strategies.bo import SPEC as BO
from agent.strategies.bo import BOStrategy
from agent.tasks import build_task
from benchmarks import multifidelity as mf
from benchmarks._variants import default_with, with_recorded_budget


def test_a_variant_is_the_default_with_its_options_set_and_named_apart() -> None:
    spec = default_with("llm-bo-test", cost_aware=False, rungs=True)
    assert spec.name == "llm-bo-test" and spec.needs_model
    strategy = spec.build(BuildContext(task=build_task("toy-branin"), budget=5, seed=0, provider=ScriptedProvider([])))
    assert isinstance(strategy, BOStrategy)
    assert strategy.cost_aware is False and strategy.rungs is True
    assert BOStrategy().cost_aware is True  # the default itself is left as it is


def test_an_option_the_strategy_lacks_is_refused_when_the_variant_is_named() -> None:
    with pytest.raises(TypeError, match="no option"):
        default_with("llm-bo-typo", cost_awre=False)


def test_a_variant_of_another_strategy_built_on_bo() -> None:
    """The multifidelity bench's source studies are ``bo`` as it was before the model over steps."""
    spec = default_with("bo-complete", base=BO, fidelity=False)
    assert spec.name == "bo-complete" and not spec.needs_model
    strategy = spec.build(BuildContext(task=build_task("toy-branin"), budget=5, seed=0))
    assert type(strategy) is BOStrategy and strategy.fidelity is False
    assert BOStrategy().fidelity is True


def test_a_variant_may_see_a_time_budget_counted_in_its_trials_recorded_seconds_alone() -> None:
    """The multifidelity bench's ``default-asha-cost``: its proposals see the share of a time budget its finished
    trials' recorded seconds left (here 36 of 100 s spent), whatever the machine's clock says."""
    task = build_task("toy-branin")
    spec = with_recorded_budget(default_with("llm-bo-timed"), 100.0)
    strategy = spec.build(BuildContext(task=task, budget=30, seed=0, provider=ScriptedProvider([])))
    assert isinstance(strategy, BOStrategy)
    rng = random.Random(0)
    records = [
        TrialRecord(number=i, config=task.space.sample(rng), state="complete", value=float(i % 3), cost_s=i + 1.0)
        for i in range(8)
    ]
    _, decision = strategy._surrogate_config(ProposeContext(space=task.space, records=records, rng=rng))
    assert decision["cost_weight"] == 0.64
    assert mf.ARM["default-asha-cost"].timed and mf.spec("llm-bo-cost") is mf.COST
