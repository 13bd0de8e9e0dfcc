"""``bo`` and ``llm-bo``: a surrogate model proposes; in ``llm-bo`` the model opens the study.

``bo`` is Bayesian optimization over the ordinal encoding of :mod:`agent.strategies.surrogate` (a Gaussian
process, a few random trials first). ``llm-bo`` lets the agent propose the first configuration (the one a
practitioner would start from, asked through the usual validated, reasked tool call), then hands over to the
surrogate, which takes the model's result as its first data point. The model sees numeric grids as the
ranges they span and its answer is moved to the nearest grid value (:mod:`agent.strategies.grid`).
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from agent.loop import Agent
from agent.memory import Round
from agent.space import Choice

from .base import Proposal, ProposeContext, Strategy, resumed_seed
from .surrogate import SurrogateModel

__all__ = ["BOStrategy", "LLMBOStrategy"]


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


class LLMBOStrategy(BOStrategy):
    """The model proposes the first configuration; the surrogate the rest."""

    name = "llm-bo"

    def __init__(self, agent: Agent, surrogate: SurrogateModel | None = None) -> None:
        super().__init__(surrogate)
        self.agent = agent

    def prompts(self) -> dict[str, str]:
        return self.agent.prompts()

    def restore(self, rounds: Sequence[Round]) -> None:
        self.agent.restore(rounds)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        if not ctx.records and not self._issued:
            proposal = await self.agent.propose(ctx.records)
            if proposal.config is not None:  # already on the grid (the agent's canonical configuration)
                self._issued.add(ctx.space.key(proposal.config))
            return proposal
        return await super().propose(ctx)

    def trial_started(self, number: int, proposal: Proposal) -> None:
        if proposal.parts:
            self.agent.add_round(number, proposal.parts)
