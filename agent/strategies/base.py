"""One interface for every way of choosing the next configuration, and how a strategy declares itself.

A strategy is a :class:`Strategy`; what the registry (:mod:`agent.strategies.registry`) knows of one is its
:class:`StrategySpec`: its name, a line of help, whether it needs a model,
and how to build it from a :class:`BuildContext` (the task, the budget, the seed, the model and its settings,
the study's records and events). A built-in strategy is one module declaring its spec plus one line in the
registry; an installed package adds one under the entry-point group ``llm_hpo.strategies``.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import optuna

from agent.conversation import AgentSettings
from agent.events import NO_EVENTS, EventSink
from agent.memory import Round
from agent.providers.base import Provider
from agent.records import Direction, Proposal, SourceData, TrialRecord
from agent.space import SearchSpace
from agent.tasks import TaskBrief
from agent.templates import Templates

__all__ = [
    "BuildContext",
    "ProposeContext",
    "Proposal",
    "Strategy",
    "StrategySpec",
    "resumed_seed",
]


@dataclass(frozen=True)
class ProposeContext:
    """What a strategy may look at when proposing (its budget it knows from its construction)."""

    space: SearchSpace
    records: Sequence[TrialRecord]
    rng: random.Random
    direction: Direction = "minimize"
    #: The share of the study's time budget still left (1 at its start, 0 once spent); None without one.
    time_left: float | None = None


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


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """What a strategy is built from: the study's one budget and seed, and for strategies that ask a model,
    the provider (owned by the caller), its settings and the prompt templates."""

    task: TaskBrief
    budget: int
    seed: int
    provider: Provider | None = None
    settings: AgentSettings = field(default_factory=AgentSettings)
    templates: Templates = field(default_factory=Templates)
    #: The study's trials as they are now (``read_history`` reads them).
    records: Callable[[], Sequence[TrialRecord]] = tuple
    events: EventSink = field(default=NO_EVENTS)
    #: Earlier studies in this study's terms (``--learn-from``): empty, the strategy learns from none.
    experience: Sequence[SourceData] = ()


@dataclass(frozen=True)
class StrategySpec:
    """A strategy as the registry knows it, declared once: the CLI's choices and help, ``python -m agent
    strategies``, the bench and :class:`~agent.sampler.StrategySampler` all read it."""

    name: str
    #: One line of help.
    summary: str
    build: Callable[[BuildContext], Strategy]
    #: Asks a model (the caller opens a provider for it).
    needs_model: bool = False
    #: ``built-in``, or the package that registered it.
    origin: str = "built-in"


def resumed_seed(seed: int, n_existing: int) -> int:
    """A seed that is ``seed`` on a fresh study and a different, still reproducible one on each resume."""
    return seed if n_existing == 0 else (seed * 1_000_003 + n_existing) % (2**31 - 1)
