"""``read_history``: the best or the last trials so far. Informs the model; consumes no budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.records import Direction, TrialRecord, format_trial

from .base import InfoTool, validate_with_model

__all__ = ["ReadHistory", "ReadHistoryArgs"]


class ReadHistoryArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    which: Literal["best", "last"] = Field(description="the best trials by value, or the most recent ones")
    n: int = Field(ge=1, le=20, description="how many trials")


class ReadHistory(InfoTool):
    name = "read_history"
    description = "Show the best or the last n finished trials with their results. Does not use the evaluation budget."

    def __init__(self, history: Callable[[], Sequence[TrialRecord]], direction: Direction = "minimize") -> None:
        self._history = history
        self._sign = -1.0 if direction == "maximize" else 1.0

    def arguments_schema(self) -> dict[str, Any]:
        return ReadHistoryArgs.model_json_schema()

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        return validate_with_model(ReadHistoryArgs, arguments)

    def example_arguments(self) -> dict[str, Any]:
        return {"which": "best", "n": 3}

    async def __call__(self, arguments: dict[str, Any]) -> str:
        args = ReadHistoryArgs.model_validate(arguments)
        finished = [r for r in self._history() if r.finished]
        if not finished:
            return "No trial has finished yet."
        if args.which == "best":
            done = sorted(
                (r for r in finished if r.value is not None), key=lambda r: (self._sign * (r.value or 0.0), r.number)
            )
            if not done:
                return f"No trial has completed yet ({len(finished)} finished without a value):\n" + "\n".join(
                    format_trial(r) for r in finished[-args.n :]
                )
            chosen = done[: args.n]
            title = f"The best {len(chosen)} of {len(finished)} finished trials:"
        else:
            chosen = finished[-args.n :]
            title = f"The last {len(chosen)} of {len(finished)} finished trials:"
        return "\n".join([title, *(format_trial(r) for r in chosen)])
