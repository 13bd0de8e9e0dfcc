"""The default strategy with one of its options changed: a variant a benchmark measures before it may become (or
after it stopped being) the default, named apart so its studies and results say which ran."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Collection, Sequence

from agent.records import Direction, TrialRecord
from agent.space import SearchSpace
from agent.strategies.base import BuildContext, Strategy, StrategySpec
from agent.strategies.bo import BOStrategy
from agent.strategies.llm_bo import SPEC as LLMBO

__all__ = ["default_with", "with_recorded_budget"]


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


def with_recorded_budget(spec: StrategySpec, seconds: float) -> StrategySpec:
    """``spec`` (built on :class:`BOStrategy`) whose proposals see a time budget of ``seconds`` counted in its
    finished trials' recorded seconds alone (``compute_s``): a replayed table's time budget without the machine's
    time for proposals, which on the curve tables is more than a trial's recorded seconds (a study's own
    ``--time-budget`` counts both, as a user's hour is an hour). The study runs to its trial budget regardless:
    the bench scores it at equal recorded seconds."""

    def build(ctx: BuildContext) -> Strategy:
        strategy = spec.build(ctx)
        assert isinstance(strategy, BOStrategy)
        choose = strategy._choose

        def timed(
            space: SearchSpace,
            records: Sequence[TrialRecord],
            rng: random.Random,
            taken: Collection[str],
            direction: Direction,
            time_left: float | None,
        ) -> object:
            used = sum(r.compute_s or 0.0 for r in records if r.finished)
            return choose(space, records, rng, taken, direction, max(0.0, 1.0 - used / seconds))

        strategy._choose = timed  # type: ignore[method-assign,assignment]
        return strategy

    return dataclasses.replace(spec, build=build)
