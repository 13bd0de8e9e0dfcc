"""The built-in tasks: toy functions, tabular benchmarks (HPOBench, NAS-Bench-201) and CIFAR-10 training.

Each is registered with a factory, so listing them costs nothing (a tabular table takes a second to load).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import UserError
from agent.space import CategoricalParam, FloatParam, SearchSpace
from agent.tools.evaluate_tabular import EvaluateTabular
from agent.tools.evaluate_toy import EvaluateToy
from evaluators.tabular import TABULAR_DATASETS, TabularBenchmark
from evaluators.toy import TOY_FUNCTIONS

from .base import Task, TaskInfo

__all__ = ["BUILTIN", "CIFAR_SPACE", "TASK_GROUPS", "BuiltinFactory"]

#: A built-in factory takes (seed, search-space override, options) and builds the task.
BuiltinFactory = Callable[[int, SearchSpace | None, Mapping[str, Any]], Task]
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
            template="task_tabular",
            tool=EvaluateTabular(bench, space),
            optimum=bench.best_true_error(),
            true_error=bench.true_error,
        )

    return build


_TABULAR_SUMMARY = {
    "hpobench": "HPOBench MLP on OpenML {dataset}: tune alpha, batch_size, depth, learning_rate_init, width",
    "nb201": "NAS-Bench-201 cell on {dataset}: choose the 6 operations Op0..Op5",
}
for _family, _datasets in TABULAR_DATASETS.items():
    for _ds in _datasets:
        _register(
            TaskInfo(f"{_family}-{_ds}", "tabular", _TABULAR_SUMMARY[_family].format(dataset=_ds)),
            _tabular_factory(_family, _ds),
        )

# ---- CIFAR-10 ----------------------------------------------------------------------------------------

# The reference code's search space.
CIFAR_SPACE = SearchSpace.from_dict(
    {
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "train_batch_size": {"type": "categorical", "choices": [32, 64, 128, 256, 512]},
        "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
    }
)
_CIFAR_NETS = {
    "resnet9": "a ResNet-9 (a small residual convolutional network)",
    "vit": "a Vision Transformer (patch 4, 6 layers, 8 heads, width 512)",
}


def _cifar_factory(arch: str) -> BuiltinFactory:
    def build(seed: int, space: SearchSpace | None, options: Mapping[str, Any]) -> Task:
        # torch loads only when a CIFAR task is built.
        from agent.tools.train_cifar import TrainCifar
        from evaluators.cifar.train import TrainConfig

        base = options.get("train_config") or TrainConfig()
        base = dataclasses.replace(base, arch=arch, seed=seed)
        space = space or CIFAR_SPACE
        try:
            tool = TrainCifar(base, space)
        except ValueError as exc:
            raise UserError(f"--search_space: {exc}") from exc
        epochs = f"{base.num_train_epochs} epoch{'s' if base.num_train_epochs != 1 else ''}"
        description = (
            f"Training {_CIFAR_NETS[arch]} from scratch on CIFAR-10 image classification (10 classes, 32x32 "
            f"colour images) for {epochs}, with a learning rate that warms up linearly then decays linearly to "
            f"zero, random-crop and flip augmentation. The score is the error rate on a held-out validation "
            "split of the training images."
        )
        return Task(
            name=f"cifar-{arch}",
            family="cifar",
            description=description,
            space=space,
            template="task_cifar",
            tool=tool,
        )

    return build


for _arch, _net in _CIFAR_NETS.items():
    _register(
        TaskInfo(
            f"cifar-{_arch}",
            "cifar",
            f"CIFAR-10, {_net}: tune optimizer, learning rate, batch size, "
            "weight decay, label smoothing (real training runs)",
        ),
        _cifar_factory(_arch),
    )

#: Groups accepted wherever a list of tasks is (``bench --tasks hpobench,toy``).
TASK_GROUPS: dict[str, list[str]] = {
    "toy": [n for n in BUILTIN if n.startswith("toy-")],
    "hpobench": [n for n in BUILTIN if n.startswith("hpobench-")],
    "nb201": [n for n in BUILTIN if n.startswith("nb201-")],
    "cifar": [n for n in BUILTIN if n.startswith("cifar-")],
}
