"""Tests for agent/metrics.py: hand-made curves with known answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from agent import metrics as m

inf, nan = math.inf, math.nan


def test_best_so_far_carries_failures_and_is_inf_before_any_success() -> None:
    values = [None, 3.0, None, 2.0, 5.0, nan, 1.0]
    assert m.best_so_far(values).tolist() == [inf, 3.0, 3.0, 2.0, 2.0, 2.0, 1.0]
    assert m.incumbent_indices(values).tolist() == [-1, 1, 1, 3, 3, 3, 6]
    assert m.best_so_far([]).size == 0


def test_incumbent_is_the_earliest_on_ties_and_its_score_follows_it() -> None:
    values = [None, 2.0, 2.0, 1.0]
    true = [None, 0.5, 0.1, 0.9]
    assert m.incumbent_indices(values).tolist() == [-1, 1, 1, 3]
    assert m.incumbent_scores(values, true).tolist() == [inf, 0.5, 0.5, 0.9]


def test_quantiles_keep_inf_and_skip_missing_without_warnings() -> None:
    curves = np.array([[inf, 1.0, nan], [inf, 3.0, nan], [2.0, 5.0, nan]])
    median = m.quantiles(curves, 0.5)
    assert median[0] == inf and median[1] == 3.0 and math.isnan(median[2])
    lo, hi = m.quantiles(curves, [0.25, 0.75])
    assert lo[1] == 2.0 and hi[1] == 4.0
    assert m.quantiles(np.array([1.0, nan, 3.0]), 0.5) == 2.0


def test_win_count_counts_strictly_lower_and_skips_missing() -> None:
    errors = {"a": 1.0, "b": 2.0, "c": 3.0, "d": nan, "e": 1.0}
    reference = {"a": 2.0, "b": 2.0, "c": 1.0, "d": 1.0}
    assert m.win_count(errors, reference) == (1, 3)
    assert m.win_count({}, reference) == (0, 0)


def test_relative_change_guards_a_zero_reference() -> None:
    assert m.relative_change(1.5, 1.0) == pytest.approx(0.5)
    assert m.relative_change(0.5, 1.0) == pytest.approx(-0.5)
    assert m.relative_change(0.0, 0.0) == 0.0  # HPOBench car: both reach 0 error
    assert math.isnan(m.relative_change(0.1, 0.0))  # undefined: left out, and counted
    summary = m.summarize([m.relative_change(e, r) for e, r in [(1.5, 1.0), (0.5, 1.0), (0.0, 0.0), (0.1, 0.0)]])
    assert (summary.median, summary.mean, summary.n, summary.excluded) == (0.0, 0.0, 3, 1)


def test_ranks_average_ties_and_put_missing_last() -> None:
    assert m.average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert m.average_ranks([nan, 1.0, 1.0]).tolist() == [3.0, 1.5, 1.5]
    table = {"t1": {"a": 1.0, "b": 2.0, "c": 2.0}, "t2": {"a": 3.0, "b": 1.0, "c": 2.0}}
    assert m.mean_ranks(table, ["a", "b", "c"]) == {"a": 2.0, "b": 1.75, "c": 2.25}


def test_normalized_regret_is_zero_at_the_optimum_and_one_at_the_reference() -> None:
    assert m.normalized_regret(0.1, 0.1, 0.5) == 0.0
    assert m.normalized_regret(0.5, 0.1, 0.5) == pytest.approx(1.0)
    assert m.normalized_regret(0.3, 0.1, 0.5) == pytest.approx(0.5)
    assert math.isnan(m.normalized_regret(0.3, None, 0.5))
    assert math.isnan(m.normalized_regret(0.3, 0.5, 0.5))


@pytest.mark.parametrize(
    ("wins", "losses", "p"),
    [
        (0, 0, 1.0),
        (5, 0, 2 / 32),  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
        (8, 2, 2 * (1 + 10 + 45) / 1024),  # 0.109375
        (1, 9, 2 * (1 + 10) / 1024),  # 0.021484375, symmetric
        (3, 3, 1.0),
        (6, 4, 2 * 386 / 1024),  # 0.75390625
        (5, 5, 1.0),  # 2 * P(X <= 5) > 1: capped
        (15, 5, 2 * sum(math.comb(20, i) for i in range(6)) / 2**20),  # 0.04138947
    ],
)
def test_sign_test_matches_the_exact_binomial(wins: int, losses: int, p: float) -> None:
    assert m.sign_test(wins, losses) == pytest.approx(p, rel=1e-12)


def test_sign_test_handles_many_pairs_without_overflow() -> None:
    assert 0 < m.sign_test(700, 400) < 1e-15
    assert m.sign_test(600, 600) == 1.0


def test_paired_outcomes_and_repeats() -> None:
    assert m.paired_outcomes([1.0, 2.0, 3.0, nan, 2.0], [2.0, 1.0, 3.0, 1.0, 5.0]) == (2, 1, 1)
    assert m.repeated_count(["a", "b", "a", "a", "c"]) == 2


def test_paired_cells_are_a_benchmark_tables_counts_p_and_medians() -> None:
    assert m.paired_cells([1.0] * 9 + [3.0], [2.0] * 10) == "9/1/0 | 0.021 | 1 | 2"
    assert m.paired_cells([0.5, 0.25], [0.5, 0.125], fmt=".4f") == "0/1/1 | 1 | 0.3750 | 0.3125"


def expected_best_of_k(values: Sequence[float] | np.ndarray, k: int) -> float:
    """The exact expected minimum of ``k`` draws with replacement from ``values``: the oracle the bootstrap
    is checked against. With ``x(1) <= ... <= x(n)`` sorted, ``P(min = x(i)) = ((n-i+1)/n)^k - ((n-i)/n)^k``."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    above = (n - np.arange(n, dtype=np.float64)) / n  # (n - i + 1) / n for i = 1..n
    probs = above**k - np.append(above[1:], 0.0) ** k
    return float(np.dot(probs, x))


def test_the_oracle_is_exact_order_statistics() -> None:
    assert expected_best_of_k([1.0, 2.0, 3.0], 1) == pytest.approx(2.0)
    # P(min=1) = 1 - (2/3)^2 = 5/9, P(min=2) = (2/3)^2 - (1/3)^2 = 3/9, P(min=3) = 1/9
    assert expected_best_of_k([3.0, 1.0, 2.0], 2) == pytest.approx(14 / 9)


def test_bootstrap_of_random_search_matches_the_exact_expectation_on_uniform_values() -> None:
    values = np.random.default_rng(1).uniform(size=1000)
    curves = m.bootstrap_random_search(values, 2 * values, horizon=10, reps=4000, rng=np.random.default_rng(2))
    for k in range(1, 11):
        exact = expected_best_of_k(values, k)
        assert exact == pytest.approx(1 / (k + 1), abs=0.02)  # the continuous answer, for this sample
        # The bootstrap mean of the min of k draws: standard error < 0.29 / sqrt(4000) ~ 0.005.
        assert curves.observed_mean[k - 1] == pytest.approx(exact, abs=0.015)
        assert curves.true_mean[k - 1] == pytest.approx(2 * curves.observed_mean[k - 1])  # the pick's score
        assert curves.observed_lo[k - 1] <= curves.observed_median[k - 1] <= curves.observed_hi[k - 1]
    # The median of the min of k uniforms is 1 - 2^(-1/k).
    assert curves.observed_median[4] == pytest.approx(1 - 0.5 ** (1 / 5), abs=0.02)
    assert np.all(np.diff(curves.observed_median) <= 0)


def test_bootstrap_of_random_search_never_picks_a_failed_evaluation() -> None:
    observed = np.array([nan, 0.5, nan, 0.2])
    curves = m.bootstrap_random_search(observed, observed, horizon=30, reps=500, rng=np.random.default_rng(0))
    assert curves.observed_median[-1] == pytest.approx(0.2)
    assert np.all(np.isfinite(curves.true_median[-1:]))


def test_bootstrap_win_rate_interval() -> None:
    rng = np.random.default_rng(0)
    always = {"a": np.array([1.0, 1.0, 1.0]), "b": np.array([0.5, 0.4, 0.6])}
    assert m.bootstrap_win_rate(always, {"a": 2.0, "b": 1.0}, reps=200, rng=rng) == (1.0, 1.0)
    mixed = {t: rng.uniform(size=10) for t in "abcdefgh"}
    lo, hi = m.bootstrap_win_rate(mixed, dict.fromkeys(mixed, 0.5), reps=500, rng=rng)
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    paired = {"a": np.array([1.0, 2.0, 3.0])}
    assert m.bootstrap_win_rate(paired, {"a": np.array([2.0, 3.0, 4.0])}, reps=100, rng=rng) == (1.0, 1.0)


def test_rank_rewards_are_the_share_of_earlier_evaluations_beaten() -> None:
    assert m.rank_rewards([]) == []
    rewards = m.rank_rewards([3.0, 1.0, None, 2.0, 1.0])
    assert rewards == [None, 1.0, 0.0, pytest.approx(2 / 3), pytest.approx(3.5 / 4)]
