"""The machinery of learning from sources (:mod:`agent.strategies.transfer`): RGPE's ranking weights over Gaussian
processes and the expected improvement of their weighted ensemble, maximized over a pool of configurations.

Feurer, Letham, Hutter, Bakshy (2018), "Scalable Meta-Learning for Bayesian Optimization using Ranking-Weighted
Gaussian Process Ensembles". Each model here is a :class:`~agent._optuna.GaussianProcess` over the columns of
the parameters it knows (:class:`~agent.space.UnitEncoder`); values are lower-is-better scores (normal scores
of ranks, or standardized values).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from agent._optuna import GaussianProcess, one_thread
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace, UnitEncoder, is_ordinal

from .candidates import FloatArray, best_by_ei
from .surrogate import untried

__all__ = ["Ensemble", "Model", "fill", "fit_model", "maximize_ei", "np_rng", "one_thread", "rank_weights"]

_TOP = 4  # each model's best configurations, whose neighbours the pool explores


@dataclass(frozen=True)
class Model:
    """A Gaussian process over some of the space's parameters (those of ``configs``), fitted to ``scores``
    (lower is better)."""

    name: str
    encoder: UnitEncoder
    gp: GaussianProcess
    configs: tuple[dict[str, Choice], ...]
    scores: FloatArray

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        return self.gp.predict(self.encoder(configs))


def fit_model(space: SearchSpace, name: str, configs: Sequence[dict[str, Choice]], scores: FloatArray) -> Model:
    """A :class:`Model` of ``scores`` at ``configs``, over the parameters the configurations have."""
    names = [n for n in space.params if n in configs[0]]
    encoder = UnitEncoder(space, names)
    gp = GaussianProcess.fit(encoder(configs), scores, encoder.is_categorical)
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


def np_rng(rng: random.Random) -> np.random.Generator:
    """A numpy generator seeded from ``rng`` (one draw of it)."""
    return np.random.default_rng(rng.randrange(2**32))


def rank_weights(models: Sequence[Model], target: Model | None, rng: np.random.Generator, samples: int) -> FloatArray:
    """RGPE's weights, the sources' then this study's: for each posterior draw, the model with the fewest
    misordered pairs of this study's results wins it; weights are the shares of draws won. A source must do
    better than this study's own model to win a draw: ties go to this study's model (among sources, at
    random), so results that cannot be ordered (every trial failed alike) give the sources nothing. A source
    whose median loss exceeds the 95th percentile of this study's model's loss is dropped, and so is one that
    orders the results no better than a coin (median loss at least half the pairs): a source that cannot tell
    them apart (over a few of the parameters, which the results share) knows nothing of them, and with a few
    results this study's model, judged without each, often does worse than a coin. Before two results the
    sources share the weight equally."""
    if target is None or len(target.scores) < 2:
        return np.array([1.0 / len(models)] * len(models) + [0.0])
    y = target.scores
    order = y[:, None] < y[None, :]  # order[j, k]: result j is better than result k
    counted = y[:, None] != y[None, :]
    losses = []
    for m in models:
        f = _draws(m, target.configs, samples, rng)  # draws x n
        wrong = (f[:, :, None] < f[:, None, :]) != order
        losses.append((wrong & counted).sum(axis=(1, 2)))
    mean, var = target.gp.loo()
    f = mean + np.sqrt(var) * rng.standard_normal((samples, len(y)))  # leave-one-out draws at each result
    wrong = (f[:, :, None] < y[None, None, :]) != order
    target_loss = (wrong & counted).sum(axis=(1, 2))
    limit = np.quantile(target_loss, 0.95)
    coin = counted.sum() / 2  # a coin's loss: each pair of results misordered in one of its two orders
    keep = np.array([np.median(x) <= limit and np.median(x) < coin for x in losses])
    sources = np.where(keep[:, None], np.array(losses, dtype=np.float64), np.inf)
    noisy = np.vstack([sources + rng.uniform(0.1, 0.6, sources.shape), target_loss[None, :]])  # losses are counts
    wins = np.bincount(np.argmin(noisy, axis=0), minlength=len(models) + 1)
    result: FloatArray = wins / samples
    return result


def _draws(model: Model, configs: Sequence[Mapping[str, Any]], samples: int, rng: np.random.Generator) -> FloatArray:
    """``samples`` joint posterior draws of ``model`` at ``configs`` (draws x configs), equal at configurations it
    cannot tell apart (alike in every parameter it knows): such a pair is a tie, which counts as one misordered
    pair of its two, as a coin would. Drawn apart, the sampler's jitter would order them at random, and a source
    over a few of the parameters, blind to the rest, would win draws by luck (docs/warp.md)."""
    x = model.encoder(configs)
    _, first, back = np.unique(x, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.intp)
    rank[np.argsort(first)] = np.arange(len(first))  # each distinct row's place in the order of first sight
    draws: FloatArray = model.gp.sample(x[np.sort(first)], samples, rng)[:, rank[np.ravel(back)]]
    return draws


class Predictor(Protocol):
    """A model of scores at configurations: :class:`Model`, or another of a caller's (a benchmark's variant)."""

    @property
    def configs(self) -> Sequence[dict[str, Choice]]: ...

    @property
    def scores(self) -> FloatArray: ...

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]: ...


class Ensemble:
    """RGPE's weighted ensemble of models (a :class:`~agent.strategies.candidates.Surface`): the mean ``sum w_i
    mu_i``, the variance ``sum w_i^2 sigma_i^2``. ``target`` is this study's own model, whose best score is the
    incumbent (without it, the best of the sources'); ``to_values`` turns its scores into the study's units."""

    def __init__(
        self,
        ensemble: Sequence[tuple[Predictor, float]],
        target: Predictor | None,
        to_values: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]] | None = None,
    ) -> None:
        self.members = list(ensemble)
        self.target = target
        self._to_values = to_values
        best = target.scores if target is not None else np.concatenate([m.scores for m, _ in self.members])
        self.incumbent = float(best.min())

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        mean = np.zeros(len(configs))
        var = np.zeros(len(configs))
        for m, w in self.members:
            mu, v = m.predict(configs)
            mean += w * mu
            var += w * w * v
        return mean, var

    def seeds(self, space: SearchSpace, rng: random.Random) -> list[dict[str, Choice]]:
        """This study's best results, and each weighted source's best completed with this study's best."""
        seeds: list[dict[str, Choice]] = []
        if self.target is not None:
            seeds += [self.target.configs[int(i)] for i in np.argsort(self.target.scores, kind="stable")[:_TOP]]
        best = seeds[0] if seeds else {}
        for m, _ in self.members:
            if m is not self.target:
                seeds += [
                    fill(space, {**best, **m.configs[int(i)]}, rng) for i in np.argsort(m.scores, kind="stable")[:_TOP]
                ]
        return seeds

    def values(self, mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
        """In the study's units; unknown (NaN) where the scores have none to return to (ranks)."""
        if self._to_values is None:
            return np.full_like(mean, np.nan), np.full_like(sd, np.nan)
        return self._to_values(mean, sd)


def maximize_ei(
    space: SearchSpace,
    ensemble: Sequence[tuple[Predictor, float]],
    target: Predictor | None,
    rng: random.Random,
    taken: set[str],
) -> dict[str, Choice]:
    """The untried configuration of highest expected improvement under the ensemble (:func:`~agent.strategies.
    candidates.best_by_ei`), a random untried one when the pool has none."""
    best = best_by_ei(space, Ensemble(ensemble, target), rng, taken, 1)
    return best[0] if best else untried(space, taken, rng)
