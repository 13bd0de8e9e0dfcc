"""The machinery of learning from sources (:mod:`agent.strategies.transfer`): RGPE's ranking weights over Gaussian
processes and the expected improvement of their weighted ensemble, maximized over a pool of configurations.

Feurer, Letham, Hutter, Bakshy (2018), "Scalable Meta-Learning for Bayesian Optimization using Ranking-Weighted
Gaussian Process Ensembles". Each model here is a :class:`~agent.strategies._gp.GaussianProcess` over the
parameters it knows; values are lower-is-better scores (normal scores of ranks, or standardized values).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace

from ._gp import Encoder, FloatArray, GaussianProcess
from .candidates import distinct, neighbour
from .grid import is_ordinal
from .surrogate import untried

__all__ = ["Model", "fill", "fit_model", "maximize_ei", "np_rng", "one_thread", "rank_weights"]

_POOL = 512  # random configurations scored per proposal
_NEIGHBOURS = 16
_TOP = 4
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Model:
    """A Gaussian process over some of the space's parameters (those of ``configs``), fitted to ``scores``
    (lower is better)."""

    name: str
    encoder: Encoder
    gp: GaussianProcess
    configs: tuple[dict[str, Choice], ...]
    scores: FloatArray

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        return self.gp.predict(self.encoder(configs))


def fit_model(space: SearchSpace, name: str, configs: Sequence[dict[str, Choice]], scores: FloatArray) -> Model:
    """A :class:`Model` of ``scores`` at ``configs``, over the parameters the configurations have."""
    names = [n for n in space.params if n in configs[0]]
    encoder = Encoder(space, names)
    gp = GaussianProcess(encoder(configs), scores, encoder.is_categorical)
    return Model(name, encoder, gp, tuple(configs), scores)


def fill(space: SearchSpace, config: Mapping[str, Choice], rng: random.Random) -> dict[str, Choice]:
    """``config`` completed to the whole space: a parameter it lacks takes the middle of its range (the grid's
    middle value; a categorical without order, a random choice). The middle is the least committal guess,
    and at a grid's ends training most often fails (docs/search-quality.md, section 3)."""
    out: dict[str, Choice] = {}
    for name, p in space.params.items():
        if name in config:
            out[name] = config[name]
        elif isinstance(p, CategoricalParam):
            out[name] = p.choices[(len(p.choices) - 1) // 2] if is_ordinal(p) else rng.choice(p.choices)
        elif isinstance(p, FloatParam):
            out[name] = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
        else:
            assert isinstance(p, IntParam)
            out[name] = round(math.sqrt(p.low * p.high)) if p.log else (p.low + p.high) // 2
    return space.validate_config(out)


def one_thread() -> Any:
    """BLAS limited to one thread: on these small matrices its threads cost ten times the work."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def np_rng(rng: random.Random) -> np.random.Generator:
    """A numpy generator seeded from ``rng`` (one draw of it)."""
    return np.random.default_rng(rng.randrange(2**32))


def rank_weights(models: Sequence[Model], target: Model | None, rng: np.random.Generator, samples: int) -> FloatArray:
    """RGPE's weights, the sources' then this study's: for each posterior draw, the model with the fewest
    misordered pairs of this study's results wins it; weights are the shares of draws won. A source must do
    better than this study's own model to win a draw: ties go to this study's model (among sources, at
    random), so results that cannot be ordered (every trial failed alike) give the sources nothing. A source
    whose median loss exceeds the 95th percentile of this study's model's loss is dropped. Before two results
    the sources share the weight equally."""
    if target is None or len(target.scores) < 2:
        return np.array([1.0 / len(models)] * len(models) + [0.0])
    y = target.scores
    order = y[:, None] < y[None, :]  # order[j, k]: result j is better than result k
    counted = y[:, None] != y[None, :]
    losses = []
    for m in models:
        f = m.gp.sample(m.encoder(target.configs), samples, rng)  # draws x n
        wrong = (f[:, :, None] < f[:, None, :]) != order
        losses.append((wrong & counted).sum(axis=(1, 2)))
    mean, var = target.gp.loo()
    f = mean + np.sqrt(var) * rng.standard_normal((samples, len(y)))  # leave-one-out draws at each result
    wrong = (f[:, :, None] < y[None, None, :]) != order
    target_loss = (wrong & counted).sum(axis=(1, 2))
    limit = np.quantile(target_loss, 0.95)
    keep = np.array([np.median(x) <= limit for x in losses])
    sources = np.where(keep[:, None], np.array(losses, dtype=np.float64), np.inf)
    noisy = np.vstack([sources + rng.uniform(0.1, 0.6, sources.shape), target_loss[None, :]])  # losses are counts
    wins = np.bincount(np.argmin(noisy, axis=0), minlength=len(models) + 1)
    result: FloatArray = wins / samples
    return result


def maximize_ei(
    space: SearchSpace,
    ensemble: Sequence[tuple[Model, float]],
    target: Model | None,
    rng: random.Random,
    taken: set[str],
) -> dict[str, Choice]:
    """The untried configuration of highest expected improvement under the ensemble, over a pool of random
    configurations, neighbours of this study's best results and of the weighted sources' best, refined once
    around the pool's best."""
    incumbent = float(target.scores.min()) if target is not None else min(float(m.scores.min()) for m, _ in ensemble)
    seeds: list[dict[str, Choice]] = []
    if target is not None:
        seeds += [target.configs[int(i)] for i in np.argsort(target.scores, kind="stable")[:_TOP]]
    best = seeds[0] if seeds else {}
    for m, _ in ensemble:
        if m is not target:
            seeds += [
                fill(space, {**best, **m.configs[int(i)]}, rng) for i in np.argsort(m.scores, kind="stable")[:_TOP]
            ]
    pool = distinct(
        space,
        seeds
        + [neighbour(space, c, rng) for c in seeds for _ in range(_NEIGHBOURS)]
        + [space.sample(rng) for _ in range(_POOL)],
        taken,
    )
    if not pool:
        return untried(space, taken, rng)
    ei = _ei(ensemble, pool, incumbent)
    top = [pool[int(i)] for i in np.argsort(-ei, kind="stable")[:_TOP]]
    local = distinct(space, [neighbour(space, c, rng) for c in top for _ in range(_NEIGHBOURS)], taken)
    pool, ei = pool + local, np.concatenate([ei, _ei(ensemble, local, incumbent)]) if local else ei
    return pool[int(np.argmax(ei))]


def _ei(ensemble: Sequence[tuple[Model, float]], configs: Sequence[dict[str, Choice]], incumbent: float) -> FloatArray:
    mean = np.zeros(len(configs))
    var = np.zeros(len(configs))
    for m, w in ensemble:
        mu, v = m.predict(configs)
        mean += w * mu
        var += w * w * v
    sd = np.sqrt(np.maximum(var, 1e-12))
    z = (incumbent - mean) / sd
    cdf = np.array([_NORMAL.cdf(x) for x in z])
    result: FloatArray = (incumbent - mean) * cdf + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return result
