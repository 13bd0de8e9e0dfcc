"""The default strategy with one of its options changed: a variant a benchmark measures before it may become (or
after it stopped being) the default, named apart so its studies and results say which ran."""

from __future__ import annotations

import dataclasses

from agent.strategies.base import BuildContext, Strategy, StrategySpec
from agent.strategies.bo import BOStrategy
from agent.strategies.llm_bo import SPEC as LLMBO

__all__ = ["default_with"]


def default_with(name: str, /, base: StrategySpec = LLMBO, **options: bool) -> StrategySpec:
    """``llm-bo`` (or ``base``, another strategy built on :class:`BOStrategy`) named ``name``, each of ``options``
    (an attribute of :class:`BOStrategy`) set as given."""
    unknown = [key for key in options if not hasattr(BOStrategy(), key)]
    if unknown:
        raise TypeError(f"BOStrategy has no option {', '.join(unknown)}")

    def build(ctx: BuildContext) -> Strategy:
        strategy = base.build(ctx)
        assert isinstance(strategy, BOStrategy)
        for key, value in options.items():
            setattr(strategy, key, value)
        return strategy

    return dataclasses.replace(base, name=name, build=build)
