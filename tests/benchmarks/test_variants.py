from __future__ import annotations

import pytest

from agent.providers.scripted import ScriptedProvider
from agent.strategies.base import BuildContext
from agent.strategies.bo import SPEC as BO
from agent.strategies.bo import BOStrategy
from agent.tasks import build_task
from benchmarks._variants import default_with


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
