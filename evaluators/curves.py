"""Learning-curve tables: real MLP training recorded per epoch, to replay step by step (multi-fidelity benchmarks).

Each table (``evaluators/data/curves/<dataset>.npz``, made by ``benchmarks/curves/make_tables.py``) holds every
configuration of a product grid of numeric choices (batch_size, width, depth, learning_rate, weight_decay, each
increasing), trained with several seeds for a number of epochs, with the validation error after every epoch,
whether training had diverged by then (non-finite loss or weights; the error is then chance), the mean training
loss of the epoch, and the seconds one epoch of that configuration costs (CPU seconds of one model trained alone
on one thread: it depends on the architecture and batch size only). ``benchmarks/curves/README.md`` says how
the tables were made and what is in them.

API (tables are loaded once per process; every lookup is O(1)):

- :func:`curve_datasets` ``() -> tuple[str, ...]``: the datasets that have a table.
- :func:`load_table` ``(dataset) -> CurveTable``; an unknown dataset is a ``ValueError`` naming those that exist.
- :class:`CurveTable`:
  - ``space``: ``{name: choices}`` in the table's order; ``params``: the same as :class:`CurveParam` s;
  - ``epochs``, ``seeds`` (how many), ``n_configs``, ``metadata`` (sizes, split, settings, versions, date);
  - ``index(config) -> int`` (a configuration is a mapping of every parameter to one of its choices; floats
    match within a relative 1e-6; anything else is a ``ValueError`` naming the valid choices) and
    ``config(index)``, its inverse. Every method below takes a mapping or an index;
  - ``val_error(config, seed, epoch)`` and ``diverged(config, seed, epoch)``: after ``epoch`` epochs, 1-based
    (1..epochs), for table seed ``seed`` (0..seeds-1); ``curve(config, seed)``: all epochs as an array;
  - ``train_loss(config, seed, epoch)``: the mean training loss of that epoch (non-finite once diverged);
  - ``seconds_per_epoch(config)``: the recorded cost of one epoch;
  - ``true_value(config)``: the mean over seeds of the final-epoch validation error: what a benchmark scores a
    picked configuration by; ``best_true_value()``: its minimum over the table;
  - ``arrays``: the raw arrays (``val_error``, ``diverged``, ``train_loss`` [config, seed, epoch];
    ``seconds_per_epoch`` [config]), read-only, for vectorized use.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CurveArrays", "CurveParam", "CurveTable", "curve_datasets", "load_table"]

Choice = int | float
ConfigLike = Mapping[str, Any] | int
_REL_TOL = 1e-6


def _default_directory() -> Traversable:
    return files("evaluators") / "data" / "curves"


@dataclass(frozen=True)
class CurveParam:
    """One parameter of a table's grid: its choices in increasing order."""

    name: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class CurveArrays:
    """The table's arrays, read-only: [config, seed, epoch] (epoch index e is after e+1 epochs), and [config]."""

    val_error: np.ndarray
    diverged: np.ndarray
    train_loss: np.ndarray
    seconds_per_epoch: np.ndarray


def curve_datasets(directory: Path | None = None) -> tuple[str, ...]:
    """The datasets that have a table (in the package's data, or in ``directory``), sorted."""
    folder: Traversable = _default_directory() if directory is None else directory
    if not folder.is_dir():
        return ()
    return tuple(sorted(entry.name[: -len(".npz")] for entry in folder.iterdir() if entry.name.endswith(".npz")))


def load_table(dataset: str, directory: Path | None = None) -> CurveTable:
    """The table of ``dataset`` (read once per process and directory)."""
    return _load(dataset, None if directory is None else str(Path(directory).resolve()))


@cache
def _load(dataset: str, directory: str | None) -> CurveTable:
    known = curve_datasets(None if directory is None else Path(directory))
    if dataset not in known:
        where = "" if directory is None else f" in {directory}"
        raise ValueError(f"no curve table for {dataset!r}{where}; tables exist for: {', '.join(known) or 'none'}")
    folder: Traversable = _default_directory() if directory is None else Path(directory)
    with (folder / f"{dataset}.npz").open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        names = [str(name) for name in data["param_names"]]
        params = tuple(CurveParam(name, tuple(data[f"choices_{name}"].tolist())) for name in names)
        arrays = CurveArrays(
            val_error=_frozen(data["val_error"].astype(np.float64)),
            diverged=_frozen(data["diverged"].astype(bool)),
            train_loss=_frozen(data["train_loss"].astype(np.float64)),
            seconds_per_epoch=_frozen(data["seconds_per_epoch"].astype(np.float64)),
        )
        metadata = json.loads(str(data["metadata"]))
    return CurveTable(dataset, params, arrays, metadata)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class CurveTable:
    """One dataset's learning curves; see the module docstring for the API."""

    def __init__(self, dataset: str, params: tuple[CurveParam, ...], arrays: CurveArrays, metadata: dict[str, Any]):
        self.dataset = dataset
        self.params = params
        self.arrays = arrays
        self.metadata = metadata
        self.n_configs, self.seeds, self.epochs = arrays.val_error.shape
        sizes = [len(p.choices) for p in params]
        if math.prod(sizes) != self.n_configs:
            raise ValueError(f"{dataset}: the grid has {math.prod(sizes)} cells but the table {self.n_configs} rows")
        # Row-major over the grid: the index of a configuration is sum(choice index * stride).
        self._strides = [math.prod(sizes[i + 1 :]) for i in range(len(sizes))]
        self._exact = [{value: i for i, value in enumerate(p.choices)} for p in params]
        self._true = arrays.val_error[:, :, -1].mean(axis=1)

    def __repr__(self) -> str:
        return f"CurveTable({self.dataset!r}: {self.n_configs} configs x {self.seeds} seeds x {self.epochs} epochs)"

    @property
    def space(self) -> dict[str, tuple[Choice, ...]]:
        return {p.name: p.choices for p in self.params}

    def index(self, config: ConfigLike) -> int:
        if isinstance(config, numbers.Integral) and not isinstance(config, bool):
            if not 0 <= int(config) < self.n_configs:
                raise ValueError(f"configuration index {config} is out of range 0..{self.n_configs - 1}")
            return int(config)
        if not isinstance(config, Mapping):
            raise TypeError(f"a configuration is a mapping or an index, got {type(config).__name__}")
        names = [p.name for p in self.params]
        unexpected = sorted(set(config) - set(names))
        missing = [name for name in names if name not in config]
        if unexpected or missing:
            raise ValueError(
                f"unexpected parameters {unexpected}, missing parameters {missing}; valid parameters: "
                f"{', '.join(names)}"
            )
        return sum(self._choice_index(i, config[p.name]) * self._strides[i] for i, p in enumerate(self.params))

    def config(self, index: int) -> dict[str, Choice]:
        index = self.index(index)
        return {
            p.name: p.choices[(index // stride) % len(p.choices)]
            for p, stride in zip(self.params, self._strides, strict=True)
        }

    def val_error(self, config: ConfigLike, seed: int, epoch: int) -> float:
        return float(self.arrays.val_error[self.index(config), self._seed(seed), self._epoch(epoch)])

    def diverged(self, config: ConfigLike, seed: int, epoch: int) -> bool:
        return bool(self.arrays.diverged[self.index(config), self._seed(seed), self._epoch(epoch)])

    def train_loss(self, config: ConfigLike, seed: int, epoch: int) -> float:
        return float(self.arrays.train_loss[self.index(config), self._seed(seed), self._epoch(epoch)])

    def curve(self, config: ConfigLike, seed: int) -> np.ndarray:
        """Validation error after epochs 1..epochs."""
        curve: np.ndarray = self.arrays.val_error[self.index(config), self._seed(seed)]
        return curve

    def seconds_per_epoch(self, config: ConfigLike) -> float:
        return float(self.arrays.seconds_per_epoch[self.index(config)])

    def true_value(self, config: ConfigLike) -> float:
        """Mean over seeds of the final-epoch validation error."""
        return float(self._true[self.index(config)])

    def best_true_value(self) -> float:
        return float(self._true.min())

    def _choice_index(self, position: int, value: object) -> int:
        param = self.params[position]
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            hit: int | None = self._exact[position].get(value)  # type: ignore[call-overload]
            if hit is not None:
                return hit
            for i, choice in enumerate(param.choices):
                if math.isclose(float(value), choice, rel_tol=_REL_TOL, abs_tol=0.0):
                    return i
        raise ValueError(
            f"{param.name}={value!r} is not on the grid; valid choices for {param.name}: {list(param.choices)}"
        )

    def _seed(self, seed: int) -> int:
        if not 0 <= seed < self.seeds:
            raise ValueError(f"seed {seed} is out of range: the table has seeds 0..{self.seeds - 1}")
        return seed

    def _epoch(self, epoch: int) -> int:
        if not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch {epoch} is out of range: the table has epochs 1..{self.epochs}")
        return epoch - 1
