"""The built-in tasks that need nothing but a table or a formula: toy functions, tabular benchmarks
(HPOBench, NAS-Bench-201, HPOLib) and learning-curve tables replayed epoch by epoch (``curves-<dataset>``).
CIFAR-10 training is :mod:`agent.tasks.cifar`.

Each is registered with a factory, so listing them costs nothing (a tabular table takes a second to load).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.space import CategoricalParam, FloatParam, SearchSpace
from evaluators.curves import curve_datasets
from evaluators.replay import CurveReplay
from evaluators.tabular import TABULAR_DATASETS, TabularBenchmark
from evaluators.toy import TOY_FUNCTIONS
from tools.evaluate_tabular import EvaluateTabular
from tools.evaluate_toy import EvaluateToy
from tools.train_replayed import TrainReplayed

from .base import BuiltinFactory, Task, TaskInfo

__all__ = ["BUILTIN"]

#: name -> (what the listing shows, the factory).
BUILTIN: dict[str, tuple[TaskInfo, BuiltinFactory]] = {}


def _register(info: TaskInfo, factory: BuiltinFactory) -> None:
    BUILTIN[info.name] = (info, factory)


# ---- toy functions ------------------------------------------------------------------------------------


def _toy_factory(fn_name: str) -> BuiltinFactory:
    def build(seed: int, space: SearchSpace | None, options: Mapping[str, Any]) -> Task:
        fn = TOY_FUNCTIONS[fn_name]
        default = SearchSpace(params={name: FloatParam(low=lo, high=hi) for name, (lo, hi) in fn.bounds.items()})
        space = space or default
        return Task(
            name=f"toy-{fn_name}",
            family="toy",
            description=fn.description,
            space=space,
            template="task_toy",
            tool=EvaluateToy(fn_name, space),
            optimum=fn.minimum,
            metric="value",
        )

    return build


for _fn in TOY_FUNCTIONS.values():
    _register(TaskInfo(f"toy-{_fn.name}", "toy", _fn.description), _toy_factory(_fn.name))


# ---- tabular benchmarks -------------------------------------------------------------------------------


def _tabular_factory(family: str, dataset: str) -> BuiltinFactory:
    def build(seed: int, space: SearchSpace | None, options: Mapping[str, Any]) -> Task:
        bench = TabularBenchmark(family, dataset, seed=seed)
        default = SearchSpace(params={p.name: CategoricalParam(choices=tuple(p.choices)) for p in bench.params})
        space = space or default
        return Task(
            name=f"{family}-{dataset}",
            family="tabular",
            description=bench.description,
            space=space,
            template=_TEMPLATE.get(family, "task_tabular"),
            tool=EvaluateTabular(bench, space),
            optimum=bench.best_true_error(),
            true_error=bench.true_error,
            metric=bench.metric,
        )

    return build


_TABULAR_SUMMARY = {
    "hpobench": "HPOBench MLP on OpenML {dataset}: tune alpha, batch_size, depth, learning_rate_init, width",
    "nb201": "NAS-Bench-201 cell on {dataset}: choose the 6 operations Op0..Op5",
    "hpolib": "HPOLib MLP regression on UCI {dataset} (validation MSE, heavy-tailed): tune 9 parameters",
}
#: The prompt a family's tasks are presented with (default ``task_tabular``: an error rate).
_TEMPLATE = {"hpolib": "task_regression"}
for _family, _datasets in TABULAR_DATASETS.items():
    for _ds in _datasets:
        _register(
            TaskInfo(f"{_family}-{_ds}", "tabular", _TABULAR_SUMMARY[_family].format(dataset=_ds)),
            _tabular_factory(_family, _ds),
        )


# ---- learning-curve tables, replayed epoch by epoch ---------------------------------------------------


def _curves_factory(dataset: str) -> BuiltinFactory:
    def build(seed: int, space: SearchSpace | None, options: Mapping[str, Any]) -> Task:
        replay = CurveReplay(dataset, seed=seed)
        default = SearchSpace(params={p.name: CategoricalParam(choices=p.choices) for p in replay.table.params})
        space = space or default
        return Task(
            name=f"curves-{dataset}",
            family="tabular",
            description=replay.description,
            space=space,
            template="task_curves",
            tool=TrainReplayed(replay, space),
            optimum=replay.best_true_value(),
            true_error=replay.true_value,
            metric="val_error",
        )

    return build


for _ds in curve_datasets():  # listing reads no table: the names are the files'
    _summary = f"MLP on {_ds}: recorded learning curves replayed epoch by epoch (a scheduler may stop a run)"
    _register(TaskInfo(f"curves-{_ds}", "tabular", _summary), _curves_factory(_ds))
