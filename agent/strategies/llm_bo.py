"""``llm-bo`` (the default): the model proposes the first configuration, a Gaussian process the rest.

The model is asked for the configuration a practitioner would start from (``prompts/start_default.j2``,
through the usual validated, reasked tool call); then ``bo``'s surrogate takes over and takes the model's
result as its first data point. Given earlier studies (``--learn-from``), the model's part is to judge and
map them (:mod:`agent.sources`, before the study starts); their best configurations open the study instead
of its guess, and the optimizer learns from them (:class:`~agent.strategies.bo.BOStrategy`).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.conversation import Agent
from agent.memory import Round
from agent.records import SourceData

from ._model import model_agent
from .base import BuildContext, Proposal, ProposeContext, Strategy, StrategySpec
from .bo import BOStrategy
from .surrogate import SurrogateModel, surrogate_for

__all__ = ["SPEC", "LLMBOStrategy"]


class LLMBOStrategy(BOStrategy):
    """The model proposes the first configuration; the surrogate the rest."""

    name = "llm-bo"

    def __init__(
        self,
        agent: Agent,
        surrogate: SurrogateModel | None = None,
        *,
        experience: Sequence[SourceData] = (),
        budget: int | None = None,
    ) -> None:
        super().__init__(surrogate, experience=experience, budget=budget)
        self.agent = agent

    def prompts(self) -> dict[str, str]:
        return self.agent.prompts()

    def restore(self, rounds: Sequence[Round]) -> None:
        self.agent.restore(rounds)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        if not self.learns and not ctx.records and not self._issued:
            proposal = await self.agent.propose(ctx.records)
            if proposal.config is not None:  # already on the grid (the agent's canonical configuration)
                self._issued.add(ctx.space.key(proposal.config))
            return proposal
        return await super().propose(ctx)

    def trial_started(self, number: int, proposal: Proposal) -> None:
        if proposal.parts:
            self.agent.add_round(number, proposal.parts)


def _build(ctx: BuildContext) -> Strategy:
    agent = model_agent(ctx, start_template="start_default")
    return LLMBOStrategy(agent, surrogate_for(ctx.task), experience=ctx.experience, budget=ctx.budget)


SPEC = StrategySpec(
    name="llm-bo",
    summary="the model proposes the first trial, a Gaussian process the rest (the default)",
    build=_build,
    needs_model=True,
)
