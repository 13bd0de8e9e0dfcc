"""Earlier studies for a strategy without an optimizer of its own to carry them (``random``, ``tpe``, the paper's
loop, an installed sampler): their best configurations open the study (source ``transfer``, as ``bo`` opens
with them), then the strategy proposes as it always does. ``bo``, ``llm-bo`` and ``hybrid`` learn from them
all through the study (:class:`~agent.strategies.bo.BOStrategy`)."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from agent.memory import Round
from agent.records import SourceData
from agent.space import Choice

from .base import Proposal, ProposeContext, Strategy
from .transfer import TransferSurrogate

__all__ = ["Opened"]

_SPARE = 10  # an opener the study already tried is skipped for the next on the list


class Opened(Strategy):
    """``inner`` after ``n_open`` of the sources' best configurations."""

    def __init__(self, inner: Strategy, experience: Sequence[SourceData], n_open: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.transfer = TransferSurrogate(tuple(experience))
        self.n_open = n_open
        self._list: list[dict[str, Choice]] | None = None
        self._opened: set[str] = set()

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return self.inner.sampler(seed, n_existing)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return self._opener(ctx) or await self.inner.propose(ctx)

    async def propose_batch(self, ctx: ProposeContext, k: int) -> list[Proposal]:
        first = self._opener(ctx)
        if first is None:
            return await self.inner.propose_batch(ctx, k)
        return [first, *(await self.propose_batch(ctx, k - 1) if k > 1 else [])]

    async def fallback(self, ctx: ProposeContext, reason: str) -> Proposal:
        return await self.inner.fallback(ctx, reason)

    def prompts(self) -> dict[str, str] | None:
        return self.inner.prompts()

    def restore(self, rounds: Sequence[Round]) -> None:
        self.inner.restore(rounds)

    def trial_started(self, number: int, proposal: Proposal) -> None:
        self.inner.trial_started(number, proposal)

    def _opener(self, ctx: ProposeContext) -> Proposal | None:
        opened = {ctx.space.key(r.config) for r in ctx.records if r.source == "transfer"} | self._opened
        if len(opened) >= self.n_open:
            return None
        if self._list is None:
            self._list = self.transfer.openers(ctx.space, self.n_open + _SPARE)
        taken = {ctx.space.key(r.config) for r in ctx.records}
        for i, config in enumerate(self._list):
            key = ctx.space.key(config)
            if key not in taken and key not in self._opened:
                self._opened.add(key)
                return Proposal(config=config, source="transfer", decision={"opener": i})
        return None
