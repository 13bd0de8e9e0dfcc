"""Task files: the user's own training as a task (``--task PATH``), in YAML or JSON.

.. code-block:: yaml

    description: Tune a small MLP on my data; the value is the validation error.
    space:                          # the format --search_space reads
      learning_rate: {type: float, low: 1.0e-5, high: 0.1, log: true}
      batch_size: {type: categorical, choices: [32, 64, 128]}
    metric: val_error               # the key holding the value
    direction: minimize             # or maximize (default: minimize)
    command: python train.py --lr {learning_rate} --batch-size {batch_size}   # or:
    objective: train:objective      # exactly one of command and objective
    timeout: 3600                   # seconds per trial (optional)
    transform: log                  # the warp of the values for the Gaussian process (optional):
                                    # yeo-johnson (default), log, rank or none
    steps: 27                       # the last step a full run reports (optional: early stopping, on by default)
    min_steps: 1                    # the first step at which a run may be stopped (optional; default 1)

``command`` is split as a shell would split it (or given as a list) and never run through a shell; its
``{name}`` placeholders take the configuration's values (:mod:`tools.command`). An argument naming a
file or folder next to the task file (``train.py``, ``--data=data``) is passed as its absolute path, a program
containing ``/`` is found from the task file's folder, and ``python``/``python3`` is the interpreter running
the agent. ``objective`` is ``module:function``, imported with the task file's folder on ``sys.path``
(:mod:`tools.objective`). ``steps``: the run reports intermediate values at steps up to this one (a command's
``step`` lines, an objective's yields), so the study's scheduler may stop it early (``--pruner``).

Everything is checked when the file is loaded, before any model is: an unknown or missing key, a value of the
wrong kind, a placeholder naming no parameter, a program that is not found, a module that does not import or
lacks the function, both or neither of ``command`` and ``objective``. Each is one :class:`UserError` line
naming the file and the key. The task is named after the file's stem (the study's default name and folder).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from agent.errors import UserError
from agent.records import TRANSFORMS, Direction, Transform
from agent.space import SearchSpace
from tools.base import EvaluationTool
from tools.command import PLACEHOLDER, RunCommand
from tools.objective import CallObjective

from .base import Task

__all__ = ["KEYS", "TASK_FILE_SUFFIXES", "is_task_file", "load_task_file"]

KEYS = (
    "description",
    "space",
    "metric",
    "direction",
    "command",
    "objective",
    "timeout",
    "transform",
    "steps",
    "min_steps",
)
TASK_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_PYTHONS = ("python", "python3")


def is_task_file(task: str | os.PathLike[str]) -> bool:
    """Does ``--task`` name a task file (by its suffix) rather than a registered task?"""
    return Path(task).suffix.lower() in TASK_FILE_SUFFIXES


def load_task_file(path: str | os.PathLike[str], space: SearchSpace | None = None) -> Task:
    """The task a file describes; ``space`` replaces the file's search space (``--search_space``)."""
    return _Loader(Path(path)).load(space)


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.resolve().parent

    def fail(self, message: str, key: str | None = None) -> NoReturn:
        one_line = " / ".join(line.strip() for line in message.splitlines() if line.strip())
        raise UserError(f"task file {self.path}: {key + ': ' if key else ''}{one_line}")

    def load(self, override: SearchSpace | None) -> Task:
        data = self._read()
        unknown = [k for k in data if k not in KEYS]
        if unknown:
            self.fail(f"unknown key; a task file holds {', '.join(KEYS)}", unknown[0])
        description = self._text(data, "description")
        space = override or self._space(data)
        metric = self._text(data, "metric")
        if metric == "step":
            self.fail("'step' marks intermediate values; name the key holding the value", "metric")
        direction = self._direction(data.get("direction", "minimize"))
        timeout = self._timeout(data.get("timeout"))
        transform = self._transform(data.get("transform"))
        if ("command" in data) == ("objective" in data):
            both = "both" if "command" in data else "neither"
            self.fail(f"give exactly one of command and objective, not {both}", "command")
        tool: EvaluationTool
        if "command" in data:
            tool = self._command(data["command"], space, metric, timeout)
        else:
            tool = self._objective(data["objective"], space, metric, timeout)
        tool.max_step = self._steps(data.get("steps"), "steps")
        tool.min_step = self._steps(data.get("min_steps"), "min_steps") or 1
        if tool.max_step is not None and tool.min_step > tool.max_step:
            self.fail(f"must be at most steps ({tool.max_step}), got {tool.min_step}", "min_steps")
        return Task(
            name=self.path.stem,
            family="custom",
            description=f"{description.strip()}\nThe value of each run is its {metric!r}.",
            space=space,
            template="task_custom",
            tool=tool,
            direction=direction,
            metric=metric,
            transform=transform,
        )

    def _read(self) -> Mapping[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.fail(f"cannot read it ({reason}); --task takes a task name or a task file")
        try:
            data = json.loads(text) if self.path.suffix.lower() == ".json" else yaml.safe_load(text)
        except json.JSONDecodeError as exc:
            self.fail(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            self.fail(f"not valid YAML ({where}{getattr(exc, 'problem', None) or exc})")
        if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
            self.fail(f"must hold a mapping with the keys {', '.join(KEYS)}")
        return data

    def _text(self, data: Mapping[str, Any], key: str) -> str:
        value = data.get(key)
        if value is None:
            self.fail("missing", key)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"must be a non-empty string, got {value!r:.60}", key)
        return value

    def _space(self, data: Mapping[str, Any]) -> SearchSpace:
        if "space" not in data:
            self.fail("missing (the parameters to tune, in the format --search_space reads)", "space")
        if not isinstance(data["space"], Mapping):
            self.fail("must map each parameter's name to its definition", "space")
        return SearchSpace.from_dict(data["space"], where=f"task file {self.path}: space")

    def _direction(self, value: Any) -> Direction:
        if value == "minimize":
            return "minimize"
        if value == "maximize":
            return "maximize"
        self.fail(f"must be minimize or maximize, got {value!r:.60}", "direction")

    def _transform(self, value: Any) -> Transform | None:
        if value is None:
            return None
        for name in TRANSFORMS:
            if value == name:
                return name
        names = ", ".join(TRANSFORMS)
        self.fail(f"must be one of {names} (or left out for the default), got {value!r:.60}", "transform")

    def _timeout(self, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            self.fail(f"must be a positive number of seconds, got {value!r:.60}", "timeout")
        return float(value)

    def _steps(self, value: Any, key: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(f"must be a positive whole number of steps, got {value!r:.60}", key)
        return value

    def _command(self, value: Any, space: SearchSpace, metric: str, timeout: float | None) -> RunCommand:
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                self.fail(f"cannot be split into arguments ({exc})", "command")
        elif isinstance(value, list) and all(isinstance(a, str) for a in value):
            argv = list(value)
        else:
            self.fail("must be a string (split as a shell would) or a list of strings", "command")
        if not argv:
            self.fail("is empty", "command")
        argv = self._resolve(argv)
        try:
            return RunCommand(space, argv, metric, timeout)
        except ValueError as exc:
            self.fail(str(exc), "command")

    def _objective(self, value: Any, space: SearchSpace, metric: str, timeout: float | None) -> CallObjective:
        if not isinstance(value, str):
            self.fail(f"must be a string module:function, got {value!r:.60}", "objective")
        tool = CallObjective(space, value.strip(), metric, self.folder, timeout)
        try:
            tool.load()
        except ValueError as exc:
            self.fail(str(exc), "objective")
        return tool

    def _resolve(self, argv: list[str]) -> list[str]:
        """Paths next to the task file become absolute (trials run in folders of their own); the program
        must exist."""
        program, *args = argv
        if not PLACEHOLDER.search(program):
            if program in _PYTHONS:
                program = sys.executable
            elif "/" in program:
                program = str(self.folder / program)
                if not os.access(program, os.X_OK) or not Path(program).is_file():
                    self.fail(f"program {argv[0]!r} is not an executable file (relative to the task file)", "command")
            elif shutil.which(program) is None:
                self.fail(f"program {program!r} is not found on PATH", "command")
        return [program, *(self._resolve_argument(a) for a in args)]

    def _resolve_argument(self, token: str) -> str:
        if PLACEHOLDER.search(token):
            return token
        prefix, value = "", token
        if token.startswith("-"):
            option, eq, value = token.partition("=")
            if not eq:
                return token
            prefix = option + eq
        if value and not os.path.isabs(value) and (self.folder / value).exists():
            return prefix + str(self.folder / value)
        return token
