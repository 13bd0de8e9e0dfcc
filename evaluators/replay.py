"""Replaying a learning-curve table (:mod:`evaluators.curves`) as if the training ran: epoch by epoch.

A :class:`CurveReplay` run of a configuration draws one of the table's seeds (a noisy objective, as the tabular
benchmarks are), then gives ``report(epoch, val_error)`` the validation error after each epoch; when ``report``
says stop, the run ends there, ``pruned``, with the last reported error. The result's ``cost_s`` is the recorded
seconds of the epochs it ran (``seconds_per_epoch`` x epochs), the compute a scheduler saved or spent; its
metrics hold ``epochs_run``, ``step`` (the last one reported) and the table seed.
``true_value`` scores a picked configuration noise-free (the table's mean over seeds after the last epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from evaluators.base import EvalResult, Progress
from evaluators.curves import CurveTable, load_table

__all__ = ["CurveReplay"]

#: ``report(epoch, value) -> stop``.
Report = Callable[[int, float], bool]


class CurveReplay:
    """One table's configurations, trained again by looking them up; ``seed`` seeds the draw of table seeds."""

    def __init__(self, dataset: str, seed: int | None = None, table: CurveTable | None = None) -> None:
        self.table = table if table is not None else load_table(dataset)
        self.dataset = dataset
        self._rng = np.random.default_rng(seed)
        described = self.table.metadata.get("description", dataset)
        self.description = (
            f"Validation error (1 - accuracy) of a multilayer perceptron (ReLU, SGD) trained for "
            f"{self.table.epochs} epochs on {described}. Each training run has its own random seed (the "
            "error is noisy) and reports the validation error after every epoch."
        )

    @property
    def epochs(self) -> int:
        return int(self.table.epochs)

    def run(
        self,
        config: Mapping[str, Any],
        report: Report | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> EvalResult:
        """Train ``config`` (replayed), reporting each epoch's validation error; stop when ``report`` says so."""
        index = self.table.index(config)
        seed = int(self._rng.integers(self.table.seeds))
        curve = self.table.curve(index, seed)
        per_epoch = self.table.seconds_per_epoch(index)
        stopped = False
        epoch = 0
        for epoch in range(1, self.table.epochs + 1):
            value = float(curve[epoch - 1])
            if progress is not None:
                progress(
                    Progress(
                        done=epoch, total=self.table.epochs, elapsed_s=per_epoch * epoch, metrics={"val_error": value}
                    )
                )
            if report is not None and report(epoch, value) and epoch < self.table.epochs:
                stopped = True
                break
        value = float(curve[epoch - 1])
        metrics: dict[str, float | int | str] = {
            "val_error": value,
            "epochs_run": epoch,
            "step": epoch,
            "table_seed": seed,
            "diverged": int(self.table.diverged(index, seed, epoch)),
        }
        return EvalResult(
            value=value, state="pruned" if stopped else "complete", metrics=metrics, cost_s=per_epoch * epoch
        )

    def true_value(self, config: Mapping[str, Any]) -> float:
        return self.table.true_value(config)

    def best_true_value(self) -> float:
        return self.table.best_true_value()
