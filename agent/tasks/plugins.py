"""Tasks that installed packages register under the entry-point group ``llm_hpo.tasks``.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."llm_hpo.tasks"]
    my-task = "my_package.tasks:my_task"

and ``my_task`` is a :class:`~agent.tasks.base.TaskFactory`: called as ``my_task(seed=..., space=...)`` it
returns a :class:`~agent.tasks.base.Task` or the path of a task file. ``python -m agent tasks`` lists it and
``--task my-task`` runs it; the task takes the entry point's name. A built-in task of the same name wins.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from importlib.metadata import EntryPoint

from agent._plugins import Plugin, registered
from agent.errors import AgentError, UserError
from agent.space import SearchSpace

from .base import Task, TaskInfo
from .taskfile import load_task_file

__all__ = ["ENTRY_POINT_GROUP", "build_plugin_task", "plugin_tasks", "plugin_info"]

ENTRY_POINT_GROUP = "llm_hpo.tasks"


def plugin_tasks(taken: Collection[str] = ()) -> dict[str, EntryPoint]:
    """The registered tasks by name (names in ``taken`` and later repeats of a name left out)."""
    return registered(ENTRY_POINT_GROUP, taken)


def plugin_info(ep: EntryPoint) -> TaskInfo:
    """How the listing shows a registered task: its factory's first docstring line and its package."""
    plugin = Plugin.load(ep, ENTRY_POINT_GROUP)
    if plugin.factory is None:
        return TaskInfo(ep.name, "plugin", f"{plugin.summary}; from {plugin.package}")
    return TaskInfo(ep.name, "plugin", f"{plugin.summary} (from {plugin.package})")


def build_plugin_task(ep: EntryPoint, seed: int, space: SearchSpace | None) -> Task:
    """Call the registered factory; whatever goes wrong is one error naming the entry point."""
    where = f"task {ep.name!r} ({ep.value}, entry point group {ENTRY_POINT_GROUP})"
    try:
        factory = ep.load()
    except Exception as exc:
        raise UserError(f"{where}: cannot load it: {type(exc).__name__}: {exc}") from exc
    try:
        made = factory(seed=seed, space=space)
    except AgentError:
        raise
    except Exception as exc:
        raise UserError(f"{where}: its factory raised {type(exc).__name__}: {exc}") from exc
    if isinstance(made, str | os.PathLike):
        made = load_task_file(made, space=space)
    if not isinstance(made, Task):
        raise UserError(f"{where}: its factory returned a {type(made).__name__}, not a Task or a task file's path")
    return dataclasses.replace(made, name=ep.name)
