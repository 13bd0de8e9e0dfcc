"""``evaluate`` for a task file's ``objective``: a Python callable ``f(config) -> float | dict``.

``module:function`` names it; the module is imported with the task file's folder on ``sys.path``. The
function gets the configuration as a dict and returns the value, or a dict holding the task's metric and
any other metrics. A plain function runs in a worker thread (the event loop stays free; parallel trials on
one machine run in worker processes, ``runs_in_subprocess``), an ``async def`` one on the event loop. The
tool holds only names, so executors can pickle it to worker processes and Ray tasks, which import the
module themselves. What the function raises becomes a FAIL trial with the error (the study goes on), except
:class:`~evaluators.base.SetupError`, which stops the study.

Reporting steps (early stopping): make the function a generator that yields ``(step, value)`` after each
step (an epoch), ``value`` being the metric's number or a dict holding it, and returns its result as a plain
function does (or returns nothing: the last yield is the result)::

    def objective(config):
        model = build(config)
        for epoch in range(1, 28):
            val_error = train_one_epoch(model)
            yield epoch, val_error          # the study's scheduler may stop the run here
        return {"val_error": val_error, "train_loss": loss}

Each yield is reported to the study (:attr:`~tools.base.TrialContext.report`); when the scheduler stops the
trial the generator is closed at that yield (its ``finally`` blocks run) and the trial is PRUNED at the last
value. A task file's ``steps`` key says which step a full run yields last. An ``async def`` generator works
the same way. A generator's ``timeout`` also stops it at its next yield.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.to_thread

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult, SetupError, TrialFailed

from ._results import number_or_none, result_from
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
        steps = _Steps(self.metric, trial)
        with anyio.move_on_after(self.timeout) as deadline:
            if inspect.isasyncgenfunction(function):
                returned = await steps.drive_async(function(dict(config)))
            elif inspect.isgeneratorfunction(function):
                returned = await anyio.to_thread.run_sync(steps.drive, function(dict(config)), abandon_on_cancel=True)
            elif inspect.iscoroutinefunction(function):
                returned = await function(dict(config))
            else:
                returned = await anyio.to_thread.run_sync(function, dict(config), abandon_on_cancel=True)
                if inspect.isawaitable(returned):
                    returned = await returned
        if deadline.cancelled_caught:
            steps.cancelled.set()  # a generator in its thread stops at its next yield
            return EvalResult.failed(f"timed out after {self.timeout:g} s")
        if steps.stopped:
            reached: dict[str, float | int | str] = {} if steps.last_step is None else {"step": steps.last_step}
            return EvalResult(value=steps.last_value, state="pruned", metrics=reached)
        if returned is None and steps.last_yield is not None:
            returned = steps.last_yield
        return result_from(returned, self.metric, "the objective returned")


class _Steps:
    """Drives a generator objective: each ``(step, value)`` it yields reported to the trial."""

    def __init__(self, metric: str, trial: TrialContext) -> None:
        self.metric = metric
        self.trial = trial
        self.cancelled = threading.Event()
        self.stopped = False
        self.last_step: int | None = None
        self.last_value: float | None = None
        self.last_yield: Any = None

    def drive(self, generator: Generator[Any, None, Any]) -> Any:
        """Run a generator to its end (its return value) or until the trial is stopped (then None)."""
        try:
            while True:
                try:
                    item = next(generator)
                except StopIteration as stop:
                    return stop.value
                if self.cancelled.is_set() or self.take(item):
                    self.stopped = not self.cancelled.is_set()
                    return None
        finally:
            generator.close()

    async def drive_async(self, generator: AsyncGenerator[Any, None]) -> Any:
        """The same for an async generator (its result is its last yield: an async generator returns nothing)."""
        try:
            async for item in generator:
                if await anyio.to_thread.run_sync(self.take, item):  # the reporter may touch the storage: a thread
                    self.stopped = True
                    return None
            return None
        finally:
            await generator.aclose()

    def take(self, item: Any) -> bool:
        """Read one yield and report it; True when the trial must stop. A yield that is no ``(step, value)``
        pair fails the trial (:class:`~evaluators.base.TrialFailed`)."""
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TrialFailed(f"the objective yielded {item!r:.80}; yield (step, value) pairs")
        step, value = item
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise TrialFailed(f"the objective yielded step {step!r:.40}; a step is a whole number >= 0")
        self.last_yield = value
        raw = value.get(self.metric) if isinstance(value, Mapping) else value
        number = number_or_none(raw)
        reported = math.nan if number is None else number
        if number is not None and math.isfinite(number):
            self.last_step, self.last_value = step, number
        if self.trial.report is None:
            return False
        return self.trial.report(step, reported)
