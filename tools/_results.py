"""A user's training result as a trial result: a number, or a mapping holding the task's metric."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from evaluators.base import EvalResult

__all__ = ["number_or_none", "result_from", "scalar_metrics"]


def number_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a real number (numpy's included, bool not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def scalar_metrics(values: Mapping[str, Any], leave_out: str = "") -> dict[str, float | int | str]:
    """What a trial can store of ``values``: numbers, strings and booleans; nested values are left out."""
    out: dict[str, float | int | str] = {}
    for key, value in values.items():
        if key == leave_out:
            continue
        if isinstance(value, bool | int | str):
            out[str(key)] = value
        elif (number := number_or_none(value)) is not None:
            out[str(key)] = number
    return out


def result_from(returned: Any, metric: str, who: str) -> EvalResult:
    """A complete result when ``returned`` is a finite number, or a mapping whose ``metric`` is one (its other
    keys become the trial's metrics); otherwise a failed result saying what ``who`` gave instead."""
    metrics: dict[str, float | int | str] = {}
    raw = returned
    if isinstance(returned, Mapping):
        if metric not in returned:
            keys = ", ".join(repr(str(k)) for k in list(returned)[:10]) or "none"
            return EvalResult.failed(f"{who} no {metric!r} (its keys: {keys})")
        raw = returned[metric]
        metrics = scalar_metrics(returned, leave_out=metric)
    value = number_or_none(raw)
    if value is None:
        return EvalResult.failed(f"{who} {metric} = {raw!r:.80}: not a number")
    if not math.isfinite(value):
        return EvalResult.failed(f"{who} {metric} = {value}: not a finite number")
    return EvalResult(value=value, metrics=metrics)
