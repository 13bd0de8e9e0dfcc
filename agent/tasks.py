"""The registry of tasks: name -> search space, evaluation tool, prompt template and description.

Tasks are built lazily (a tabular table takes a second to load), so listing them costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.tools.base import EvaluationTool
from agent.tools.evaluate_tabular import EvaluateTabular
from agent.tools.evaluate_toy import EvaluateToy
from evaluators.tabular import TABULAR_DATASETS, TabularBenchmark
from evaluators.toy import TOY_FUNCTIONS

from .errors import UserError
from .records import Direction
from .space import CategoricalParam, FloatParam, SearchSpace

__all__ = ["TASK_GROUPS", "Task", "TaskInfo", "build_task", "list_tasks", "resolve_tasks"]

Family = Literal["toy", "tabular", "cifar"]


@dataclass(frozen=True)
class Task:
    """A built task, ready to evaluate."""

    name: str
    family: Family
    description: str
    space: SearchSpace
    template: str
    tool: EvaluationTool
    #: The known optimum (toy minima, a table's best true error), for regret; None where unknown.
    optimum: float | None = None
    #: Noise-free score of a configuration where the objective is noisy (tabular: mean over seeds).
    true_error: Callable[[Mapping[str, Any]], float] | None = None
    #: Every built-in task minimizes an error; a task file may maximize its metric.
    direction: Direction = "minimize"


@dataclass(frozen=True)
class TaskInfo:
    name: str
    family: Family
    summary: str


# A factory takes (seed, search-space override, options) and builds the task.
_Factory = Callable[[int, SearchSpace | None, Mapping[str, Any]], Task]
_REGISTRY: dict[str, tuple[TaskInfo, _Factory]] = {}


def _register(info: TaskInfo, factory: _Factory) -> None:
    _REGISTRY[info.name] = (info, factory)


def list_tasks() -> list[TaskInfo]:
    return [info for info, _ in _REGISTRY.values()]


def build_task(
    name: str, seed: int = 0, space: SearchSpace | None = None, options: Mapping[str, Any] | None = None
) -> Task:
    """Build task ``name``; ``space`` replaces its default search space (``--search_space``)."""
    if name not in _REGISTRY:
        raise UserError(
            f"unknown task {name!r} (--task); run `python -m agent tasks` to list them: " + ", ".join(sorted(_REGISTRY))
        )
    _, factory = _REGISTRY[name]
    return factory(seed, space, options or {})


# ---- toy functions ------------------------------------------------------------------------------------


def _toy_factory(fn_name: str) -> _Factory:
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


def _tabular_factory(family: str, dataset: str) -> _Factory:
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


def _cifar_factory(arch: str) -> _Factory:
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
    "toy": [n for n in _REGISTRY if n.startswith("toy-")],
    "hpobench": [n for n in _REGISTRY if n.startswith("hpobench-")],
    "nb201": [n for n in _REGISTRY if n.startswith("nb201-")],
    "cifar": [n for n in _REGISTRY if n.startswith("cifar-")],
}


def resolve_tasks(text: str) -> tuple[str, ...]:
    """Comma-separated task names and groups (``hpobench``, ``toy``, ``nb201``), in order, without repeats."""
    known = {info.name for info in list_tasks()}
    out: list[str] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        names = TASK_GROUPS.get(item, [item])
        for name in names:
            if name not in known:
                raise UserError(
                    f"--tasks: unknown task or group {item!r}; groups: {', '.join(TASK_GROUPS)}; "
                    "`python -m agent tasks` lists the tasks"
                )
            if name not in out:
                out.append(name)
    if not out:
        raise UserError("--tasks: name at least one task or group")
    return tuple(out)
