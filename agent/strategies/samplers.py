"""Baselines driven by Optuna's own samplers: ``random`` and ``tpe``."""

from __future__ import annotations

import optuna

from .base import Proposal, ProposeContext, Strategy, resumed_seed

__all__ = ["RandomStrategy", "TPEStrategy"]


class RandomStrategy(Strategy):
    """Uniform random search (log-uniform on log parameters): the reference's ``--random_hparams``."""

    name = "random"

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=resumed_seed(seed, n_existing))

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return Proposal(config=None, source="sampler")


class TPEStrategy(Strategy):
    """Optuna's Tree-structured Parzen Estimator.

    Its one non-default setting is the number of random startup trials: Optuna's 10 suits long studies, but
    with a budget of 10 it would make TPE pure random search. We use a sixth of the budget, at least 3 and at
    most Optuna's 10 (measured on the 8 HPOBench tasks at budget 30, 10 seeds: see README "Baselines").
    """

    name = "tpe"

    def __init__(self, n_startup_trials: int = 10) -> None:
        self.n_startup_trials = n_startup_trials

    @classmethod
    def for_budget(cls, budget: int) -> TPEStrategy:
        return cls(n_startup_trials=max(3, min(10, budget // 6)))

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=resumed_seed(seed, n_existing), n_startup_trials=self.n_startup_trials)

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return Proposal(config=None, source="sampler")
