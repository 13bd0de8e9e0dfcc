"""Credit for each arm of the hybrid's bandit, the model and the optimizer, and the model's share of the next
rounds. (An *arm* is who earns a trial's credit; a trial's *proposer* is its record's ``source``; an earlier
study learned from is a *source*, :mod:`agent.sources`.)

Each finished trial earns its arm a reward in [0, 1]: the share of the trials finished before it that it beats
(ties count half; a failed trial beats nothing). The model is credited only for what the optimizer would not
have done: a model round that took the optimizer's own next trial (candidate 1) is the optimizer's. An arm's
credit is a Beta posterior over its chance of beating the trials so far, updated with its rewards as
fractional successes. Each round goes to the model with the probability that a draw from its posterior exceeds
one from the optimizer's (Thompson sampling's probability matching), kept within ``[floor, cap]``: the model
always keeps some rounds, so a model that improves (or a task where its knowledge starts to matter) can show
it, and never takes every round, so the optimizer keeps learning from proposals of its own. A weak model's
share fades toward the floor, a strong one's grows toward the cap. As the budget runs out the model gets fewer
rounds: the share is scaled by the part of the budget left, so the last rounds are the optimizer's to refine
what the study found.

Credit is recomputed from the trial records each round, so a resumed study picks up where it was.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agent.metrics import rank_rewards
from agent.records import Direction, TrialRecord

__all__ = ["Credit", "Arm", "ArmCredit", "signed_values", "arm_of"]

Arm = Literal["model", "optimizer"]

_DRAWS = 4000  # Monte Carlo draws for the share


def arm_of(record: TrialRecord) -> Arm | None:
    """Who earns credit for a trial: the model for its own proposals, the optimizer for its proposals (its
    random startup draws too), for the rounds it proposed in the model's stead (fallbacks) and for model rounds
    that took its own next trial (candidate 1: what it would have done anyway); nobody for other trials
    (adopted, sampled, transferred)."""
    if record.source == "llm":
        return "optimizer" if record.proposal.decision.get("choice") == "candidate 1" else "model"
    if record.source in ("surrogate", "random", "fallback"):
        return "optimizer"
    return None


def signed_values(records: Sequence[TrialRecord], direction: Direction) -> list[float | None]:
    """Each record's value, negated for a maximized study so that lower is better; None for a trial without one."""
    sign = -1.0 if direction == "maximize" else 1.0
    return [sign * r.value if r.state == "complete" and r.value is not None else None for r in records]


@dataclass(frozen=True)
class Credit:
    """A Beta posterior: ``alpha`` successes and ``beta`` failures, priors included."""

    alpha: float
    beta: float
    trials: int = 0

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True)
class ArmCredit:
    """The bandit over its two arms (see the module docstring). The priors make the model's first share about a
    third: an unknown model starts with fewer rounds than the optimizer it may slow down."""

    model_prior: tuple[float, float] = (1.0, 1.4)
    optimizer_prior: tuple[float, float] = (1.4, 1.0)
    floor: float = 0.1
    cap: float = 0.9

    def credit(self, records: Sequence[TrialRecord], direction: Direction) -> dict[Arm, Credit]:
        """Each arm's posterior after the finished trials in ``records`` (in number order)."""
        totals: dict[Arm, list[float]] = {
            "model": [*self.model_prior, 0.0],
            "optimizer": [*self.optimizer_prior, 0.0],
        }
        finished = sorted((r for r in records if r.finished), key=lambda r: r.number)
        for record, reward in zip(finished, rank_rewards(signed_values(finished, direction)), strict=True):
            arm = arm_of(record)
            if arm is None or reward is None:
                continue
            totals[arm][0] += reward
            totals[arm][1] += 1.0 - reward
            totals[arm][2] += 1
        return {s: Credit(a, b, int(n)) for s, (a, b, n) in totals.items()}

    def share(self, credit: dict[Arm, Credit], rng: random.Random, left: float = 1.0) -> float:
        """The model's share of the next round: P(model's draw > optimizer's), within [floor, cap], times
        ``left``, the part of the budget not yet used."""
        m, o = credit["model"], credit["optimizer"]
        draws = np.random.default_rng(rng.randrange(2**32))
        wins = float(np.mean(draws.beta(m.alpha, m.beta, _DRAWS) > draws.beta(o.alpha, o.beta, _DRAWS)))
        return min(max(wins, self.floor), self.cap) * min(max(left, 0.0), 1.0)
