"""Where a ``--task`` comes from: a built-in name, a name a package registers, or a task file's path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.errors import UserError
from agent.space import SearchSpace

from . import builtin, cifar
from .base import Task, TaskCommand, TaskFlags, TaskInfo
from .plugins import build_plugin_task, plugin_info, plugin_tasks
from .taskfile import TASK_FILE_SUFFIXES, is_task_file, load_task_file

__all__ = ["BUILTIN", "TASK_GROUPS", "build_task", "list_tasks", "resolve_tasks", "task_commands", "task_flags"]

#: name -> (what the listing shows, the factory).
BUILTIN = {**builtin.BUILTIN, **cifar.TASKS}
#: Groups accepted wherever a list of tasks is (``bench --tasks hpobench,toy``).
TASK_GROUPS: dict[str, list[str]] = {
    group: [n for n in BUILTIN if n.startswith(f"{group}-")]
    for group in ("toy", "hpobench", "nb201", "hpolib", "curves", "cifar")
}


def task_flags() -> list[TaskFlags]:
    """The flags task families add to a study's command line."""
    return [cifar.FLAGS]


def task_commands() -> list[TaskCommand]:
    """The commands task families add to ``python -m agent``."""
    return list(cifar.COMMANDS)


def list_tasks() -> list[TaskInfo]:
    """The built-in tasks, then those installed packages register."""
    builtin = [info for info, _ in BUILTIN.values()]
    return builtin + [plugin_info(ep) for ep in plugin_tasks(taken=BUILTIN).values()]


def build_task(
    name: str, seed: int = 0, space: SearchSpace | None = None, options: Mapping[str, Any] | None = None
) -> Task:
    """Build task ``name`` (or load the task file it names); ``space`` replaces its search space
    (``--search_space``); ``options`` are the values of the flags tasks add (:func:`task_flags`)."""
    if is_task_file(name):
        return load_task_file(name, space=space)
    if name in BUILTIN:
        _, factory = BUILTIN[name]
        return factory(seed, space, options or {})
    plugins = plugin_tasks(taken=BUILTIN)
    if name in plugins:
        return build_plugin_task(plugins[name], seed, space)
    suffixes = ", ".join(TASK_FILE_SUFFIXES)
    raise UserError(
        f"unknown task {name!r} (--task): give a task file ({suffixes}) or a task name; "
        "`python -m agent tasks` lists them: " + ", ".join(sorted([*BUILTIN, *plugins]))
    )


def resolve_tasks(text: str) -> tuple[str, ...]:
    """Comma-separated task names and groups (``hpobench``, ``toy``, ``nb201``, ``hpolib``, ``curves``), in order,
    without repeats."""
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
