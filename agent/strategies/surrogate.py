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
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import optuna.distributions as od

from agent.records import Direction, TrialRecord
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace

from .grid import is_ordinal

__all__ = ["SurrogateModel", "decode", "encode", "ordinal_distributions", "training_data", "untried"]

_ASKS = 4  # the sampler's tries at an untried configuration before a random one is drawn
_RANDOM_TRIES = 1000


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
    """A configuration in the surrogate's coordinates (a grid value -> its index)."""
    out: dict[str, Any] = {}
    for name, p in space.params.items():
        value = config[name]
        if isinstance(p, CategoricalParam) and is_ordinal(p):
            out[name] = min(range(len(p.choices)), key=lambda i: abs(float(p.choices[i]) - float(value)))
        else:
            out[name] = value
    return out


def decode(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Choice]:
    """Back from the surrogate's coordinates to the space's values."""
    out: dict[str, Choice] = {}
    for name, p in space.params.items():
        value = params[name]
        out[name] = p.choices[int(value)] if isinstance(p, CategoricalParam) and is_ordinal(p) else value
    return out


@dataclass(frozen=True)
class SurrogateModel:
    """Proposes a configuration from the finished trials with Optuna's Gaussian process (``GPSampler``);
    ``n_startup`` random trials come before it."""

    n_startup: int = 3

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup, deterministic_objective=False)

    def propose(
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Collection[str] = (),
        direction: Direction = "minimize",
    ) -> dict[str, Choice]:
        """An untried configuration (not in ``records`` nor ``also_taken``): the model's, else a random one."""
        dists = ordinal_distributions(space)
        study = _study(space, dists, records, self.sampler(rng.randrange(2**31)), direction)
        taken = {space.key(r.config) for r in records} | set(also_taken)
        for _ in range(_ASKS):
            config = space.validate_config(decode(space, study.ask(dists).params))
            if space.key(config) not in taken:
                return config
        return untried(space, taken, rng)


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


def _study(
    space: SearchSpace,
    dists: Mapping[str, od.BaseDistribution],
    records: Sequence[TrialRecord],
    sampler: optuna.samplers.BaseSampler,
    direction: Direction,
) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, direction=direction)
    for params, value in training_data(space, records, direction):
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dict(dists), value=value))
    return study
