"""What a task is: a search space, the tool that evaluates a configuration, its prompt and its direction, and
what it adds around a study (hooks): how long the study may take, what runs after it, its own flags and
commands. The CLI knows no task by name; it asks the tasks (:mod:`agent.tasks.registry`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.records import Direction, Transform, TrialRecord
from agent.space import SearchSpace
from evaluators.base import Progress
from tools.base import ConfigTool, EvaluationTool

__all__ = [
    "AfterStudy",
    "BuiltinFactory",
    "DurationHint",
    "Family",
    "ProgressLines",
    "Task",
    "TaskCommand",
    "TaskFactory",
    "TaskFlags",
    "TaskBrief",
    "TaskInfo",
]

#: ``custom``: a task file's (a command or a Python objective) or an Optuna user's objective.
Family = Literal["toy", "tabular", "cifar", "custom"]


class ProgressLines(Protocol):
    """``lines(label)``: a callback printing an evaluation's progress as plain lines prefixed by ``label``."""

    def __call__(self, label: str) -> Callable[[Progress], None]: ...


@dataclass(frozen=True)
class DurationHint:
    """Print, after the first epoch of the run, what the whole study will take at that pace; past
    ``threshold_s``, with the flags that shorten it. ``where`` says what is slow ("on CPU")."""

    where: str
    shorten: str
    threshold_s: float = 3600.0


@dataclass(frozen=True)
class AfterStudy:
    """What a task's after-study hook may use: the study's best trial and its stored attributes."""

    best: TrialRecord | None
    meta: Mapping[str, Any]
    set_meta: Callable[[str, Any], None]
    #: Prints a line for the user.
    say: Callable[[str], None]
    #: Progress lines of an evaluation the hook runs; None when the run is ``--quiet``.
    progress: ProgressLines | None
    #: The task's flags as given (:class:`TaskFlags`).
    options: Mapping[str, Any]


@dataclass(frozen=True)
class TaskFlags:
    """Flags a family of tasks adds to ``python -m agent`` (in a group of their own); their values reach the
    task's factory as ``options`` and its hooks as :attr:`AfterStudy.options`."""

    add_arguments: Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class TaskCommand:
    """A command a family of tasks adds to ``python -m agent`` (``train``: one CIFAR training run)."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    #: Runs the command; its exit status. Raises ``UserError`` for what the user must fix.
    run: Callable[[argparse.Namespace, ProgressLines], int]


class TaskBrief(Protocol):
    """What a strategy knows of a task: what the model is told, and the tool it calls to name a configuration
    (a :class:`Task` is one; so is an Optuna user's objective, which Optuna evaluates)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def space(self) -> SearchSpace: ...
    @property
    def template(self) -> str: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def tool(self) -> ConfigTool: ...
    #: The warp of the values before a Gaussian process learns them; None: the default one.
    @property
    def transform(self) -> Transform | None: ...


@dataclass(frozen=True)
class Task:
    """A built task, ready to evaluate."""

    name: str
    family: Family
    description: str
    space: SearchSpace
    #: The prompt template (``prompts/<template>.j2``) that presents the task to the model.
    template: str
    tool: EvaluationTool
    #: The known optimum (toy minima, a table's best true error), for regret; None where unknown.
    optimum: float | None = None
    #: Noise-free score of a configuration where the objective is noisy (tabular: mean over seeds).
    true_error: Callable[[Mapping[str, Any]], float] | None = None
    #: Every built-in task minimizes an error; a task file may maximize its metric.
    direction: Direction = "minimize"
    #: What the value is (a task file's ``metric``): old and new values of a resumed study must agree on it.
    metric: str = "error"
    #: The warp of the values before a Gaussian process learns them (a task file's ``transform``); None: the
    #: default (:data:`agent.strategies.warp.DEFAULT`).
    transform: Transform | None = None
    #: How long the study may take, said after the first epoch (CIFAR on a CPU).
    duration_hint: DurationHint | None = None
    #: Runs once the study is over (CIFAR: retrain the best configuration and score the test set).
    after_study: Callable[[AfterStudy], Awaitable[None]] | None = None


@dataclass(frozen=True)
class TaskInfo:
    """A task as ``python -m agent tasks`` lists it (nothing built)."""

    name: str
    #: The task's family, or ``plugin`` for a task a package registers.
    family: str
    summary: str


class TaskFactory(Protocol):
    """What a package registers under the entry-point group ``llm_hpo.tasks``.

    Called with the study's ``seed`` and the ``--search_space`` override (None: the task's own space), it
    returns a :class:`Task`, or the path of a task file (``.yaml``, ``.yml``, ``.json``) to load. The task
    is named after the entry point, whatever name the factory gave it.
    """

    def __call__(self, *, seed: int, space: SearchSpace | None) -> Task | str | os.PathLike[str]: ...


#: A built-in task's factory: (seed, search-space override, the task flags' values) -> the task.
BuiltinFactory = Callable[[int, SearchSpace | None, Mapping[str, Any]], Task]
