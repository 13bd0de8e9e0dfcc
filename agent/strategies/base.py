"""One interface for every way of choosing the next configuration."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from agent.memory import Round
from agent.records import Direction, Proposal, TrialRecord
from agent.space import SearchSpace

__all__ = ["ProposeContext", "Proposal", "Strategy", "resumed_seed"]


@dataclass(frozen=True)
class ProposeContext:
    """What a strategy may look at when proposing."""

    space: SearchSpace
    records: Sequence[TrialRecord]
    budget: int
    remaining: int
    rng: random.Random
    direction: Direction = "minimize"


class Strategy(ABC):
    """Chooses configurations. ``sampler`` is the Optuna sampler the study uses when a proposal has none."""

    name: str

    @abstractmethod
    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        """The study's sampler; ``n_existing`` varies its seed on resume so it does not replay old draws."""

    @abstractmethod
    async def propose(self, ctx: ProposeContext) -> Proposal:
        """The next configuration to evaluate."""

    async def propose_batch(self, ctx: ProposeContext, k: int) -> list[Proposal]:
        """``k`` configurations to evaluate at once (parallel workers): by default ``k`` proposals in turn."""
        return [await self.propose(ctx) for _ in range(k)]

    async def fallback(self, ctx: ProposeContext, reason: str) -> Proposal:
        """A configuration chosen without the model, which could not be reached (``reason``): by default the
        study's sampler draws it. Strategies with an optimizer of their own let it choose."""
        return Proposal(config=None, source="fallback", reason=reason)

    def prompts(self) -> dict[str, str] | None:
        """The prompts a model of this strategy is sent (system, task, start), stored with the study for its
        report; None for strategies without a model."""
        return None

    def restore(self, rounds: Sequence[Round]) -> None:  # noqa: B027 (optional hook)
        """Resume the strategy's own state (the LLM's conversation) from the stored rounds."""

    def trial_started(self, number: int, proposal: Proposal) -> None:  # noqa: B027 (optional hook)
        """The study accepted ``proposal`` as trial ``number``."""


def resumed_seed(seed: int, n_existing: int) -> int:
    """A seed that is ``seed`` on a fresh study and a different, still reproducible one on each resume."""
    return seed if n_existing == 0 else (seed * 1_000_003 + n_existing) % (2**31 - 1)
