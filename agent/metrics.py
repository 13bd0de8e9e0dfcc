"""Benchmark metrics: pure functions, numbers in, numbers out.

Conventions shared by every function here (the bench report quotes them):

- Errors are minimized. A study's *best-so-far* curve holds, after each evaluation, the lowest error seen so
  far; a failed evaluation carries the previous best; before the first success the best is ``inf``.
- ``NaN`` means *missing* (a study that has not reached the budget, a task without a known optimum): it is
  left out of medians, shares and means, never counted as a win or a loss.
- Relative change against a reference ``r``: ``(e - r) / r``. When ``r`` is 0 (to 1e-12; HPOBench's ``car``
  reaches 0 error) the change is 0 if ``e`` is 0 too and undefined (``NaN``, left out and counted) otherwise.
- Normalized regret: ``(e - optimum) / (reference - optimum)``: 0 at the optimum, 1 at the reference (the
  bench uses the median error of one random configuration), undefined where the reference is no worse than
  the optimum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "RandomSearchCurves",
    "Summary",
    "average_ranks",
    "best_so_far",
    "bootstrap_random_search",
    "bootstrap_win_rate",
    "incumbent_indices",
    "incumbent_scores",
    "mean_ranks",
    "normalized_regret",
    "paired_outcomes",
    "quantiles",
    "rank_rewards",
    "relative_change",
    "repeated_count",
    "sign_test",
    "summarize",
    "win_count",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ZERO = 1e-12
_BIG = float(np.finfo(np.float64).max)


def _as_values(values: Sequence[float | None] | FloatArray) -> FloatArray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


# ---- one study ------------------------------------------------------------------------------------------


def incumbent_indices(values: Sequence[float | None] | FloatArray) -> IntArray:
    """Index of the trial holding the best-so-far value after each evaluation (the earliest on ties);
    -1 before the first success. ``None`` or ``NaN`` marks a failed evaluation."""
    v = _as_values(values)
    out = np.full(v.shape, -1, dtype=np.int64)
    best, where = math.inf, -1
    for i, x in enumerate(v):
        if x < best:  # False for NaN: a failure never becomes the incumbent
            best, where = float(x), i
        out[i] = where
    return out


def best_so_far(values: Sequence[float | None] | FloatArray) -> FloatArray:
    """The lowest value after each evaluation; failures carry the previous best; ``inf`` before any success."""
    v = _as_values(values)
    return np.minimum.accumulate(np.where(np.isnan(v), np.inf, v)) if v.size else v


def incumbent_scores(
    values: Sequence[float | None] | FloatArray, scores: Sequence[float | None] | FloatArray
) -> FloatArray:
    """``scores`` of the incumbent after each evaluation (e.g. the true error of the configuration a study
    would pick so far); ``inf`` before the first success."""
    idx = incumbent_indices(values)
    s = _as_values(scores)
    return np.where(idx >= 0, s[np.maximum(idx, 0)] if s.size else np.inf, np.inf)


def rank_rewards(values: Sequence[float | None]) -> list[float | None]:
    """For each evaluation in order, the share of the earlier ones it beats (lower wins; a failure, ``None``,
    beats nothing and is beaten by every success; ties count half); ``None`` for the first."""
    out: list[float | None] = [None] if values else []
    for i in range(1, len(values)):
        mine = values[i]
        score = 0.0
        for other in values[:i]:
            if mine is None:
                continue
            if other is None or mine < other:
                score += 1.0
            elif mine == other:
                score += 0.5
        out.append(score / i)
    return out


def repeated_count(keys: Sequence[str]) -> int:
    """How many configurations equal an earlier one (``keys`` from ``SearchSpace.key``)."""
    seen: set[str] = set()
    repeats = 0
    for key in keys:
        repeats += key in seen
        seen.add(key)
    return repeats


# ---- over seeds ---------------------------------------------------------------------------------------


def quantiles(a: FloatArray, q: Sequence[float] | float, axis: int = 0) -> FloatArray:
    """``np.nanquantile`` that keeps ``inf`` (a study with no success yet) as ``inf`` without warnings;
    all-NaN slices give NaN."""
    finite = np.where(np.isposinf(a), _BIG, a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer we want
        out = np.asarray(np.nanquantile(finite, q, axis=axis), dtype=np.float64)
    return np.where(out >= _BIG, np.inf, out)


@dataclass(frozen=True)
class Summary:
    """Median and mean of the defined values; ``n`` used, ``excluded`` left out as undefined."""

    median: float
    mean: float
    n: int
    excluded: int


def summarize(values: Sequence[float] | FloatArray) -> Summary:
    v = np.asarray(values, dtype=np.float64)
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return Summary(math.nan, math.nan, 0, int(v.size))
    return Summary(float(np.median(ok)), float(np.mean(ok)), int(ok.size), int(v.size - ok.size))


# ---- across tasks -------------------------------------------------------------------------------------


def win_count(errors: Mapping[str, float], reference: Mapping[str, float]) -> tuple[int, int]:
    """(tasks where ``errors`` is strictly below ``reference``, tasks compared); a task missing on either
    side, or NaN there, is left out."""
    pairs = [(errors[t], reference[t]) for t in errors if t in reference]
    pairs = [(e, r) for e, r in pairs if not (math.isnan(e) or math.isnan(r))]
    return sum(e < r for e, r in pairs), len(pairs)


def relative_change(error: float, reference: float, zero: float = ZERO) -> float:
    """``(error - reference) / reference``; 0 when both are 0, NaN when only the reference is 0."""
    if math.isnan(error) or math.isnan(reference):
        return math.nan
    if abs(reference) <= zero:
        return 0.0 if abs(error) <= zero else math.nan
    return (error - reference) / abs(reference)


def average_ranks(values: Sequence[float] | FloatArray) -> FloatArray:
    """Ranks from 1 (lowest value); tied values share the average of their ranks; NaN ranks last."""
    v = np.where(np.isnan(np.asarray(values, dtype=np.float64)), np.inf, np.asarray(values, dtype=np.float64))
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size, dtype=np.float64)
    i = 0
    while i < v.size:
        j = i
        while j + 1 < v.size and v[order[j + 1]] == v[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mean_ranks(table: Mapping[str, Mapping[str, float]], strategies: Sequence[str]) -> dict[str, float]:
    """Mean over tasks of each strategy's rank among ``strategies`` (``table[task][strategy]`` = error)."""
    totals = np.zeros(len(strategies))
    for row in table.values():
        totals += average_ranks([row.get(s, math.nan) for s in strategies])
    n = len(table)
    return {s: float(totals[i] / n) if n else math.nan for i, s in enumerate(strategies)}


def normalized_regret(error: float, optimum: float | None, reference: float) -> float:
    """``(error - optimum) / (reference - optimum)``; NaN without an optimum or a reference above it."""
    if optimum is None or math.isnan(error) or math.isnan(reference) or reference - optimum <= ZERO:
        return math.nan
    return (error - optimum) / (reference - optimum)


# ---- how sure ---------------------------------------------------------------------------------------


def paired_outcomes(a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray) -> tuple[int, int, int]:
    """(wins, losses, ties) of ``a`` against ``b`` pair by pair (lower wins); pairs with a NaN are skipped."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    return int(np.sum(x < y)), int(np.sum(x > y)), int(np.sum(x == y))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped): P(a split at least this uneven | each side equally likely)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    return min(1.0, float(Fraction(2 * tail, 1 << n)))  # exact for any n (2**n overflows a float)


def paired_cells(a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray, *, fmt: str = ".4g") -> str:
    """``wins/losses/ties | p | median a | median b``: a paired comparison (:func:`paired_outcomes`, the
    exact :func:`sign_test`) as the cells of a Markdown table row, as the benchmarks print them."""
    wins, losses, ties = paired_outcomes(a, b)
    return f"{wins}/{losses}/{ties} | {sign_test(wins, losses):.2g} | {np.median(a):{fmt}} | {np.median(b):{fmt}}"


def bootstrap_win_rate(
    errors: Mapping[str, FloatArray],
    reference: Mapping[str, float | FloatArray],
    *,
    reps: int,
    rng: np.random.Generator,
    level: float = 0.9,
) -> tuple[float, float]:
    """A ``level`` percentile interval of the win share, resampling each task's seeds with replacement.

    ``errors[task]`` holds one error per seed. ``reference[task]`` is a number (random search's expected
    error) or an array paired with ``errors[task]`` seed by seed (resampled together). A task wins when the
    median of its resampled errors is strictly below the reference (or the resampled reference's median).
    """
    shares = np.zeros(reps)
    counted = np.zeros(reps)
    for task, err in errors.items():
        e = np.asarray(err, dtype=np.float64)
        ref = np.asarray(reference[task], dtype=np.float64) if task in reference else np.array(math.nan)
        ok = ~np.isnan(e) if ref.ndim == 0 else ~(np.isnan(e) | np.isnan(ref))
        if not ok.any() or (ref.ndim == 0 and math.isnan(float(ref))):
            continue
        e = e[ok]
        idx = rng.integers(0, e.size, size=(reps, e.size))
        med = quantiles(e[idx], 0.5, axis=1)
        ref_med = quantiles(ref[ok][idx], 0.5, axis=1) if ref.ndim else np.full(reps, float(ref))
        shares += med < ref_med
        counted += 1
    if not counted.any():
        return math.nan, math.nan
    rates = shares / counted
    tail = (1 - level) / 2
    lo, hi = np.quantile(rates, [tail, 1 - tail])
    return float(lo), float(hi)


# ---- random search, done fairly --------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomSearchCurves:
    """Random search's best-so-far after 1..horizon evaluations, over bootstrap resamples: median, mean,
    and the 5-95% interval, of the best observed error and of the true error of the configuration picked."""

    observed_median: FloatArray
    observed_mean: FloatArray
    observed_lo: FloatArray
    observed_hi: FloatArray
    true_median: FloatArray
    true_mean: FloatArray
    true_lo: FloatArray
    true_hi: FloatArray


def bootstrap_random_search(
    observed: FloatArray, true: FloatArray, *, horizon: int, reps: int, rng: np.random.Generator
) -> RandomSearchCurves:
    """Resample ``horizon``-long sequences (with replacement) from single random evaluations.

    ``observed[i]`` is the (noisy) error one random configuration returned (NaN: a failed evaluation), and
    ``true[i]`` its noise-free error. Each sequence's incumbent follows the same rule as a study: the
    lowest observed value, the earliest on ties.
    """
    idx = rng.integers(0, observed.size, size=(reps, horizon))
    obs, tru = observed[idx], true[idx]
    best = np.full(reps, np.inf)
    picked = np.full(reps, np.inf)
    obs_curve = np.empty((reps, horizon))
    true_curve = np.empty((reps, horizon))
    for k in range(horizon):
        better = obs[:, k] < best
        best = np.where(better, obs[:, k], best)
        picked = np.where(better, tru[:, k], picked)
        obs_curve[:, k], true_curve[:, k] = best, picked
    o = quantiles(obs_curve, [0.5, 0.05, 0.95])
    t = quantiles(true_curve, [0.5, 0.05, 0.95])
    with np.errstate(invalid="ignore"):
        obs_mean, true_mean = obs_curve.mean(axis=0), true_curve.mean(axis=0)
    return RandomSearchCurves(o[0], obs_mean, o[1], o[2], t[0], true_mean, t[1], t[2])
