"""``bo``: Bayesian optimization, a Gaussian process over the ordinal encoding of
:mod:`agent.strategies.surrogate` (a few random trials first).

Given earlier studies (``--learn-from``, :class:`~agent.records.SourceData`), it learns from them
(:mod:`agent.strategies.transfer`): a few of their best configurations open the study (source ``transfer``),
then a ranking-weighted ensemble of their models and the study's own proposes, each proposal recording the
weights it was made with. ``llm-bo`` and ``hybrid`` build on this class and inherit both.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import optuna

from agent.records import Direction, SourceData, TrialRecord
from agent.space import Choice, SearchSpace

from .base import BuildContext, Proposal, ProposeContext, Strategy, StrategySpec, resumed_seed
from .candidates import Proposer, Surface
from .cost import CostModel, per_second
from .fidelity import proposal_over_steps, with_predicted_finals
from .opening import Openers
from .rungs import highest_rung
from .surrogate import SurrogateModel, surrogate_for
from .transfer import TransferSurrogate, rounded

__all__ = ["OPENERS", "SPEC", "BOStrategy", "openers_for"]

#: Earlier studies' best configurations that open a study learning from them (measured: docs/transfer.md).
OPENERS = 3


class BOStrategy(Strategy):
    """The surrogate proposes every configuration, never one already tried or in flight; with ``experience``,
    the sources' best configurations open the study and the transfer surrogate proposes the rest."""

    name = "bo"

    def __init__(
        self,
        surrogate: SurrogateModel | None = None,
        *,
        experience: Sequence[SourceData] = (),
        budget: int | None = None,
        n_open: int | None = None,
        transfer: TransferSurrogate | None = None,
        rungs: bool = False,
        fidelity: bool = True,
        cost_aware: bool = True,
    ) -> None:
        """``transfer``: the surrogate over ``experience`` (default: :class:`TransferSurrogate`'s RGPE);
        ``n_open``: how many of the sources' best open the study (default :func:`openers_for`).
        ``fidelity`` (the default): where a scheduler stopped trials early, the Gaussian process over
        (configuration, step) proposes (:mod:`~agent.strategies.fidelity`), every stopped trial's values at the
        rungs its data; with sources, the study's own model fits the final values it predicts for its stopped
        trials. Measured against the complete trials alone: docs/multifidelity.md. ``rungs`` (with
        ``fidelity=False``): while few trials ran to the end, fit on the highest rung enough trials reached
        (:func:`~agent.strategies.rungs.highest_rung`, BOHB-style) instead of the complete trials alone; with
        sources and ``fidelity=False`` the study's own model always does. ``cost_aware``: under a time budget,
        weigh what a configuration is expected to cost (expected improvement per second,
        :mod:`~agent.strategies.cost`; the study's own model only, not yet with sources)."""
        self.rungs = rungs
        self.fidelity = fidelity
        self.cost_aware = cost_aware
        self.surrogate = surrogate or SurrogateModel()
        self.transfer = (
            (transfer or TransferSurrogate(tuple(experience), transform=self.surrogate.transform))
            if experience
            else None
        )
        n_open = openers_for(len(experience)) if n_open is None else n_open
        self.n_open = 0 if self.transfer is None else min(n_open, budget if budget is not None else n_open)
        self._issued: set[str] = set()  # proposed this process but maybe not yet in the records (batches)
        self._openers = Openers(self.transfer, self.n_open) if self.transfer is not None else None

    @property
    def learns(self) -> bool:
        """Does it learn from earlier studies?"""
        return self.transfer is not None

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        # Draws only a fallback configuration (the LLM's invalid first answer); proposals name their config.
        return optuna.samplers.RandomSampler(seed=resumed_seed(seed, n_existing))

    async def propose(self, ctx: ProposeContext) -> Proposal:
        opener = self._next_opener(ctx)
        if opener is not None:
            return opener
        config, decision = self._surrogate_config(ctx)
        return Proposal(config=config, source="random" if decision.get("startup") else "surrogate", decision=decision)

    async def fallback(self, ctx: ProposeContext, reason: str) -> Proposal:
        config, decision = self._surrogate_config(ctx)
        return Proposal(config=config, source="fallback", reason=reason, decision=decision)

    def _surrogate_config(self, ctx: ProposeContext) -> tuple[dict[str, Choice], dict[str, object]]:
        """The optimizer's next configuration, and what to record of how it chose (the sources' weights;
        ``startup``: drawn at random, its model having too few trials)."""
        choice = self._choose(ctx.space, ctx.records, ctx.rng, self._issued, ctx.direction, ctx.time_left)
        self._issued.add(ctx.space.key(choice.config))
        return choice.config, choice.decision

    def _choose(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str],
        direction: Direction,
        time_left: float | None,
    ) -> _Choice:
        """The one door every proposal of the optimizer passes, its rounds' and the first candidate ``hybrid`` shows
        the model alike: the configuration (not one of ``records`` nor ``also_taken``), the model it was chosen with
        and what to record of how."""
        taken = {space.key(r.config) for r in records} | set(also_taken)
        if self.transfer is not None:
            own = self._own(space, records, direction)
            decision: dict[str, object] = {}
            if self.fidelity and any(mine is not theirs for mine, theirs in zip(own, records, strict=True)):
                decision["fidelity"] = True
            p = self.transfer.propose_weighted(space, own, rng, taken, direction)
            decision["weights"] = rounded(p.weights)
            if p.startup:
                decision["startup"] = True
            return _Choice(p.config, p.surface, decision)
        over_steps = (
            proposal_over_steps(space, records, rng, taken, direction, self.surrogate.transform)
            if self.fidelity
            else None
        )
        if over_steps is not None:
            return _Choice(*over_steps, {"fidelity": True})
        fitted = highest_rung(records, min_points=len(space.params) + 2) if self.rungs else records
        decision = {"startup": True} if self.surrogate.starting(space, fitted, direction) else {}
        config, surface = self.surrogate.proposal(space, fitted, rng, also_taken=taken, direction=direction)
        cost = self._cost_model(space, records, time_left) if surface is not None else None
        if cost is not None and surface is not None and time_left is not None:
            config = per_second(space, surface, config, cost, time_left, rng, taken)
            decision["cost_weight"] = round(time_left, 3)
        return _Choice(config, surface, decision)

    def _own(self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction) -> list[TrialRecord]:
        """The study's trials as its own model fits them beside the sources: its stopped trials too (the final
        values the model over steps predicts for them, or the highest rung they reached), since on complete trials
        alone a scheduled study has almost none and the sources kept all the weight."""
        if self.fidelity:
            return with_predicted_finals(space, records, direction, self.surrogate.transform)
        return highest_rung(records, min_points=len(space.params) + 2)

    def proposer(self, time_left: float | None = None) -> Proposer:
        """What proposes the optimizer's own next trial, with the model it chose it with: its rounds' door
        (:meth:`_choose`), ``time_left`` the share of the study's time budget left (None without one)."""
        return _Door(self, time_left)

    def _cost_model(
        self, space: SearchSpace, records: Sequence[TrialRecord], time_left: float | None
    ) -> CostModel | None:
        """The model of what configurations cost, where proposals weigh it: under a time budget, in a study
        whose trials report no steps (a scheduler's study pays for what it does not stop; weighing its costs too
        measured level with not: docs/multifidelity.md), with complete trials whose costs differ
        (:mod:`agent.strategies.cost`)."""
        if time_left is None or not self.cost_aware or any(r.curve for r in records):
            return None
        return CostModel.of(space, records)

    def _next_opener(self, ctx: ProposeContext) -> Proposal | None:
        """The next of the sources' best configurations while fewer than ``n_open`` opened the study."""
        opener = self._openers.next(ctx, self._issued) if self._openers is not None else None
        if opener is not None and opener.config is not None:
            self._issued.add(ctx.space.key(opener.config))
        return opener


@dataclass(frozen=True)
class _Choice:
    """What :meth:`BOStrategy._choose` chose: the configuration, the model it was chosen with (None while the
    model has none), and the decision a trial records of it."""

    config: dict[str, Choice]
    surface: Surface | None
    decision: dict[str, object]


@dataclass(frozen=True)
class _Door:
    """:meth:`BOStrategy._choose` as a :class:`~.candidates.Proposer`: the candidates ``hybrid`` shows the model
    start with exactly the trial the optimizer's own round would run (scheduled, learning from sources, fitting
    the highest rung, weighing cost under a time budget alike)."""

    strategy: BOStrategy
    time_left: float | None

    def proposal(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> tuple[dict[str, Choice], Surface | None]:
        choice = self.strategy._choose(space, records, rng, also_taken, direction, self.time_left)
        return choice.config, choice.surface


def openers_for(n_sources: int) -> int:
    """How many of the sources' best open a study: one per source, at most :data:`OPENERS`. A single earlier
    study that misleads then costs one trial, not three (measured on HPOLib, where three decoy openers cost
    ``bo``'s last three trials at budget 30: docs/warp.md); several sources keep their three."""
    return min(OPENERS, n_sources)


def _build(ctx: BuildContext) -> Strategy:
    return BOStrategy(surrogate_for(ctx.task), experience=ctx.experience, budget=ctx.budget)


SPEC = StrategySpec(
    name="bo",
    summary="a Gaussian process proposes every trial (Bayesian optimization, no model)",
    build=_build,
)
