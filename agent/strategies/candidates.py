"""The optimizer's next candidates, with the value its Gaussian process predicts for each and how sure it is.

The first candidate is the optimizer's own next trial (exactly what ``bo`` would evaluate). The others are the
configurations with the highest expected improvement over the incumbent among a pool: random configurations
and neighbours of the best trials (one or two parameters moved one grid step, or a tenth of their range).
Every prediction comes from one Gaussian process fitted to the finished trials (:class:`agent._optuna.
GaussianProcess`, the model Optuna's ``GPSampler`` fits), on the same ordinal encoding as the optimizer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from agent._optuna import GaussianProcess
from agent.records import Direction, TrialRecord
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace

from .grid import is_ordinal
from .surrogate import encode, ordinal_distributions, training_data

__all__ = ["Candidate", "distinct", "neighbour", "optimizer_candidates"]

_POOL = 256  # random configurations scored per round
_NEIGHBOURS = 16  # per top trial
_TOP = 4


@dataclass(frozen=True)
class Candidate:
    """A configuration the optimizer would try, with its predicted value (mean and standard deviation); the
    prediction is NaN before there are enough trials to fit the model."""

    config: dict[str, Choice]
    mean: float
    sd: float


class Proposer(Protocol):
    """What proposes the optimizer's own next trial (``bo``'s surrogate, or the transfer surrogate)."""

    def propose(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> dict[str, Choice]: ...


def optimizer_candidates(
    surrogate: Proposer,
    space: SearchSpace,
    records: Sequence[TrialRecord],
    rng: random.Random,
    k: int,
    taken: Collection[str] = (),
    direction: Direction = "minimize",
) -> list[Candidate]:
    """Up to ``k`` distinct untried candidates, the optimizer's own next trial first."""
    first = surrogate.propose(space, records, rng, also_taken=taken, direction=direction)
    data = training_data(space, records, direction)
    if len(data) < 2:
        return [Candidate(first, math.nan, math.nan)]
    gp = GaussianProcess(
        ordinal_distributions(space), [p for p, _ in data], [v for _, v in data], direction == "maximize"
    )
    excluded = {space.key(r.config) for r in records} | set(taken) | {space.key(first)}
    pool = _pool(space, records, rng, direction, excluded)
    chosen = [first]
    if pool and k > 1:
        mean, sd = gp.predict([encode(space, c) for c in pool])
        values = [v for _, v in data]
        incumbent = max(values) if direction == "maximize" else min(values)
        improvement = (mean - incumbent) if direction == "maximize" else (incumbent - mean)
        ei = _expected_improvement(improvement, sd)
        for i in np.argsort(-ei, kind="stable")[: k - 1]:
            chosen.append(pool[int(i)])
    mean, sd = gp.predict([encode(space, c) for c in chosen])
    return [Candidate(c, float(m), float(s)) for c, m, s in zip(chosen, mean, sd, strict=True)]


def _expected_improvement(improvement: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[max(0, improvement)] under a normal belief: ``improvement * Phi(z) + sd * phi(z)``, ``z = improvement /
    sd`` (math.erf: scipy.stats would add most of a second to the CLI's start)."""
    z = improvement / np.maximum(sd, 1e-12)
    cdf = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in z])
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    result: np.ndarray = improvement * cdf + sd * pdf
    return result


def _pool(
    space: SearchSpace,
    records: Sequence[TrialRecord],
    rng: random.Random,
    direction: Direction,
    excluded: set[str],
) -> list[dict[str, Choice]]:
    """Random configurations and neighbours of the best trials, untried and distinct."""
    sign = -1.0 if direction == "maximize" else 1.0
    done = sorted(
        (sign * r.value, r.number, r.config) for r in records if r.state == "complete" and r.value is not None
    )
    configs = [neighbour(space, config, rng) for _, _, config in done[:_TOP] for _ in range(_NEIGHBOURS)]
    configs += [space.sample(rng) for _ in range(_POOL)]
    return distinct(space, configs, excluded)


def distinct(
    space: SearchSpace, configs: Sequence[dict[str, Choice]], taken: Collection[str]
) -> list[dict[str, Choice]]:
    """``configs`` without repeats and without those in ``taken`` (keys), in order."""
    out: list[dict[str, Choice]] = []
    seen = set(taken)
    for config in configs:
        key = space.key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
    return out


def neighbour(space: SearchSpace, config: dict[str, Choice], rng: random.Random) -> dict[str, Choice]:
    """``config`` with one or two parameters moved a little: a grid step, a tenth of the range (of its log
    where the scale is log), one unit, or another choice."""
    out = dict(config)
    for name in rng.sample(list(space.params), k=min(len(space.params), rng.choice((1, 1, 2)))):
        p = space.params[name]
        value = out[name]
        if isinstance(p, CategoricalParam):
            if is_ordinal(p):
                i = p.choices.index(value) + rng.choice((-1, 1))
                out[name] = p.choices[min(max(i, 0), len(p.choices) - 1)]
            elif len(p.choices) > 1:
                out[name] = rng.choice([c for c in p.choices if c != value])
        elif isinstance(p, FloatParam):
            if p.log:
                step = 0.1 * (math.log(p.high) - math.log(p.low))
                moved = math.exp(math.log(float(value)) + rng.uniform(-step, step))
            else:
                moved = float(value) + rng.uniform(-0.1, 0.1) * (p.high - p.low)
            out[name] = min(max(moved, p.low), p.high)
        else:
            assert isinstance(p, IntParam)
            out[name] = min(max(int(value) + rng.choice((-1, 1)), p.low), p.high)
    return out
