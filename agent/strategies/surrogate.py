"""A surrogate model over the trials so far proposes the next configuration (Bayesian optimization).

The search space is seen through an *ordinal* encoding: a categorical parameter whose choices are numbers in
increasing order (HPOBench's grids: ``batch_size`` 4, 6, 10, ..., 256) becomes the integer index of its
choice, so the model learns that neighbouring values behave alike. Optuna's samplers treat such a parameter
as unordered labels and learn nothing about a choice from its neighbours, which at budgets of 10-30 leaves
them near random search. Floats and integers keep their scale (log where declared); other categoricals stay
categorical.

Each proposal builds a private in-memory Optuna study from the finished trials and asks its sampler (a
Gaussian process by default) for one configuration. Failed trials are told as the worst value seen, so the
model steers away from them. A configuration already tried or in flight is never proposed: the sampler is
asked again, then an untried random configuration is drawn.

The values every Gaussian process of a study learns from pass through one function, :func:`scores` (lower is
better, warped by :mod:`agent.strategies.warp` so that a few outliers cannot flatten the rest), and come back
through its inverse, :func:`values_of`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna
import optuna.distributions as od

from agent._log import optuna_quiet
from agent._optuna import GaussianProcess, one_thread, sampler_columns
from agent.records import Direction, Transform, TrialRecord
from agent.space import (
    CategoricalParam,
    Choice,
    FloatParam,
    IntParam,
    SearchSpace,
    UnitEncoder,
    is_ordinal,
    nearest_index,
)
from agent.tasks import TaskBrief

from .warp import DEFAULT, Warped, warp

__all__ = [
    "SamplerSurface",
    "SurrogateModel",
    "decode",
    "encode",
    "ordinal_distributions",
    "scores",
    "surrogate_for",
    "training_data",
    "untried",
    "values_of",
]

FloatArray = npt.NDArray[np.float64]
_ASKS = 4  # the sampler's tries at an untried configuration before a random one is drawn
_RANDOM_TRIES = 1000
_SEEDS = 4  # the best trials whose neighbours a pool of candidates explores


def ordinal_distributions(space: SearchSpace) -> dict[str, od.BaseDistribution]:
    """The space as the surrogate sees it: ordinal grids become choice indices."""
    out: dict[str, od.BaseDistribution] = {}
    for name, p in space.params.items():
        if isinstance(p, CategoricalParam) and is_ordinal(p):
            out[name] = od.IntDistribution(0, len(p.choices) - 1)
        elif isinstance(p, CategoricalParam):
            out[name] = od.CategoricalDistribution(p.choices)
        elif isinstance(p, FloatParam):
            out[name] = od.FloatDistribution(p.low, p.high, log=p.log)
        else:
            assert isinstance(p, IntParam)
            out[name] = od.IntDistribution(p.low, p.high, log=p.log)
    return out


def encode(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration in the surrogate's coordinates (a grid value -> the index of its nearest choice)."""
    out: dict[str, Any] = {}
    for name, p in space.params.items():
        value = config[name]
        out[name] = nearest_index(p, float(value)) if isinstance(p, CategoricalParam) and is_ordinal(p) else value
    return out


def decode(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Choice]:
    """Back from the surrogate's coordinates to the space's values."""
    out: dict[str, Choice] = {}
    for name, p in space.params.items():
        value = params[name]
        out[name] = p.choices[int(value)] if isinstance(p, CategoricalParam) and is_ordinal(p) else value
    return out


def scores(values: Sequence[float], direction: Direction, transform: Transform | None = DEFAULT) -> Warped:
    """The study's own values as each of its Gaussian processes learns them (``bo``'s, the transfer surrogate's):
    lower is better, warped by ``transform`` and standardized. The one place they are transformed before a fit;
    :func:`values_of` is its inverse."""
    return warp(np.asarray(values, dtype=np.float64) * (-1.0 if direction == "maximize" else 1.0), transform)


def values_of(warped: Warped, mean: FloatArray, sd: FloatArray, direction: Direction) -> tuple[FloatArray, FloatArray]:
    """A prediction of :func:`scores` (its mean and standard deviation) in the study's own units."""
    sign = -1.0 if direction == "maximize" else 1.0
    m, s = warped.values(mean, sd)
    return sign * m, s


class SamplerSurface:
    """What the Gaussian process that ``GPSampler`` fitted for a proposal predicts of the scores (:func:`scores`)
    elsewhere: the model that proposed, read, not fitted again."""

    def __init__(
        self,
        space: SearchSpace,
        gp: GaussianProcess,
        configs: Sequence[dict[str, Choice]],
        warped: Warped,
        direction: Direction,
    ) -> None:
        self._encoder = UnitEncoder(space, sampler_columns(ordinal_distributions(space)))
        self._gp = gp
        self._direction: Direction = direction
        self._warped = warped
        scored = warped.scores
        self._best = [configs[int(i)] for i in np.argsort(scored, kind="stable")[:_SEEDS]]
        self.incumbent = float(scored.min())

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        """The mean and variance of the score at each configuration."""
        return self._gp.predict(self._encoder(configs))

    def seeds(self, space: SearchSpace, rng: random.Random) -> list[dict[str, Choice]]:
        """The study's best configurations, whose neighbours a pool of candidates explores."""
        return list(self._best)

    def values(self, mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
        return values_of(self._warped, mean, sd, self._direction)


@dataclass(frozen=True)
class SurrogateModel:
    """Proposes a configuration from the finished trials with Optuna's Gaussian process (``GPSampler``);
    ``n_startup`` random trials come before it. It learns the values warped by ``transform``
    (:func:`scores`)."""

    n_startup: int = 3
    transform: Transform | None = DEFAULT

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup, deterministic_objective=False)

    def starting(self, space: SearchSpace, records: Sequence[TrialRecord], direction: Direction) -> bool:
        """Whether :meth:`propose` draws at random (its startup: fewer than ``n_startup`` trials with a value)."""
        return len(training_data(space, records, direction)) < self.n_startup

    def propose(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> dict[str, Choice]:
        """An untried configuration (not in ``records`` nor ``also_taken``): the model's, else a random one."""
        return self.proposal(space, records, rng, also_taken, direction)[0]

    def proposal(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> tuple[dict[str, Choice], SamplerSurface | None]:
        """:meth:`propose`'s configuration and the model that chose it (None in the random startup)."""
        dists = ordinal_distributions(space)
        data = training_data(space, records, direction)
        warped = scores([v for _, v in data], direction, self.transform)
        scored = warped.scores
        sampler = self.sampler(rng.randrange(2**31))
        with optuna_quiet():  # a private study: no "A new study created in memory" in the caller's log
            study = optuna.create_study(sampler=sampler, direction="minimize")
        for (params, _), score in zip(data, scored, strict=True):
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dict(dists), value=float(score)))
        taken = {space.key(r.config) for r in records} | set(also_taken)
        config = None
        with one_thread(), optuna_quiet():  # the acquisition search on one thread too (the fit limits its own)
            for _ in range(_ASKS):
                asked = space.validate_config(decode(space, study.ask(dists).params))
                if space.key(asked) not in taken:
                    config = asked
                    break
        gp = GaussianProcess.of_sampler(sampler, scored, maximize=False) if data else None
        surface = (
            None if gp is None else SamplerSurface(space, gp, [decode(space, p) for p, _ in data], warped, direction)
        )
        return (config if config is not None else untried(space, taken, rng)), surface


def surrogate_for(task: TaskBrief) -> SurrogateModel:
    """``bo``'s model for ``task``: its values warped as the task names (``transform``), else chosen from them."""
    return SurrogateModel(transform=task.transform)


def untried(space: SearchSpace, taken: set[str], rng: random.Random) -> dict[str, Choice]:
    """A random configuration not in ``taken`` (the last draw when the space seems exhausted)."""
    config = space.sample(rng)
    for _ in range(_RANDOM_TRIES):
        if space.key(config) not in taken:
            break
        config = space.sample(rng)
    return config


def training_data(
    space: SearchSpace, records: Sequence[TrialRecord], direction: Direction
) -> list[tuple[dict[str, Any], float]]:
    """What the surrogate learns from: each finished trial's encoded configuration and value.

    A failed trial (or one with a non-finite value) counts as the worst value seen so far: the model steers
    away from it, and no penalty beyond the data's own range distorts its scale (a large fixed penalty would
    flatten everything else). Running and pruned trials, and trials of another search space, are left out.
    """
    values = [r.value for r in records if r.state == "complete" and r.value is not None and math.isfinite(r.value)]
    worst = (min(values) if direction == "maximize" else max(values)) if values else None
    data = []
    for r in records:
        if r.state == "complete" and r.value is not None and math.isfinite(r.value):
            value = r.value
        elif r.state in ("fail", "complete") and worst is not None:
            value = worst
        else:
            continue
        try:
            data.append((encode(space, r.config), value))
        except (KeyError, TypeError, ValueError):
            continue  # a trial from another search space (the user changed --search_space): not comparable
    return data
