"""What the model may call: one base class, :class:`Tool` (a name, a description, an argument schema and the
validation of its arguments), and the kinds of call a study knows:

- :class:`InfoTool` informs the model and uses no budget (``read_history``): the loop runs it and shows the
  model what it returns;
- :class:`ConfigTool` names a configuration of its ``space``: one trial of the budget. Its validated
  arguments *are* the configuration, checked once, where the model's text becomes data. A plain
  ``ConfigTool`` is the model's view of an evaluation that someone else runs (an Optuna objective; a
  task's tool seen with its grids as ranges); ``take`` selects one of the optimizer's candidates;
- :class:`EvaluationTool` is a ``ConfigTool`` that also evaluates: the task's own tool, run by the study's
  executor, never by the loop.

An evaluation gets a :class:`TrialContext`: the trial's number and folder, ``report(step, value) -> stop``
for intermediate values (the study's pruner answers), and ``progress(Progress)`` for the display. Tools
that cannot use them ignore them; an executor running a tool in another process drops ``progress`` and keeps
``report`` when it can cross processes (a study's reporter over a storage with a URL: :mod:`agent.study.reporting`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from agent.errors import InvalidSuggestion
from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult, Progress

__all__ = ["NO_TRIAL", "ConfigTool", "EvaluationTool", "InfoTool", "Tool", "TrialContext", "validate_with_model"]


@dataclass(frozen=True)
class TrialContext:
    """What an evaluation may use of its trial."""

    number: int | None = None
    #: A folder of the trial's own under the study's save_dir (created by the runner), or None.
    directory: Path | None = None
    #: ``report(step, value) -> should_stop``: an intermediate value; True when the study's pruner stops it.
    report: Callable[[int, float], bool] | None = None
    #: Where the evaluation is (epochs, loss, speed), for the display.
    progress: Callable[[Progress], None] | None = None

    @property
    def crosses_processes(self) -> bool:
        """Can ``report`` be pickled to another process (it says so: ``crosses_processes = True``)?"""
        return bool(getattr(self.report, "crosses_processes", False))

    def detached(self) -> TrialContext:
        """The context for an evaluation in another process: no progress callback, and ``report`` only when it
        crosses processes."""
        return dataclasses.replace(self, report=self.report if self.crosses_processes else None, progress=None)


NO_TRIAL = TrialContext()


class Tool(ABC):
    """A tool the model may call: ``{"tool": name, "arguments": {...}}``."""

    name: str
    description: str

    @abstractmethod
    def arguments_schema(self) -> dict[str, Any]:
        """JSON schema of the ``arguments`` object (sent to providers that constrain decoding)."""

    @abstractmethod
    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """Canonical arguments, or :class:`InvalidSuggestion` with per-field errors (the reask shows them)."""

    def example_arguments(self) -> dict[str, Any] | None:
        """Arguments shown to the model as an example call (the system prompt); None: placeholders for the
        configuration's parameters."""
        return {}


class InfoTool(Tool):
    """Informs the model; uses no budget. The loop runs it and the text goes back to the model."""

    @abstractmethod
    async def __call__(self, arguments: dict[str, Any]) -> str:
        """Run the tool on validated ``arguments``."""


class ConfigTool(Tool):
    """A call names one configuration of ``space``: a trial of the budget. Its validated arguments are the
    configuration. ``name`` and ``description`` default to the class's."""

    name = "evaluate"
    description = "Evaluate the objective with this configuration; returns its value."

    def __init__(self, space: SearchSpace, *, name: str | None = None, description: str | None = None) -> None:
        self.space = space
        if name is not None:
            self.name = name
        if description is not None:
            self.description = description

    def arguments_schema(self) -> dict[str, Any]:
        return self.space.json_schema()

    def validate_arguments(self, arguments: Any) -> dict[str, Choice]:
        """The model's answer as data, checked against the space the model was shown: parsing, where a wrong
        answer is reasked. It is not the study's door (:mod:`agent.study.door`), which admits a configuration,
        whoever proposed it, against the task's space before it is claimed."""
        return self.space.validate_config(arguments)

    def example_arguments(self) -> dict[str, Any] | None:
        return None

    def seen_as(self, space: SearchSpace) -> ConfigTool:
        """The tool as a model sees it over another ``space`` (its grids shown as ranges): same name and
        description, nothing that evaluates."""
        return ConfigTool(space, name=self.name, description=self.description)


class EvaluationTool(ConfigTool):
    """A configuration tool that evaluates its configuration: the task's own tool."""

    #: Parallel trials of this tool on one machine run in worker processes (it holds the GIL for long).
    runs_in_subprocess: ClassVar[bool] = False
    #: Each trial gets a folder of its own (:attr:`TrialContext.directory`).
    needs_directory: ClassVar[bool] = False
    #: The step of the last intermediate value a trial that runs to its end reports (``TrialContext.report``:
    #: epochs, a task file's steps); None: this tool reports no steps, so no scheduler can stop its trials.
    max_step: int | None = None
    #: The first step at which a scheduler may stop a trial (its smallest rung).
    min_step: int = 1

    def check_setup(self) -> None:  # noqa: B027 (optional hook: most tools need nothing)
        """Check, cheaply and before any trial, what would fail every trial the same way (data missing or too
        small); raise :class:`~evaluators.base.SetupError` naming what to fix. Default: nothing to check."""

    @abstractmethod
    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        """Evaluate a validated configuration. Known failures come back as a failed result, not raised."""


def validate_with_model(model: type[BaseModel], arguments: Any) -> dict[str, Any]:
    """Validate with a pydantic model, turning its errors into :class:`InvalidSuggestion`."""
    try:
        return model.model_validate(arguments).model_dump()
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "input": _short(e.get("input"))}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidSuggestion(f"invalid arguments: {errors}", errors) from exc


def _short(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | bool) else repr(value)[:80]
