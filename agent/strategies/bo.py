"""``bo``: Bayesian optimization alone, a Gaussian process over the ordinal encoding of
:mod:`agent.strategies.surrogate` (a few random trials first)."""

from __future__ import annotations

import optuna

from agent.space import Choice

from .base import BuildContext, Proposal, ProposeContext, Strategy, StrategySpec, resumed_seed
from .surrogate import SurrogateModel

__all__ = ["SPEC", "BOStrategy"]


class BOStrategy(Strategy):
    """The surrogate proposes every configuration, never one already tried or in flight."""

    name = "bo"

    def __init__(self, surrogate: SurrogateModel | None = None) -> None:
        self.surrogate = surrogate or SurrogateModel()
        self._issued: set[str] = set()  # proposed this process but maybe not yet in the records (batches)

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        # Draws only a fallback configuration (the LLM's invalid first answer); proposals name their config.
        return optuna.samplers.RandomSampler(seed=resumed_seed(seed, n_existing))

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return Proposal(config=self._surrogate_config(ctx), source="surrogate")

    async def fallback(self, ctx: ProposeContext, reason: str) -> Proposal:
        return Proposal(config=self._surrogate_config(ctx), source="fallback", reason=reason)

    def _surrogate_config(self, ctx: ProposeContext) -> dict[str, Choice]:
        config = self.surrogate.propose(
            ctx.space, ctx.records, ctx.rng, also_taken=self._issued, direction=ctx.direction
        )
        self._issued.add(ctx.space.key(config))
        return config


def _build(ctx: BuildContext) -> Strategy:
    return BOStrategy()


SPEC = StrategySpec(
    name="bo",
    summary="a Gaussian process proposes every trial (Bayesian optimization, no model)",
    build=_build,
)
