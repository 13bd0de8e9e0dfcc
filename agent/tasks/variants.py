"""Variants of a task for measuring what a study learns from earlier ones (``benchmarks/transfer.py``): the same
objective under other parameter names and order (:func:`renamed`: only a model can map an earlier study onto
it), and the objective negated (:func:`negated`: an earlier study whose best configurations are this task's
worst, a misleading source)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult
from tools.base import NO_TRIAL, EvaluationTool, TrialContext

from .base import Task

__all__ = ["HPOBENCH_RENAMED", "negated", "renamed"]

#: HPOBench's parameters as another code base might call them, in another order.
HPOBENCH_RENAMED = {
    "width": "n_units",
    "learning_rate_init": "init_lr",
    "depth": "n_layers",
    "batch_size": "bs",
    "alpha": "weight_decay",
}


class _Renamed(EvaluationTool):
    def __init__(self, inner: EvaluationTool, space: SearchSpace, names: Mapping[str, str]) -> None:
        super().__init__(space, name=inner.name, description=inner.description)
        self.inner = inner
        self.back = {new: old for old, new in names.items()}

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        return await self.inner.evaluate({self.back[n]: v for n, v in config.items()}, trial)


class _Negated(EvaluationTool):
    def __init__(self, inner: EvaluationTool) -> None:
        super().__init__(inner.space, name=inner.name, description=inner.description)
        self.inner = inner

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        result = await self.inner.evaluate(config, trial)
        return result if result.value is None else dataclasses.replace(result, value=-result.value)


def renamed(task: Task, names: Mapping[str, str], suffix: str = "renamed") -> Task:
    """``task`` with its parameters renamed (``names``: old -> new, in the order the new space lists them)."""
    space = SearchSpace(params={new: task.space.params[old] for old, new in names.items()})
    true_error = task.true_error
    back = {new: old for old, new in names.items()}

    def renamed_true_error(config: Mapping[str, Any]) -> float:
        assert true_error is not None
        return true_error({back[n]: v for n, v in config.items()})

    return dataclasses.replace(
        task,
        name=f"{task.name}-{suffix}",
        space=space,
        tool=_Renamed(task.tool, space, names),
        true_error=renamed_true_error if true_error is not None else None,
    )


def negated(task: Task, suffix: str = "negated") -> Task:
    """``task`` whose values are negated: minimizing it finds the original's worst configurations."""
    true_error = task.true_error
    return dataclasses.replace(
        task,
        name=f"{task.name}-{suffix}",
        tool=_Negated(task.tool),
        optimum=None,
        true_error=(lambda config: -true_error(config)) if true_error is not None else None,
    )
