"""Tasks: what a study tunes. Built in (toy functions, tabular benchmarks, CIFAR-10), registered by packages
(entry-point group ``llm_hpo.tasks``), or described by the user's task file (``--task PATH``).

- :mod:`agent.tasks.base`: :class:`Task`, :class:`TaskInfo`, the :class:`TaskFactory` a package registers;
- :mod:`agent.tasks.builtin`: the built-in toy and tabular tasks; :mod:`agent.tasks.cifar`: CIFAR-10 training,
  its flags, its ``train`` command and its test-set evaluation after the study;
- :mod:`agent.tasks.taskfile`: task files (a command or a Python objective, its space, metric, direction);
- :mod:`agent.tasks.plugins`: tasks of installed packages;
- :mod:`agent.tasks.registry`: ``--task`` to a task, whichever of these it names.
"""

from .base import (
    AfterStudy,
    DurationHint,
    Family,
    ProgressLines,
    Task,
    TaskBrief,
    TaskCommand,
    TaskFactory,
    TaskFlags,
    TaskInfo,
)
from .cifar import CIFAR_SPACE
from .plugins import ENTRY_POINT_GROUP
from .registry import TASK_GROUPS, build_task, list_tasks, resolve_tasks, task_commands, task_flags
from .taskfile import TASK_FILE_SUFFIXES, is_task_file, load_task_file

__all__ = [
    "AfterStudy",
    "CIFAR_SPACE",
    "DurationHint",
    "ProgressLines",
    "TaskBrief",
    "TaskCommand",
    "TaskFlags",
    "task_commands",
    "task_flags",
    "ENTRY_POINT_GROUP",
    "TASK_FILE_SUFFIXES",
    "TASK_GROUPS",
    "Family",
    "Task",
    "TaskFactory",
    "TaskInfo",
    "build_task",
    "is_task_file",
    "list_tasks",
    "load_task_file",
    "resolve_tasks",
]
