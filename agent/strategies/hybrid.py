"""``hybrid``: the model and a Bayesian optimizer share the study; each round goes to the one that has paid.

The optimizer is ``bo``'s (a Gaussian process on the ordinal encoding). The model opens the study with the
configuration a practitioner would start from (as in ``llm-bo``). From then on, each round:

1. the bandit of :mod:`agent.strategies.credit` gives the round to the model with its current share (the
   probability that the model's credit beats the optimizer's; a third at first, fading toward 10 % for a
   model whose trials do not pay, growing toward 90 % for one whose trials do);
2. an optimizer round evaluates the optimizer's next trial, exactly what ``bo`` would;
3. a model round shows the model the optimizer's state: every result so far (one short line per trial,
   appended as trials finish, so a prompt cache reuses everything before them) and the optimizer's next
   candidates with the value its Gaussian process predicts and how sure it is (:mod:`agent.strategies.
   candidates`; the optimizer's own choice first). The model takes a candidate (``take``: a dozen tokens of
   answer) or proposes its own configuration, validated and reasked like every answer (numeric grids shown
   as ranges, its values moved onto the grid).

Every trial, whoever chose it, enters the optimizer's data; a failed one counts as the worst value seen (no
penalty beyond the data's range, which would flatten the model's picture of everything else). Each trial
records the round's decision: whose round it was, the model's share, both sources' credit, and what the model
chose. When the model cannot be reached, or its answers stay invalid, the optimizer proposes in its stead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from agent.conversation import Agent
from agent.messages import UserPart
from agent.records import Proposal, ProposalSource, SourceData, short_value
from tools.take_candidate import TakeCandidate

from ._model import model_agent
from .base import BuildContext, ProposeContext, Strategy, StrategySpec
from .candidates import Candidate, optimizer_candidates
from .credit import ArmCredit
from .llm_bo import LLMBOStrategy
from .surrogate import SurrogateModel, surrogate_for

__all__ = ["CANDIDATES", "SPEC", "HybridStrategy"]

#: Candidates shown to the model each model round. Each is a line of numbers, and a small model reads every
#: digit as a token (about 30 per line): two keep a round's prompt to a second or so of reading.
CANDIDATES = 2


class HybridStrategy(LLMBOStrategy):
    """See the module docstring: ``llm-bo`` whose model also takes part in later rounds (its conversation,
    prompts and rounds are kept as ``llm-bo`` keeps them). ``agent`` must offer ``take`` (its ``take`` tool)
    and see the ``ledger`` history; its spec builds it so."""

    name = "hybrid"

    def __init__(
        self,
        agent: Agent,
        take: TakeCandidate,
        *,
        budget: int,
        surrogate: SurrogateModel | None = None,
        experience: Sequence[SourceData] = (),
        credit: ArmCredit | None = None,
        templates_state: str = "optimizer_state",
        start_template: str = "start_default",
    ) -> None:
        super().__init__(agent, surrogate, experience=experience, budget=budget)
        self.take = take
        self.budget = budget
        self.credit = credit or ArmCredit()
        self._state_template = templates_state
        self._start = agent.templates.render(start_template, eval_tool=agent.eval_tool.name)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        opener = self._next_opener(ctx)  # earlier studies' best configurations open a study learning from them
        if opener is not None:
            return opener
        if not self.learns and not ctx.records and not self._issued:
            return self._settle(await self._ask(ctx, [UserPart(content=self._start)], ()), ctx, {"round": "model"})
        credit = self.credit.credit(ctx.records, ctx.direction)
        share = self.credit.share(credit, ctx.rng, left=(self.budget - len(ctx.records)) / self.budget)
        decision: dict[str, Any] = {
            "share": round(share, 3),
            "credit": {s: [round(c.alpha, 3), round(c.beta, 3), c.trials] for s, c in credit.items()},
        }
        if ctx.rng.random() >= share:
            config, how = self._surrogate_config(ctx)
            source: ProposalSource = "random" if how.get("startup") else "surrogate"
            return Proposal(config=config, source=source, decision=decision | how | {"round": "optimizer"})
        candidates = optimizer_candidates(
            self.proposer(ctx.time_left), ctx.space, ctx.records, ctx.rng, CANDIDATES, self._issued, ctx.direction
        )
        self.take.offer([c.config for c in candidates])
        state = self._state(ctx, candidates)
        proposal = await self._ask(ctx, [UserPart(content=state)], candidates)
        return self._settle(proposal, ctx, decision | {"round": "model"}, candidates)

    async def _ask(self, ctx: ProposeContext, opening: list[UserPart], candidates: Sequence[Candidate]) -> Proposal:
        tools = [self.agent.eval_tool.name, self.take.name] if candidates else [self.agent.eval_tool.name]
        return await self.agent.propose(ctx.records, opening=opening, tools=tools)

    def _settle(
        self,
        proposal: Proposal,
        ctx: ProposeContext,
        decision: dict[str, Any],
        candidates: Sequence[Candidate] = (),
    ) -> Proposal:
        """The model's answer moved onto the grids, or, when it gave none, the optimizer's choice instead."""
        if proposal.config is None:  # invalid answers after every reask: the optimizer proposes in its stead
            proposal.config = candidates[0].config if candidates else self._surrogate_config(ctx)[0]
            self._issued.add(ctx.space.key(proposal.config))
        else:  # on the grid already: the agent's canonical configuration
            self._issued.add(ctx.space.key(proposal.config))
            keys = [ctx.space.key(c.config) for c in candidates]
            key = ctx.space.key(proposal.config)
            decision["choice"] = f"candidate {keys.index(key) + 1}" if key in keys else "own"
        proposal.decision = {**decision, **proposal.decision}
        return proposal

    def _state(self, ctx: ProposeContext, candidates: Sequence[Candidate]) -> str:
        shown = []
        for c in candidates:
            values = ",".join(short_value(c.config[name]) for name in ctx.space.params)
            prediction = "unknown" if math.isnan(c.mean) else f"{c.mean:.2g}±{c.sd:.1g}"
            shown.append({"line": values, "prediction": prediction})
        return self.agent.templates.render(
            self._state_template, number=len(ctx.records), budget=self.budget, candidates=shown
        )


def _build(ctx: BuildContext) -> Strategy:
    take = TakeCandidate(ctx.task.space, CANDIDATES)
    # The ledger history: a prompt whose prefix never changes between calls (llama.cpp's prompt cache).
    settings = dataclasses.replace(ctx.settings, history="ledger")
    agent = model_agent(ctx, start_template=None, intro_template="hybrid", extra_tools=[take], settings=settings)
    return HybridStrategy(agent, take, budget=ctx.budget, surrogate=surrogate_for(ctx.task), experience=ctx.experience)


SPEC = StrategySpec(
    name="hybrid",
    summary="the model and a Gaussian process share the study; each round goes to whichever has paid (a bandit)",
    build=_build,
    needs_model=True,
)
