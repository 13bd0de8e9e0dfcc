"""``llm``: the agent proposes every configuration (the paper's loop)."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from agent.conversation import Agent
from agent.memory import Round
from tools.read_history import ReadHistory

from ._model import model_agent
from .base import BuildContext, Proposal, ProposeContext, Strategy, StrategySpec, resumed_seed

__all__ = ["SPEC", "LLMStrategy"]


class LLMStrategy(Strategy):
    """Each round the model reads the conversation and calls the evaluation tool.

    The study's sampler is a random sampler: it draws the fallback configuration when the model's answers
    stay invalid after every reask (``--on-invalid random``). The provider belongs to the caller (several
    studies may share one), who closes it.
    """

    name = "llm"

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=resumed_seed(seed, n_existing))

    def prompts(self) -> dict[str, str]:
        return self.agent.prompts()

    def restore(self, rounds: Sequence[Round]) -> None:
        self.agent.restore(rounds)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        if any(not r.finished for r in ctx.records):  # other workers' trials: the batch round shows them
            return (await self.agent.propose_batch(ctx.records, 1))[0]
        return await self.agent.propose(ctx.records)

    async def propose_batch(self, ctx: ProposeContext, k: int) -> list[Proposal]:
        if k == 1:
            return [await self.propose(ctx)]
        return await self.agent.propose_batch(ctx.records, k)

    def trial_started(self, number: int, proposal: Proposal) -> None:
        self.agent.add_round(number, proposal.parts)


def _build(ctx: BuildContext) -> Strategy:
    return LLMStrategy(
        model_agent(ctx, start_template="start", extra_tools=[ReadHistory(ctx.records, ctx.task.direction)])
    )


SPEC = StrategySpec(
    name="llm",
    summary="the model proposes every trial from the conversation (the paper's loop)",
    build=_build,
    needs_model=True,
)
