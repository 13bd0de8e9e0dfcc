"""``read_history``: the best or the last trials so far. Informs the model; consumes no budget."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.records import TrialRecord

from .base import Tool, validate_with_model

__all__ = ["ReadHistory", "ReadHistoryArgs", "compact_config", "format_trial"]


class ReadHistoryArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    which: Literal["best", "last"] = Field(description="the best trials by value, or the most recent ones")
    n: int = Field(ge=1, le=20, description="how many trials")


class ReadHistory(Tool):
    name: ClassVar[str] = "read_history"
    description: ClassVar[str] = (
        "Show the best or the last n finished trials with their results. Does not use the evaluation budget."
    )

    def __init__(self, history: Callable[[], Sequence[TrialRecord]]) -> None:
        self._history = history

    def arguments_schema(self) -> dict[str, Any]:
        return ReadHistoryArgs.model_json_schema()

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        return validate_with_model(ReadHistoryArgs, arguments)

    async def __call__(self, arguments: dict[str, Any]) -> str:
        args = ReadHistoryArgs.model_validate(arguments)
        finished = [r for r in self._history() if r.finished]
        if not finished:
            return "No trial has finished yet."
        if args.which == "best":
            done = sorted((r for r in finished if r.value is not None), key=lambda r: (r.value, r.number))
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


def compact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Floats to 6 significant digits: what a reader (or a model) needs, at a third of the tokens."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in config.items()}


def format_trial(record: TrialRecord) -> str:
    """One line: number, configuration, outcome."""
    config = json.dumps(compact_config(record.config), separators=(", ", ": "))
    if record.state == "complete":
        outcome = f"value {record.value:.6g}"
    elif record.state == "pruned":
        outcome = f"pruned (stopped early){'' if record.value is None else f' at {record.value:.6g}'}"
    else:
        outcome = f"failed: {record.error or 'unknown reason'}"
    note = " (a random configuration: your answers were invalid)" if record.source == "fallback" else ""
    return f"trial {record.number}{note}: {config} -> {outcome}"
