"""What the family benchmarks (``transfer_families.py``, ``warp.py``) share: the families of tables they run
on, and the paired comparison of two arms' studies at a budget."""

from __future__ import annotations

from collections.abc import Mapping

from agent import metrics
from evaluators.tabular import TABULAR_DATASETS

FAMILIES = {
    "hpobench": [d for d in TABULAR_DATASETS["hpobench"] if d != "car"],  # car: every strategy finds 0 at once
    "hpolib": list(TABULAR_DATASETS["hpolib"]),
    "nb201": list(TABULAR_DATASETS["nb201"]),
}
LABELS = {"hpobench": "HPOBench (7)", "hpolib": "HPOLib (4)", "nb201": "NB201 (3)"}
BUDGETS = (10, 30)
HORIZON = 30

#: A study's true error of the incumbent after each trial, by (family, dataset, seed, arm).
Runs = Mapping[tuple[str, str, int, str], object]


def paired_cells(
    runs: Runs, family: str, seeds: int, arm: str, reference: str, budget: int, ref_budget: int | None = None
) -> str | None:
    """``arm`` after ``budget`` trials against ``reference`` after ``ref_budget`` (default: the same), paired
    by table and seed over the family (:func:`agent.metrics.paired_cells`); None where no pair ran."""
    x, y = [], []
    for dataset in FAMILIES[family]:
        for s in range(seeds):
            a, b = runs.get((family, dataset, s, arm)), runs.get((family, dataset, s, reference))
            if isinstance(a, list) and isinstance(b, list):
                x.append(a[budget - 1])
                y.append(b[(ref_budget or budget) - 1])
    return metrics.paired_cells(x, y) if x else None
