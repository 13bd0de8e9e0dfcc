"""Expected improvement per second, under a time budget (issue 28, item 5).

A study with a time budget (``--time-budget``) is paid in seconds, and configurations cost very different
seconds: on HPOBench's tables the 95th percentile of the recorded ``train_time`` is 40 to 70 times the median,
so one expensive trial can cost what forty others do. Here the study's own model of its values (a
:class:`~agent.strategies.candidates.Surface`) is weighed against a model of what each configuration costs: the
candidate with the most improvement per expected second to the power ``alpha`` is chosen (over the pool of
random configurations and neighbours of the best that every proposal searches), ``alpha`` being the share of
the time budget still left (Lee et al. 2020, "Cost-aware Bayesian optimization": EI-cool). Early in the budget
it prefers what is cheap to learn from; as the time runs out it becomes plain expected improvement, since there
is no later for cheap trials to pay off.

The cost model is the project's one Gaussian process (:class:`~agent._optuna.GaussianProcess`) over the log of
the seconds the study's complete trials cost (:attr:`~agent.records.TrialRecord.compute_s`: a replayed table's
recorded seconds, else the trial's wall time). Measured on HPOBench under the time budget of ``bo``'s 30 trials:
docs/multifidelity.md, "A time budget on HPOBench's recorded train_time".
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent._optuna import GaussianProcess
from agent.records import TrialRecord
from agent.space import Choice, SearchSpace, UnitEncoder

from .candidates import Surface, best_by_ei, expected_improvement

__all__ = ["CostModel", "per_second"]

FloatArray = npt.NDArray[np.float64]
_MIN_TRIALS = 3  # complete trials with a cost before the model of costs is fitted
_SPREAD = 0.05  # log seconds: costs closer than this are alike (a cost model would be the jitter's)
_TINY_EI = 1e-300


@dataclass(frozen=True)
class CostModel:
    """What a configuration is expected to cost, in log seconds, learnt from the study's complete trials."""

    encoder: UnitEncoder
    gp: GaussianProcess

    @classmethod
    def of(cls, space: SearchSpace, records: Sequence[TrialRecord]) -> CostModel | None:
        """The model of the complete trials' costs, or None where there is nothing to weigh: fewer than 3 with
        a cost, or all costing alike."""
        paid = [
            (r.config, r.compute_s)
            for r in records
            if r.state == "complete" and r.compute_s is not None and r.compute_s > 0 and math.isfinite(r.compute_s)
        ]
        if len(paid) < _MIN_TRIALS:
            return None
        log_s = np.log(np.array([s for _, s in paid], dtype=np.float64))
        if float(log_s.max() - log_s.min()) < _SPREAD:
            return None
        encoder = UnitEncoder(space)
        try:
            x = encoder([c for c, _ in paid])
        except (KeyError, TypeError, ValueError):
            return None  # trials of another search space: no model of this one's costs
        return cls(encoder, GaussianProcess.fit(x, log_s, encoder.is_categorical))

    def log_seconds(self, configs: Sequence[dict[str, Choice]]) -> FloatArray:
        """The expected log seconds of each configuration."""
        return self.gp.predict(self.encoder(configs))[0]


def per_second(
    space: SearchSpace,
    surface: Surface,
    first: dict[str, Choice],
    cost: CostModel,
    alpha: float,
    rng: random.Random,
    taken: Collection[str],
) -> dict[str, Choice]:
    """The untried configuration with the most ``EI / seconds ** alpha`` under ``surface`` and ``cost``: ``first``
    (the model's own choice by expected improvement) or one of the pool :func:`best_by_ei` searches."""
    if alpha <= 0.0:
        return first

    def acquisition(ei: FloatArray, configs: Sequence[dict[str, Choice]]) -> FloatArray:
        out: FloatArray = np.log(np.maximum(ei, _TINY_EI)) - alpha * cost.log_seconds(configs)
        return out

    best = best_by_ei(space, surface, rng, set(taken) | {space.key(first)}, 1, acquisition)
    if not best:
        return first
    ei = expected_improvement(*surface.predict([first, best[0]]), surface.incumbent)
    scored = acquisition(ei, [first, best[0]])
    return best[0] if scored[1] > scored[0] else first
