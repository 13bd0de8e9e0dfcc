"""Which trials stop early: the study's scheduler, Optuna's own pruners over the steps a task reports.

``--pruner`` names one of :data:`PRUNERS`; left out, a task whose tool reports steps
(:attr:`~tools.base.EvaluationTool.max_step`: train_cifar's epochs, a task file's ``steps``) is scheduled by
:data:`DEFAULT_PRUNER`, and a task that reports none is not scheduled.

- ``asha``: asynchronous successive halving, Optuna's ``SuccessiveHalvingPruner`` with rungs at
  ``min_step * 3**k``: a trial goes past a rung only among the best third of the trials that reached it;
- ``hyperband``: Optuna's ``HyperbandPruner`` (brackets of successive halving between ``min_step`` and
  ``max_step``);
- ``median``: Optuna's ``MedianPruner`` (stops a trial worse than the median of the others at the same step);
- ``none``: every trial runs to its end.

The scheduler is one of a study's terms (:mod:`agent.study.terms`): stored as :meth:`Scheduler.to_dict`,
kept by a resume, and a different one refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import optuna

__all__ = ["DEFAULT_PRUNER", "PRUNERS", "REDUCTION_FACTOR", "PrunerName", "Scheduler"]

PrunerName = Literal["asha", "hyperband", "median", "none"]
PRUNERS: tuple[str, ...] = get_args(PrunerName)
#: The scheduler of a task that reports steps when ``--pruner`` is left out (provisional: the multi-fidelity
#: benchmark measures which is best).
DEFAULT_PRUNER: PrunerName = "asha"
#: Successive halving keeps the best 1/3 of the trials at each rung.
REDUCTION_FACTOR = 3


@dataclass(frozen=True)
class Scheduler:
    """A pruner over the steps ``min_step..max_step`` (None: not known; Hyperband then estimates it)."""

    pruner: PrunerName = "none"
    min_step: int = 1
    max_step: int | None = None

    @classmethod
    def choose(cls, asked: str | None, *, max_step: int | None, min_step: int | None = None) -> Scheduler:
        """The scheduler ``--pruner asked`` names (None: the default for a tool reporting up to ``max_step``)."""
        name = asked if asked is not None else (DEFAULT_PRUNER if max_step is not None else "none")
        if name not in PRUNERS:
            raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
        if name == "none":
            return cls()
        return cls(name, min_step or 1, max_step)  # type: ignore[arg-type]

    @property
    def on(self) -> bool:
        return self.pruner != "none"

    def build(self) -> optuna.pruners.BasePruner | None:
        """Optuna's pruner for this scheduler; None for ``none``."""
        if self.pruner == "asha":
            return optuna.pruners.SuccessiveHalvingPruner(
                min_resource=self.min_step, reduction_factor=REDUCTION_FACTOR, min_early_stopping_rate=0
            )
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=self.min_step,
                max_resource=self.max_step if self.max_step is not None else "auto",
                reduction_factor=REDUCTION_FACTOR,
            )
        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_warmup_steps=self.min_step - 1)
        return None

    def to_dict(self) -> dict[str, Any]:
        """As stored with the study."""
        if not self.on:
            return {"pruner": "none"}
        return {"pruner": self.pruner, "min_step": self.min_step, "max_step": self.max_step}

    @staticmethod
    def describe(stored: Any) -> str:
        """A stored scheduler in words: ``asha over steps 1..27``."""
        if not isinstance(stored, dict) or stored.get("pruner") in (None, "none"):
            return "no pruner"
        top = stored.get("max_step")
        return f"{stored['pruner']} over steps {stored.get('min_step', 1)}..{'?' if top is None else top}"
