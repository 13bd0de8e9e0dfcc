"""The reference of ``benchmarks/gp_speed.py``: the numpy Gaussian process ``agent/strategies/_gp.py`` was until
commit fa91d4f (copied as it was, its encoder's grid helper imported from where it lives now), timed against
Optuna's torch model that replaced it.

A small Gaussian process in numpy, for transfer learning (:mod:`agent.strategies.transfer`).

The same model as Optuna's ``GPSampler`` fits (Matern 5/2 with one length scale per dimension, a Hamming
distance on categorical dimensions, inputs scaled to [0, 1], outputs standardized, Optuna's priors on the
kernel parameters and its noise floor), written out in numpy because transfer needs what Optuna's model does
not expose: closed-form leave-one-out predictions (from the inverse kernel matrix), joint posterior samples,
and a model over a *subset* of the space's parameters (a source study that covers only some of them). At 30
points a fit takes a few milliseconds and a prediction microseconds per point; no torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace, is_ordinal

__all__ = ["Encoder", "GaussianProcess"]

FloatArray = npt.NDArray[np.float64]
_MIN_NOISE = 1e-6  # Optuna's DEFAULT_MINIMUM_NOISE_VAR
_JITTER = 1e-9
_LOG_BOUND = 20.0


class Encoder:
    """Configurations of ``space`` (restricted to ``names``) as points of the unit cube: an ordinal grid's
    index, a number's position in its range (log where declared), a categorical's choice index (compared by
    equality only)."""

    def __init__(self, space: SearchSpace, names: Sequence[str] | None = None) -> None:
        self.names = tuple(names if names is not None else space.params)
        self._units = [_unit_of(space.params[n]) for n in self.names]
        self.is_categorical = np.array(
            [isinstance(p, CategoricalParam) and not is_ordinal(p) for p in (space.params[n] for n in self.names)],
            dtype=bool,
        )

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> FloatArray:
        out = np.empty((len(configs), len(self.names)), dtype=np.float64)
        for j, (name, unit) in enumerate(zip(self.names, self._units, strict=True)):
            out[:, j] = [unit(c[name]) for c in configs]
        return out


def _unit_of(p: FloatParam | IntParam | CategoricalParam) -> Callable[[Any], float]:
    """The map of one parameter's values to [0, 1] (a categorical's: to its choice index)."""
    if isinstance(p, CategoricalParam):
        ordinal = is_ordinal(p)
        n = len(p.choices)
        exact = {json.dumps(c): ((i + 0.5) / n if ordinal else float(i)) for i, c in enumerate(p.choices)}

        def categorical(value: Any) -> float:
            hit = exact.get(json.dumps(value))
            if hit is not None:
                return hit
            if ordinal:  # the nearest grid value's index, centred in its cell as Optuna does
                i = min(range(n), key=lambda k: abs(float(p.choices[k]) - float(value)))
                return (i + 0.5) / n
            return float(p.choices.index(value))

        return categorical
    low, high = float(p.low), float(p.high)
    if p.log:
        low, high = math.log(low), math.log(high)
    if isinstance(p, IntParam) and not p.log:
        low, high = low - 0.5, high + 0.5
    log = p.log

    def number(value: Any) -> float:
        x = math.log(float(value)) if log else float(value)
        return 0.5 if high <= low else (x - low) / (high - low)

    return number


def _matern52(sq: FloatArray) -> FloatArray:
    r = np.sqrt(5.0 * sq)
    result: FloatArray = (1.0 + r + (5.0 / 3.0) * sq) * np.exp(-r)
    return result


def _matern52_grad(sq: FloatArray) -> FloatArray:
    """d matern52 / d squared distance."""
    r = np.sqrt(5.0 * sq)
    result: FloatArray = (-5.0 / 6.0) * (1.0 + r) * np.exp(-r)
    return result


class GaussianProcess:
    """Fitted to points ``x`` (from an :class:`Encoder`) and values ``y`` (lower or higher: the model does not
    care); kernel parameters by maximum a posteriori, as Optuna fits them."""

    def __init__(self, x: FloatArray, y: FloatArray, is_categorical: npt.NDArray[np.bool_]) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self._cat = is_categorical
        self._shift = float(y.mean()) if y.size else 0.0
        self._scale = float(max(y.std(), 1e-10)) if y.size else 1.0
        self._y = (y - self._shift) / self._scale
        self._sqd = self._sq_diff(self.x, self.x)
        self.inv_sq_lengthscales, self.kernel_scale, self.noise = self._fit()
        k = self._kernel(self._sqd) + (self.noise + _JITTER) * np.eye(len(self._y))
        self._chol = _cholesky(k)
        self._alpha = _cho_solve(self._chol, self._y)

    # ---- kernel ---------------------------------------------------------------------------------------

    def _sq_diff(self, a: FloatArray, b: FloatArray) -> FloatArray:
        d = a[:, None, :] - b[None, :, :]
        sq = d * d
        if self._cat.any():
            sq[..., self._cat] = (sq[..., self._cat] > 0).astype(np.float64)
        return sq

    def _kernel(self, sqd: FloatArray) -> FloatArray:
        result: FloatArray = self.kernel_scale * _matern52(sqd @ self.inv_sq_lengthscales)
        return result

    def _fit(self) -> tuple[FloatArray, float, float]:
        """Maximize log marginal likelihood + Optuna's log prior over (log inverse squared length scales, log
        kernel scale, log(noise - floor)), with the analytic gradient."""
        from scipy.optimize import minimize  # loaded on first use: scipy adds most of a second to a start

        n, d = self._sqd.shape[0], self._sqd.shape[2]
        if n == 0:
            return np.ones(d), 1.0, 1.0
        eye = np.eye(n)

        def loss(theta: FloatArray) -> tuple[float, FloatArray]:
            lam, ks, nv = np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1]) + _MIN_NOISE
            dist = self._sqd @ lam
            base = _matern52(dist)
            k = ks * base + (nv + _JITTER) * eye
            try:
                chol = _cholesky(k)
            except np.linalg.LinAlgError:
                return 1e10, np.zeros_like(theta)
            alpha = _cho_solve(chol, self._y)
            mll = -0.5 * float(self._y @ alpha) - float(np.log(np.diag(chol)).sum())
            prior = -float((0.1 / lam + 0.1 * lam).sum()) + (float(theta[d]) - ks) + (0.1 * math.log(nv) - 30.0 * nv)
            w = np.outer(alpha, alpha) - _cho_solve(chol, eye)  # d mll / dK = W / 2
            dk_dist = ks * _matern52_grad(dist)
            grad = np.empty(d + 2)
            grad[:d] = 0.5 * np.einsum("ij,ij,ijk->k", w, dk_dist, self._sqd) * lam + (0.1 / lam - 0.1 * lam)
            grad[d] = 0.5 * float((w * base).sum()) * ks + (1.0 - ks)
            grad[d + 1] = (0.5 * float(np.trace(w)) + 0.1 / nv - 30.0) * (nv - _MIN_NOISE)
            return -(mll + prior), np.asarray(-grad, dtype=np.float64)

        start = np.concatenate([np.zeros(d), [0.0, math.log(0.1)]])
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * (d + 2)  # keeps exp() finite and positive
        res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"gtol": 1e-2, "maxiter": 200})
        theta = res.x
        return np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1]) + _MIN_NOISE

    # ---- predictions ----------------------------------------------------------------------------------

    def predict(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and variance of the latent function at ``x``, in ``y``'s units."""
        k = self._kernel(self._sq_diff(np.asarray(x, dtype=np.float64), self.x))
        mean = k @ self._alpha
        v = _solve_lower(self._chol, k.T)
        var = np.maximum(self.kernel_scale - (v * v).sum(axis=0), 1e-12)
        return mean * self._scale + self._shift, var * self._scale**2

    def sample(self, x: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` joint draws of the latent function at ``x`` (shape ``n`` x ``len(x)``)."""
        x = np.asarray(x, dtype=np.float64)
        k = self._kernel(self._sq_diff(x, self.x))
        mean = k @ self._alpha
        v = _solve_lower(self._chol, k.T)
        cov = self._kernel(self._sq_diff(x, x)) - v.T @ v
        chol = _safe_cholesky(cov)
        draws = mean + rng.standard_normal((n, len(x))) @ chol.T
        result: FloatArray = draws * self._scale + self._shift
        return result

    def loo(self) -> tuple[FloatArray, FloatArray]:
        """Leave-one-out predictive mean and variance of each training value (closed form: ``K^-1``), in
        ``y``'s units."""
        kinv = _cho_solve(self._chol, np.eye(len(self._y)))
        diag = np.diag(kinv)
        mean = self._y - self._alpha / diag
        return mean * self._scale + self._shift, (1.0 / diag) * self._scale**2


# numpy's solvers, not scipy.linalg's: on a busy machine scipy's bundled OpenBLAS spun its threads for ~8 ms
# per 10x10 triangular solve (a fit took 0.5 s instead of 10 ms).
def _solve_lower(chol: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.solve(chol, b), dtype=np.float64)


def _cho_solve(chol: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.solve(chol.T, np.linalg.solve(chol, b)), dtype=np.float64)


def _cholesky(a: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.cholesky(a), dtype=np.float64)


def _safe_cholesky(cov: FloatArray) -> FloatArray:
    cov = 0.5 * (cov + cov.T)
    jitter = 1e-10 * max(float(np.mean(np.diag(cov))), 1e-12)
    for _ in range(8):
        try:
            return _cholesky(cov + jitter * np.eye(len(cov)))
        except np.linalg.LinAlgError:
            jitter *= 10.0
    eigval, eigvec = np.linalg.eigh(cov)
    return np.asarray(eigvec * np.sqrt(np.maximum(eigval, 0.0)), dtype=np.float64)
