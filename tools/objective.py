"""``evaluate`` for a task file's ``objective``: a Python callable ``f(config) -> float | dict``.

``module:function`` names it; the module is imported with the task file's folder on ``sys.path``. The
function gets the configuration as a dict and returns the value, or a dict holding the task's metric and
any other metrics. A plain function runs in a worker thread (the event loop stays free; parallel trials on
one machine run in worker processes, ``runs_in_subprocess``), an ``async def`` one on the event loop. The
tool holds only names, so executors can pickle it to worker processes and Ray tasks, which import the
module themselves. What the function raises becomes a FAIL trial with the error (the study goes on), except
:class:`~evaluators.base.SetupError`, which stops the study.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.to_thread

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult, SetupError

from ._results import result_from
from .base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["CallObjective", "load_callable"]

_IMPORT_LOCK = threading.Lock()


def load_callable(target: str, folder: Path | None = None) -> Callable[..., Any]:
    """The callable ``module:function`` names (``function`` may be dotted: ``Class.method``), imported with
    ``folder`` first on ``sys.path``. Raises ``ValueError`` saying what is wrong."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{target!r} is not of the form module:function")
    with _IMPORT_LOCK:
        if folder is not None and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        try:
            found: Any = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # the user's module: whatever its import raises is the file's problem
            raise ValueError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"{target!r} is a {type(found).__name__}, not a function")
    return found  # type: ignore[no-any-return]


class CallObjective(EvaluationTool):
    """Calls ``target`` once per trial and reads ``metric`` from what it returns."""

    name = "evaluate"
    description = "Run the training once with this configuration; returns the value of its metric, or why it failed."
    #: A training function holds the GIL: parallel trials on one machine run in worker processes.
    runs_in_subprocess: ClassVar[bool] = True

    def __init__(
        self, space: SearchSpace, target: str, metric: str, folder: Path | None = None, timeout: float | None = None
    ) -> None:
        super().__init__(space)
        self.target = target
        self.metric = metric
        self.folder = folder
        self.timeout = timeout
        self._function: Callable[..., Any] | None = None

    def load(self) -> Callable[..., Any]:
        """Import the callable (once per process); raises ``ValueError`` saying what is wrong."""
        if self._function is None:
            self._function = load_callable(self.target, self.folder)
        return self._function

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_function": None}  # a worker process imports the module itself

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        """Call the objective once. With a ``timeout`` the trial fails when it is reached; a plain function's
        thread cannot be stopped, so it runs on until it returns (its result is dropped)."""
        try:
            function = self.load()
        except ValueError as exc:  # imported fine when the task was loaded: this worker's environment differs
            raise SetupError(f"objective {self.target}: {exc}") from exc
        returned: Any = None
        with anyio.move_on_after(self.timeout) as deadline:
            if inspect.iscoroutinefunction(function):
                returned = await function(dict(config))
            else:
                returned = await anyio.to_thread.run_sync(function, dict(config), abandon_on_cancel=True)
                if inspect.isawaitable(returned):
                    returned = await returned
        if deadline.cancelled_caught:
            return EvalResult.failed(f"timed out after {self.timeout:g} s")
        return result_from(returned, self.metric, "the objective returned")
