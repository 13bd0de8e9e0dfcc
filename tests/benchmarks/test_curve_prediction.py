"""Tests for benchmarks/curve_prediction.py: the orderings it compares and what it counts as kept."""

from __future__ import annotations

import numpy as np

from benchmarks import curve_prediction as cp
from evaluators.curves import load_table


def test_kept_counts_the_best_configurations_the_cut_of_an_ordering_keeps() -> None:
    final = np.arange(900, dtype=float)
    assert cp.kept(final, final, best=0.01, cut=1 / 3) == 1.0  # the ordering is the final value itself
    assert cp.kept(-final, final, best=0.01, cut=1 / 3) == 0.0  # reversed: the best are cut first
    late = final.copy()
    late[4:9] += 2000.0  # the best 4 stay first, the next 5 are sent last
    assert cp.kept(late, final, best=0.01, cut=1 / 3) == 4 / 9


def test_sources_predict_the_final_value_by_the_ratios_of_the_nearest_source_trials() -> None:
    table = load_table("digits")
    grid = cp.grid_positions(table)
    some = np.arange(0, table.n_configs, 7)
    at_rung = cp.mean_curves(table)[:, 2]
    # every source trial ended at half its value at the rung: the prediction is half the value there
    assert np.allclose(cp.predicted(table, 3, grid[some], np.full(len(some), 0.5)), 0.5 * at_rung)
    # the ratio of a configuration's own curve, seen as a source, is what it predicts for itself and its neighbours
    ratios = np.where(np.arange(len(some)) % 2 == 0, 0.25, 1.0)
    nearest = cp.predicted(table, 3, grid[some], ratios)
    assert set(np.round(nearest / at_rung, 6)) <= {
        round(k / cp.NEIGHBOURS * 0.25 + (1 - k / cp.NEIGHBOURS), 6) for k in range(6)
    }
    assert not np.allclose(nearest, at_rung)
