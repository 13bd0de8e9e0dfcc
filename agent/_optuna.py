"""The Optuna internals this package relies on, in one place (``tests/agent/test_optuna_private.py`` pins each
behaviour, so an Optuna upgrade that changes one fails there, not deep inside a study)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna
from optuna.distributions import BaseDistribution
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from agent._log import optuna_quiet

__all__ = [
    "GaussianProcess",
    "new_trial",
    "one_thread",
    "sampler_columns",
    "storage_of",
    "study_id_of",
    "tell",
    "trial_id_of",
    "trial_number",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_EPS = 1e-10  # the smallest standard deviation values are divided by, as GPSampler's


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
    """Optuna's Gaussian process (``optuna._gp.gp.GPRegressor``, the model ``GPSampler`` fits: Matern 5/2 with
    one length scale per column, a Hamming distance on categorical columns, Optuna's priors on the kernel
    parameters and its noise floor, fitted by maximum a posteriori) over any matrix of points: the columns of a
    :class:`~agent.space.UnitEncoder` over all of a space's parameters or some of them, or more columns of the
    caller's (a fidelity). Values are standardized inside; every answer is in the values' own units, and it does
    not matter whether they are better lower or higher.

    What Optuna's sampler does not expose is written here on its fitted model: predictions at other points,
    joint posterior draws, closed-form leave-one-out. :meth:`of_sampler` reads the model a ``GPSampler`` fitted
    for its last proposal, so a caller can ask the model that proposed without fitting a second one.
    """

    def __init__(self, gpr: Any, sign: float, shift: float, scale: float) -> None:
        """A fitted ``GPRegressor`` whose training values are ``(sign * value - shift) / scale``: use :meth:`fit`
        or :meth:`of_sampler`."""
        self._gpr = gpr
        self._sign, self._shift, self._scale = sign, shift, scale

    @classmethod
    def fit(cls, x: FloatArray, y: FloatArray, is_categorical: BoolArray) -> GaussianProcess:
        """The model of values ``y`` at the rows of ``x`` (one or more), kernel parameters fitted as
        ``GPSampler`` fits them; ``is_categorical`` flags the columns compared by equality only."""
        import torch
        from optuna._gp import gp, prior

        y = np.asarray(y, dtype=np.float64)
        shift, scale = float(y.mean()), float(max(y.std(), _EPS))
        with torch.device("cpu"), optuna_quiet():  # a fit on many equal values falls back, saying so: ours
            gpr = gp.fit_kernel_params(
                X=np.ascontiguousarray(x, dtype=np.float64),
                Y=(y - shift) / scale,
                is_categorical=np.asarray(is_categorical, dtype=bool),
                log_prior=prior.default_log_prior,
                minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
                deterministic_objective=False,
            )
        return cls(gpr, 1.0, shift, scale)

    @classmethod
    def of_sampler(
        cls, sampler: optuna.samplers.BaseSampler, values: npt.ArrayLike, maximize: bool
    ) -> GaussianProcess | None:
        """The model ``sampler`` (a ``GPSampler``) fitted for its last proposal in a study of ``values`` (its
        completed trials' values, in order; ``maximize``: the study's direction), or None when it fitted none
        (its random startup). Its columns are those of the sampler's search space: the parameters whose
        distribution is not a single value, sorted by name (:func:`sampler_columns`)."""
        from optuna.samplers._gp.sampler import EPS, _standardize_values

        gprs = getattr(sampler, "_gprs_cache_list", None)
        if not gprs:
            return None
        sign = 1.0 if maximize else -1.0  # GPSampler maximizes sign * value
        _, means, stds = _standardize_values(sign * np.asarray(values, dtype=np.float64)[:, None])
        return cls(gprs[0], sign, float(means[0]), float(max(stds[0], EPS)))

    def _values(self, standardized: FloatArray) -> FloatArray:
        out: FloatArray = self._sign * (standardized * self._scale + self._shift)
        return out

    def predict(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The posterior mean and variance of the (noise-free) value at each row of ``x``."""
        import torch

        with torch.no_grad(), torch.device("cpu"):
            mean, var = self._gpr.posterior(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)))
        return self._values(mean.numpy()), var.numpy() * self._scale**2

    def sample(self, x: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` joint draws of the value at the rows of ``x`` (shape ``n`` x ``len(x)``) from the posterior."""
        import torch

        with torch.no_grad(), torch.device("cpu"):
            mean, cov = self._gpr.posterior(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), joint=True)
        chol = _safe_cholesky(cov.numpy())
        return self._values(mean.numpy() + rng.standard_normal((n, len(chol))) @ chol.T)

    def loo(self) -> tuple[FloatArray, FloatArray]:
        """Each training value's leave-one-out prediction, mean and variance (noise included): what the model
        with the same kernel parameters, fitted without that value, predicts for it. Closed form from the
        fitted Cholesky factor ``L`` of ``K + noise``: with ``A = (L L^T)^-1``, the mean is ``y - (A y) / diag(A)``
        and the variance ``1 / diag(A)``."""
        import torch

        with torch.no_grad():
            inverse = torch.cholesky_inverse(self._gpr._cov_Y_Y_chol)
            diag = inverse.diagonal().numpy()
            y = self._gpr._y_train.squeeze(-1).numpy()
            alpha = self._gpr._cov_Y_Y_inv_Y.numpy()
        return self._values(y - alpha / diag), (1.0 / diag) * self._scale**2


def sampler_columns(distributions: Mapping[str, BaseDistribution]) -> list[str]:
    """The parameters a ``GPSampler`` models, in its order: those whose distribution has more than one value,
    sorted by name (its intersection search space)."""
    return sorted(name for name, d in distributions.items() if not d.single())


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and torch limited to one thread: on a Gaussian process's small matrices their threads cost ten
    times the work (the torch setting is the process's own; it is restored on the way out, as GPSampler does)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def _safe_cholesky(cov: FloatArray) -> FloatArray:
    """A factor ``L`` with ``L L^T`` = ``cov`` (a posterior covariance, maybe singular to rounding): Cholesky with
    growing jitter, else from the eigendecomposition."""
    cov = 0.5 * (cov + cov.T)
    jitter = 1e-10 * max(float(np.mean(np.diag(cov))), 1e-12)
    for _ in range(8):
        try:
            return np.asarray(np.linalg.cholesky(cov + jitter * np.eye(len(cov))), dtype=np.float64)
        except np.linalg.LinAlgError:
            jitter *= 10.0
    eigval, eigvec = np.linalg.eigh(cov)
    return np.asarray(eigvec * np.sqrt(np.maximum(eigval, 0.0)), dtype=np.float64)
