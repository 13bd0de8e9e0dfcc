"""What a task is: a search space, the tool that evaluates a configuration, its prompt and its direction."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.records import Direction
from agent.space import SearchSpace
from agent.tools.base import EvaluationTool

__all__ = ["Family", "Task", "TaskFactory", "TaskInfo"]

#: ``custom``: a task file's (a command or a Python objective) or an Optuna user's objective.
Family = Literal["toy", "tabular", "cifar", "custom"]


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
