"""What every evaluator returns. Evaluators know nothing of LLMs, tools or studies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["EvalResult", "TrialFailed"]

EvalState = Literal["complete", "fail", "pruned"]


class TrialFailed(Exception):
    """Raised by an evaluator for a run that failed in a known way (NaN loss, out of memory, ...).

    The study records the trial as FAIL with this message, shows it to the model, and goes on.
    """


@dataclass(frozen=True)
class EvalResult:
    """One evaluation: the objective ``value`` (an error, minimized) and whatever else was measured."""

    value: float | None
    state: EvalState = "complete"
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.state == "complete" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(f"a complete evaluation needs a finite value, got {self.value!r}")

    @classmethod
    def failed(cls, reason: str, **metrics: float | int | str) -> EvalResult:
        return cls(value=None, state="fail", metrics=dict(metrics), error=reason)
