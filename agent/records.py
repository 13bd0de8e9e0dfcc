"""What a strategy, the memory and the tools see of one trial: plain data, no Optuna objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ProposalSource", "TrialRecord", "TrialState"]

TrialState = Literal["complete", "fail", "pruned", "running"]
ProposalSource = Literal["llm", "fallback", "sampler", "surrogate", "resumed"]


class TrialRecord(BaseModel):
    """One trial as the agent knows it."""

    model_config = ConfigDict(frozen=True)

    number: int
    config: dict[str, Any]
    state: TrialState
    value: float | None = None
    metrics: dict[str, Any] = {}
    error: str | None = None
    source: ProposalSource = "sampler"

    @property
    def finished(self) -> bool:
        return self.state != "running"
