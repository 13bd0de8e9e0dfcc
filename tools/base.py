"""What the model may call: a name, a description, an argument schema and an async call.

Two kinds: an :class:`EvaluationTool` runs one trial of the objective (it consumes budget and the study
records it); any other :class:`Tool` (``read_history``) only informs the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from agent.errors import InvalidSuggestion
from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult

__all__ = ["EvaluationTool", "Tool", "validate_with_model"]


class Tool(ABC):
    """A tool the model may call; not an evaluation."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def arguments_schema(self) -> dict[str, Any]:
        """JSON schema of the ``arguments`` object."""

    @abstractmethod
    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """Canonical arguments, or :class:`InvalidSuggestion` with per-field errors."""

    @abstractmethod
    async def __call__(self, arguments: dict[str, Any]) -> str:
        """Run the tool; the text goes back to the model."""


class EvaluationTool(ABC):
    """A tool whose call is one trial: its arguments are a configuration of ``space``."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def arguments_schema(self) -> dict[str, Any]:
        return self.space.json_schema()

    def validate_arguments(self, arguments: Any) -> dict[str, Choice]:
        return self.space.validate_config(arguments)

    @abstractmethod
    async def evaluate(self, config: dict[str, Choice]) -> EvalResult:
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
