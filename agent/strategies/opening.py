"""Earlier studies' best configurations opening a study (source ``transfer``): :class:`Openers` hands them out,
for ``bo``, ``llm-bo`` and ``hybrid`` (which then learn from the sources all through the study,
:class:`~agent.strategies.bo.BOStrategy`) and for :class:`Opened`, the wrapper of a strategy without an
optimizer of its own to carry them (``random``, ``tpe``, the paper's loop, an installed sampler), which then
proposes as it always does."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import optuna

from agent.memory import Round
from agent.records import SourceData
from agent.space import Choice

from .base import Proposal, ProposeContext, Strategy
from .transfer import TransferSurrogate

__all__ = ["Opened", "Openers"]

_SPARE = 10  # an opener the study already tried is skipped for the next on the list


class Openers:
    """The sources' best configurations (:meth:`TransferSurrogate.openers`), handed out one at a time while
    fewer than ``n_open`` opened the study: trials of source ``transfer`` in the records, and those this
    process handed out (maybe not yet recorded). One the study already has is skipped for the next."""

    def __init__(self, transfer: TransferSurrogate, n_open: int) -> None:
        self.transfer = transfer
        self.n_open = n_open
        self._list: list[dict[str, Choice]] | None = None
        self._given: set[str] = set()

    def next(self, ctx: ProposeContext, also_taken: Collection[str] = ()) -> Proposal | None:
        """The next opener (``also_taken``: configurations in flight), or None once the study is opened."""
        space = ctx.space
        opened = {space.key(r.config) for r in ctx.records if r.source == "transfer"} | self._given
        if len(opened) >= self.n_open:
            return None
        if self._list is None:
            self._list = self.transfer.openers(space, self.n_open + _SPARE)
        taken = {space.key(r.config) for r in ctx.records} | self._given | set(also_taken)
        for i, config in enumerate(self._list):
            key = space.key(config)
            if key not in taken:
                self._given.add(key)
                return Proposal(config=config, source="transfer", decision={"opener": i})
        return None


class Opened(Strategy):
    """``inner`` after ``n_open`` of the sources' best configurations."""

    def __init__(self, inner: Strategy, experience: Sequence[SourceData], n_open: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.openers = Openers(TransferSurrogate(tuple(experience)), n_open)

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return self.inner.sampler(seed, n_existing)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return self.openers.next(ctx) or await self.inner.propose(ctx)

    async def propose_batch(self, ctx: ProposeContext, k: int) -> list[Proposal]:
        first = self.openers.next(ctx)
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
