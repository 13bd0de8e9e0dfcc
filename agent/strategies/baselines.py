"""Strategies that leave every proposal to an Optuna sampler: the ``random`` and ``tpe`` baselines, and any
sampler an installed package registers (CMA-ES, an OptunaHub sampler).

The runner claims each trial with no configuration, so the study's sampler (this strategy's) draws it
through Optuna's own ``Trial``, exactly as in ``study.ask()``.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from .base import BuildContext, Proposal, ProposeContext, Strategy, StrategySpec, resumed_seed

__all__ = ["RANDOM", "TPE", "RandomStrategy", "SamplerStrategy", "TPEStrategy", "tpe_startup_trials"]


class SamplerStrategy(Strategy):
    """An Optuna sampler as a strategy: ``make(seed)`` builds the sampler (again, with a new seed, on resume)."""

    def __init__(self, name: str, make: Callable[[int], optuna.samplers.BaseSampler]) -> None:
        self.name = name
        self._make = make

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return self._make(resumed_seed(seed, n_existing))

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return Proposal(config=None, source="sampler")


class RandomStrategy(SamplerStrategy):
    """Uniform random search (log-uniform on log parameters): the reference's ``--random_hparams``."""

    name = "random"

    def __init__(self) -> None:
        super().__init__(self.name, lambda seed: optuna.samplers.RandomSampler(seed=seed))


class TPEStrategy(SamplerStrategy):
    """Optuna's Tree-structured Parzen Estimator with ``n_startup_trials`` random trials first."""

    name = "tpe"

    def __init__(self, n_startup_trials: int = 10) -> None:
        self.n_startup_trials = n_startup_trials
        super().__init__(
            self.name, lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials)
        )

    @classmethod
    def for_budget(cls, budget: int) -> TPEStrategy:
        return cls(n_startup_trials=tpe_startup_trials(budget))


def tpe_startup_trials(budget: int) -> int:
    """TPE's random startup trials: a sixth of the budget, at least 3, at most Optuna's 10.

    Optuna's 10 suits long studies, but with a budget of 10 it would make TPE pure random search (measured on
    the 8 HPOBench tasks at budget 30, 10 seeds: see README "Baselines").
    """
    return max(3, min(10, budget // 6))


def _random(ctx: BuildContext) -> Strategy:
    return RandomStrategy()


def _tpe(ctx: BuildContext) -> Strategy:
    return TPEStrategy.for_budget(ctx.budget)


RANDOM = StrategySpec(
    name="random",
    summary="Optuna's RandomSampler: uniform random search (log-uniform on log parameters)",
    build=_random,
)
TPE = StrategySpec(
    name="tpe",
    summary="Optuna's TPESampler, its random startup a sixth of the budget (3 to 10 trials)",
    build=_tpe,
)
