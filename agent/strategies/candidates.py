"""The optimizer's next candidates, with the value its model predicts for each and how sure it is, and the one
expected improvement and pool of candidates every proposal by a model of the package maximizes over.

The first candidate is the optimizer's own next trial (exactly what ``bo`` would evaluate). The others are the
configurations with the highest expected improvement under the model that proposed it (:class:`Surface`: the
Gaussian process ``bo``'s sampler fitted, or the ensemble of the transfer surrogate) among a pool: random
configurations and neighbours of the best ones (one or two parameters moved one grid step, or a tenth of their
range), refined once around the pool's best (:func:`best_by_ei`). Every prediction comes from that model: one
fit per round.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.records import Direction, TrialRecord
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace, is_ordinal

__all__ = [
    "Acquisition",
    "Candidate",
    "Proposer",
    "Surface",
    "best_by_ei",
    "distinct",
    "expected_improvement",
    "neighbour",
    "optimizer_candidates",
]

FloatArray = npt.NDArray[np.float64]
_RANDOM = 512  # random configurations in a pool
_NEIGHBOURS = 16  # per configuration whose neighbourhood a pool explores
_TOP = 4  # the pool's best by expected improvement, whose neighbourhood is explored once more


@dataclass(frozen=True)
class Candidate:
    """A configuration the optimizer would try, with its predicted value (mean and standard deviation); the
    prediction is NaN before there are enough trials to fit the model."""

    config: dict[str, Choice]
    mean: float
    sd: float


class Surface(Protocol):
    """What the model that proposed believes: a score (lower is better) at each configuration."""

    #: The best score so far, what an improvement is measured from.
    incumbent: float

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        """The mean and variance of the score at each configuration."""
        ...

    def seeds(self, space: SearchSpace, rng: random.Random) -> list[dict[str, Choice]]:
        """The configurations whose neighbours a pool explores (the best ones known)."""
        ...

    def values(self, mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
        """A predicted score (mean and standard deviation) in the study's own units."""
        ...


#: What a pool of candidates is ranked by in place of their expected improvement: a function of it
#: and of the configurations (expected improvement per second: :mod:`agent.strategies.cost`).
Acquisition = Callable[[FloatArray, Sequence[dict[str, Choice]]], FloatArray]


class Proposer(Protocol):
    """What proposes the optimizer's own next trial (``bo``'s surrogate, or the transfer surrogate), with the
    model it chose it with (None while it has none: its random startup)."""

    def proposal(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> tuple[dict[str, Choice], Surface | None]: ...


def optimizer_candidates(
    proposer: Proposer,
    space: SearchSpace,
    records: Sequence[TrialRecord],
    rng: random.Random,
    k: int,
    taken: Collection[str] = (),
    direction: Direction = "minimize",
) -> list[Candidate]:
    """Up to ``k`` distinct untried candidates, the optimizer's own next trial first; only that one, with an
    unknown prediction, while the optimizer has no model."""
    first, surface = proposer.proposal(space, records, rng, also_taken=taken, direction=direction)
    if surface is None:
        return [Candidate(first, math.nan, math.nan)]
    excluded = {space.key(r.config) for r in records} | set(taken) | {space.key(first)}
    chosen = [first, *(best_by_ei(space, surface, rng, excluded, k - 1) if k > 1 else [])]
    mean, var = surface.predict(chosen)
    mean, sd = surface.values(mean, np.sqrt(np.maximum(var, 0.0)))
    return [Candidate(c, float(m), float(s)) for c, m, s in zip(chosen, mean, sd, strict=True)]


def expected_improvement(mean: FloatArray, var: FloatArray, incumbent: float) -> FloatArray:
    """E[max(0, incumbent - score)] under a normal belief of the score (lower is better): ``d * Phi(z) + sd *
    phi(z)``, ``d = incumbent - mean``, ``z = d / sd`` (math.erfc: scipy.stats would add most of a second to
    the CLI's start)."""
    sd = np.sqrt(np.maximum(var, 1e-12))
    d = incumbent - mean
    z = d / sd
    cdf = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in z])
    result: FloatArray = d * cdf + sd * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return result


def best_by_ei(
    space: SearchSpace,
    surface: Surface,
    rng: random.Random,
    taken: Collection[str],
    k: int,
    acquisition: Acquisition | None = None,
) -> list[dict[str, Choice]]:
    """The ``k`` untried configurations (not in ``taken``) of highest expected improvement under ``surface``
    (or of highest ``acquisition``, a function of a pool's expected improvements and configurations), best first,
    from one pool: the surface's seeds, their neighbours and random configurations, then the neighbours of the
    pool's best few; fewer when the space has fewer left."""

    def score(configs: list[dict[str, Choice]]) -> FloatArray:
        ei = expected_improvement(*surface.predict(configs), surface.incumbent)
        return ei if acquisition is None else acquisition(ei, configs)

    seeds = surface.seeds(space, rng)
    pool = distinct(
        space,
        seeds
        + [neighbour(space, c, rng) for c in seeds for _ in range(_NEIGHBOURS)]
        + [space.sample(rng) for _ in range(_RANDOM)],
        taken,
    )
    if not pool:
        return []
    ei = score(pool)
    top = [pool[int(i)] for i in np.argsort(-ei, kind="stable")[:_TOP]]
    local = distinct(
        space,
        [neighbour(space, c, rng) for c in top for _ in range(_NEIGHBOURS)],
        set(taken) | {space.key(c) for c in pool},
    )
    if local:
        pool, ei = pool + local, np.concatenate([ei, score(local)])
    return [pool[int(i)] for i in np.argsort(-ei, kind="stable")[:k]]


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
