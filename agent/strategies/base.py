"""One interface for every way of choosing the next configuration."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from agent.memory import Part, Round, dump_parts
from agent.providers.base import Usage
from agent.records import ProposalSource, TrialRecord
from agent.space import Choice, SearchSpace

__all__ = ["ProposeContext", "Proposal", "Strategy"]


@dataclass(frozen=True)
class ProposeContext:
    """What a strategy may look at when proposing."""

    space: SearchSpace
    records: Sequence[TrialRecord]
    budget: int
    remaining: int
    rng: random.Random


@dataclass
class Proposal:
    """A configuration to evaluate, or ``config=None`` to let the study's sampler draw one."""

    config: dict[str, Choice] | None
    source: ProposalSource
    parts: list[Part] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    reasks: int = 0
    answer: str | None = None
    #: Wall time the strategy took to propose this configuration (set by the runner).
    seconds: float | None = None

    def attrs(self) -> dict[str, Any]:
        """What the trial stores about how it was proposed."""
        if self.source == "sampler":
            return {}
        timing = {} if self.seconds is None else {"propose_s": round(self.seconds, 4)}
        if self.source == "surrogate":
            return timing
        return timing | {
            "answer": self.answer,
            "reasks": self.reasks,
            "conversation": dump_parts(self.parts),
            "usage": [u.model_dump() for u in self.usage],
        }


class Strategy(ABC):
    """Chooses configurations. ``sampler`` is the Optuna sampler the study uses when a proposal has none."""

    name: str

    @abstractmethod
    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        """The study's sampler; ``n_existing`` varies its seed on resume so it does not replay old draws."""

    @abstractmethod
    async def propose(self, ctx: ProposeContext) -> Proposal:
        """The next configuration to evaluate."""

    def restore(self, rounds: Sequence[Round]) -> None:  # noqa: B027 (optional hook)
        """Resume the strategy's own state (the LLM's conversation) from the stored rounds."""

    def trial_started(self, number: int, proposal: Proposal) -> None:  # noqa: B027 (optional hook)
        """The study accepted ``proposal`` as trial ``number``."""


def resumed_seed(seed: int, n_existing: int) -> int:
    """A seed that is ``seed`` on a fresh study and a different, still reproducible one on each resume."""
    return seed if n_existing == 0 else (seed * 1_000_003 + n_existing) % (2**31 - 1)
