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
    """Optuna's Tree-structured Parzen Estimator with its default settings."""

    name = "tpe"

    def sampler(self, seed: int, n_existing: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=resumed_seed(seed, n_existing))

    async def propose(self, ctx: ProposeContext) -> Proposal:
        return Proposal(config=None, source="sampler")
