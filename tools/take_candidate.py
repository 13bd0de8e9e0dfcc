"""``take``: choose one of the optimizer's candidates (the ``hybrid`` strategy shows them to the model).

A configuration tool whose arguments name a candidate instead of spelling a configuration: ``{"candidate": 2}``
is the second candidate of the round. A dozen tokens of answer instead of a whole configuration, which
matters when a small local model writes some twenty tokens a second. It selects; the task's own tool
evaluates what it selects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.errors import InvalidSuggestion
from agent.space import Choice, SearchSpace

from .base import ConfigTool

__all__ = ["TakeCandidate"]


class TakeCandidate(ConfigTool):
    """Names one of the ``k`` candidates of the current round (:meth:`offer` sets them)."""

    name = "take"
    description = (
        "Evaluate one of the optimizer's candidates listed in the round, by its number. Uses one trial of the budget."
    )

    def __init__(self, space: SearchSpace, k: int) -> None:
        super().__init__(space)
        self.k = k
        self._offered: list[dict[str, Choice]] = []

    def offer(self, candidates: Sequence[dict[str, Choice]]) -> None:
        """The candidates of this round, in the order the model was shown them (numbered from 1)."""
        self._offered = [dict(c) for c in candidates[: self.k]]

    def arguments_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"candidate": {"type": "integer", "minimum": 1, "maximum": self.k}},
            "required": ["candidate"],
            "additionalProperties": False,
        }

    def validate_arguments(self, arguments: Any) -> dict[str, Choice]:
        """The named candidate's configuration."""
        choice = arguments.get("candidate") if isinstance(arguments, dict) else None
        extra = sorted(set(arguments) - {"candidate"}) if isinstance(arguments, dict) else []
        valid = isinstance(choice, int) and not isinstance(choice, bool) and 1 <= choice <= len(self._offered)
        if extra or not valid:
            shown = len(self._offered)
            msg = f"name a candidate shown this round, 1 to {shown}" if shown else "no candidate is offered now"
            if extra:
                msg = f"unexpected {extra}; the arguments are exactly {{'candidate': <number>}}"
            raise InvalidSuggestion(msg, [{"loc": ["candidate"], "msg": msg, "input": choice}])
        assert isinstance(choice, int)
        return dict(self._offered[choice - 1])  # the optimizer's own configuration: valid as offered

    def example_arguments(self) -> dict[str, Any] | None:
        return {"candidate": 1}
