"""The Optuna internals this package relies on, in one place (``tests/agent/test_optuna_private.py`` pins each
behaviour, so an Optuna upgrade that changes one fails there, not deep inside a study)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

__all__ = ["GaussianProcess", "new_trial", "storage_of", "study_id_of", "tell", "trial_id_of", "trial_number"]


def trial_id_of(trial: FrozenTrial | optuna.trial.Trial) -> int:
    """The storage's id of a trial (Optuna exposes no public accessor; its own samplers read it too)."""
    return int(trial._trial_id)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna wraps an RDB storage in a caching layer)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    return int(study._study_id)


def trial_number(storage: optuna.storages.BaseStorage, trial_id: int) -> int:
    """The number of a trial this process just created, without a read where Optuna's cache knows it (the
    cache in front of an RDB storage records every trial created through it; the public
    ``get_trial_number_from_id`` reads the database for a running trial)."""
    known = getattr(storage, "_trial_id_to_study_id_and_number", None)
    if isinstance(known, dict) and trial_id in known:
        return int(known[trial_id][1])
    return storage.get_trial_number_from_id(trial_id)


def tell(study: optuna.Study, number: int, value: float | None, state: TrialState) -> None:
    """Finish a trial as ``study.optimize`` does (``Study.tell`` reads the trial once more afterwards, to return
    a copy nobody here needs). Like ``tell``, it refreshes the study's cache of trials, which samplers that
    learn from the study (TPE) read, and runs the sampler's ``after_trial``."""
    _tell_with_warning(study, number, value, state, suppress_warning=True)


def new_trial(study: optuna.Study) -> optuna.trial.Trial:
    """``study.ask()`` without taking a WAITING trial off the queue (those are not this runner's to run): the
    study's cache of trials is refreshed first, as ``ask`` does, so the sampler sees every finished trial."""
    study._thread_local.cached_all_trials = None
    return optuna.trial.Trial(study, study._storage.create_new_trial(study._study_id))


class GaussianProcess:
    """The Gaussian process Optuna's ``GPSampler`` fits (Matern 5/2, its priors and noise floor), fitted to
    finished trials, answering what it predicts at other points: the mean and standard deviation of the
    value, in the objective's own units. Optuna has no public API for the predictions of its sampler's
    model; this wraps ``optuna._gp`` (its search-space normalization, ``fit_kernel_params``, ``posterior``).
    """

    def __init__(
        self,
        distributions: Mapping[str, BaseDistribution],
        params: Sequence[Mapping[str, Any]],
        values: Sequence[float],
        maximize: bool,
    ) -> None:
        import torch
        from optuna._gp import gp, prior
        from optuna._gp import search_space as gp_search_space

        self._torch = torch
        self._space = gp_search_space.SearchSpace(dict(distributions))
        self._sign = 1.0 if maximize else -1.0  # Optuna's GP maximizes
        y = self._sign * np.asarray(values, dtype=float)
        self._mean = float(y.mean())
        self._std = float(max(y.std(), 1e-10))
        x = self._normalize(params)
        self._gpr = gp.fit_kernel_params(
            X=x,
            Y=(y - self._mean) / self._std,
            is_categorical=self._space.is_categorical,
            log_prior=prior.default_log_prior,
            minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
            deterministic_objective=False,
        )

    def _normalize(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        values: np.ndarray = self._space.get_normalized_params([None] * len(params), [dict(p) for p in params])  # type: ignore[list-item]
        return values

    def predict(self, params: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the value at each point of ``params``."""
        with self._torch.no_grad():
            mean, var = self._gpr.posterior(self._torch.from_numpy(self._normalize(params)))
        m = mean.numpy() * self._std + self._mean
        sd = np.sqrt(np.maximum(var.numpy(), 0.0)) * self._std
        return self._sign * m, sd
