"""The monotone warp of a study's own values before a Gaussian process learns them (lower is better).

A GP standardizes what it learns; a few outliers (a loss that diverged to 1e3 where typical values are 0.3)
then squash every other result to about the same score, and the model cannot tell 0.31 from 0.22. A warp
that keeps the order of the values but pulls in their tails fixes that:

- ``yeo-johnson``: the power transform of Yeo and Johnson (2000) with its lambda chosen by maximum likelihood
  over [-3, 3] (as HEBO does: Cowen-Rivers et al. 2022), of the values shifted to start at 0 and divided by
  their median absolute deviation; it is nearly the identity where the values are already normal-looking, and a
  log-like squeeze of a heavy tail where they are not;
- ``log``: ``log(v)`` for positive values (shifted to be positive otherwise);
- ``rank``: normal scores of the ranks, ``Phi^-1((rank - 0.5) / n)`` (only the order is kept);
- ``none``: standardized values, as before the warp.

Without a named transform (``None``, the default) the warp is chosen from the values, as HEBO does: ``log`` where
every value is positive (an error, a loss, a time), ``yeo-johnson`` otherwise (a maximized accuracy seen as its
negative, a loss that can be negative). Each warp ends standardized (mean 0, standard deviation 1).
:class:`Warped` also maps a prediction of the warped score back to the study's units (``values``; the inverse of
the warp at the mean, its slope for the spread). Which is the default, and why: docs/warp.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from agent.records import TRANSFORMS, Transform

__all__ = ["DEFAULT", "TRANSFORMS", "Transform", "Warped", "automatic", "warp", "yeo_johnson"]

FloatArray = npt.NDArray[np.float64]
#: The warp every Gaussian process of a study uses unless its task names another: chosen from the values
#: (:func:`automatic`; measured: docs/warp.md).
DEFAULT: Transform | None = None
_LAMBDAS = np.linspace(-3.0, 3.0, 121)  # the grid the Yeo-Johnson lambda is chosen on (then refined)
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Warped:
    """Values warped for a fit: ``scores`` (standardized, lower is better) and the way back."""

    scores: FloatArray
    transform: Transform
    #: The original values, sorted, and their warped scores (the inverse interpolates between them).
    _x: FloatArray
    _z: FloatArray

    def values(self, mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
        """A prediction of the warped score (mean, standard deviation) in the values' units: the inverse warp
        of the mean, and the spread scaled by the inverse's slope there."""
        x, z = self._x, self._z
        if len(x) < 2 or z[-1] - z[0] <= 0:
            return mean + (x[0] if len(x) else 0.0), sd
        slope_lo = (x[1] - x[0]) / max(z[1] - z[0], 1e-12)
        slope_hi = (x[-1] - x[-2]) / max(z[-1] - z[-2], 1e-12)
        inside = np.interp(mean, z, x)
        out = np.where(mean < z[0], x[0] + (mean - z[0]) * slope_lo, inside)
        out = np.where(mean > z[-1], x[-1] + (mean - z[-1]) * slope_hi, out)
        slope = np.interp(np.clip(mean, z[0], z[-1]), z, np.gradient(x, z))  # z rises with x: the warp is monotone
        return out.astype(np.float64), (sd * np.abs(slope)).astype(np.float64)


def automatic(values: FloatArray) -> Transform:
    """The warp for ``values`` when none is named: ``log`` if all are positive, else ``yeo-johnson``."""
    return "log" if len(values) and float(values.min()) > 0 else "yeo-johnson"


def warp(values: Sequence[float] | FloatArray, transform: Transform | None = DEFAULT) -> Warped:
    """``values`` (finite, lower is better) warped by ``transform`` (None: :func:`automatic`) and standardized."""
    v = np.asarray(values, dtype=np.float64)
    transform = automatic(v) if transform is None else transform
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}")
    if len(v) == 0:
        return Warped(v, transform, v, v)
    if transform == "rank":
        t = _rank_scores(v)
    elif transform == "log":
        t = np.log(v if v.min() > 0 else v - v.min() + _gap(v))
    elif transform == "yeo-johnson":
        t = _yeo_johnson((v - v.min()) / _spread(v))
    else:
        t = v
    z = _standard(t)
    order = np.argsort(v, kind="stable")
    x_sorted, z_sorted = v[order], z[order]
    keep = np.concatenate([[True], np.diff(x_sorted) > 0])  # one point per distinct value for the inverse
    return Warped(z, transform, x_sorted[keep], z_sorted[keep])


def _standard(v: FloatArray) -> FloatArray:
    sd = float(v.std())
    out: FloatArray = (v - v.mean()) / sd if sd > 1e-12 else v - v.mean()
    return out


def _spread(v: FloatArray) -> float:
    """The values' median absolute deviation (their standard deviation where it is 0): a scale that up to half
    the values as outliers leave alone (three decoy openers among a study's first five trials), so that the
    power transform sees the bulk of the values spread over a few units and the outliers far out, where its
    lambda can pull them in."""
    mad = float(np.median(np.abs(v - np.median(v))))
    spread = mad if mad > 1e-12 else float(v.std())
    return spread if spread > 1e-12 else 1.0


def _gap(v: FloatArray) -> float:
    """A small positive offset for a log of values shifted to start at 0: their smallest nonzero spread."""
    spread = np.diff(np.unique(v))
    return float(spread.min()) if len(spread) else 1.0


def _rank_scores(v: FloatArray) -> FloatArray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.arange(1, len(v) + 1, dtype=np.float64)
    for value in np.unique(v):  # ties share their average rank
        same = v == value
        ranks[same] = ranks[same].mean()
    return np.array([_NORMAL.inv_cdf((r - 0.5) / len(v)) for r in ranks], dtype=np.float64)


def yeo_johnson(v: FloatArray, lam: float) -> FloatArray:
    """The Yeo-Johnson transform of ``v`` with power ``lam``."""
    pos = v >= 0
    out = np.empty_like(v)
    out[pos] = np.log1p(v[pos]) if abs(lam) < 1e-8 else (np.power(v[pos] + 1.0, lam) - 1.0) / lam
    neg = ~pos
    out[neg] = -np.log1p(-v[neg]) if abs(lam - 2.0) < 1e-8 else -(np.power(1.0 - v[neg], 2.0 - lam) - 1.0) / (2.0 - lam)
    return out


def _log_likelihood(v: FloatArray, lam: float) -> float:
    t = yeo_johnson(v, lam)
    var = float(t.var())
    if not math.isfinite(var) or var <= 1e-300:
        return -math.inf
    return -0.5 * len(v) * math.log(var) + (lam - 1.0) * float(np.sum(np.sign(v) * np.log1p(np.abs(v))))


def _yeo_johnson(v: FloatArray) -> FloatArray:
    """Yeo-Johnson with the maximum-likelihood lambda (a grid, then a finer one around its best)."""
    if float(v.std()) <= 1e-12:
        return v
    best = max(_LAMBDAS, key=lambda lam: _log_likelihood(v, float(lam)))
    fine = np.linspace(best - 0.05, best + 0.05, 21)
    lam = float(max(fine, key=lambda x: _log_likelihood(v, float(x))))
    return yeo_johnson(v, lam)
