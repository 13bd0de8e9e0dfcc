"""What every evaluator returns. Evaluators know nothing of LLMs, tools or studies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["EvalResult", "Progress", "SetupError", "TrialFailed"]

EvalState = Literal["complete", "fail", "pruned"]


class SetupError(Exception):
    """Raised by an evaluator for a problem that is not the configuration's fault and would fail every trial
    the same way (data missing or too small for the split asked for). The study stops at once instead of
    recording a failed trial per evaluation; the message says what to fix."""


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
    #: The evaluation's recorded compute in seconds where it is not the machine's time (a replayed table's
    #: recorded training time); None: the seconds it took here count.
    cost_s: float | None = None

    def __post_init__(self) -> None:
        if self.state == "complete" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(f"a complete evaluation needs a finite value, got {self.value!r}")

    @classmethod
    def failed(cls, reason: str, **metrics: float | int | str) -> EvalResult:
        return cls(value=None, state="fail", metrics=dict(metrics), error=reason)


@dataclass(frozen=True)
class Progress:
    """Where a running evaluation is, for a display: ``done`` of ``total`` units (epochs, steps), with what it
    measured so far (``loss``, ``val_error``, ``images_per_s``...) and the seconds since it started.

    A report at a whole ``done`` marks the end of a unit (an epoch) with what was measured then; reports within
    a unit have a fractional ``done``. A ``step`` (a line a training program printed) is a unit too, but a
    program may print thousands: a display shows them at a steady pace. ``headline``: the metric to show first
    (the value a study reads). Evaluators send it through a plain callback and know nothing of displays.
    """

    done: float
    total: float | None
    elapsed_s: float
    unit: str = "epoch"
    metrics: dict[str, float] = field(default_factory=dict)
    headline: str | None = None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far, or None before any unit is done."""
        if self.total is None or self.done <= 0:
            return None
        return self.elapsed_s * max(self.total - self.done, 0.0) / self.done
