"""What a model learns from trials a scheduler stopped early, BOHB-style: the values at the highest step (rung)
that enough trials reached.

A trial stopped at step 3 has no final value, so a surrogate fit on final values ignores it. With few complete
trials (most are stopped early by successive halving), BOHB (Falkner et al., 2018) fits its model on the
highest budget with enough observations instead. :func:`highest_rung` gives those observations as records:
every trial that reported at that step, with its value there; failures as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.records import TrialRecord

__all__ = ["highest_rung"]


def highest_rung(records: Sequence[TrialRecord], min_points: int) -> list[TrialRecord]:
    """``records`` as a surrogate should see them: unchanged when no trial reported steps or enough trials
    finished complete; else, at the highest step at least ``min_points`` trials reached, each of those trials
    as complete with its value at that step (failures kept; trials that stopped below it left out)."""
    complete = [r for r in records if r.state == "complete"]
    curves = [r for r in records if r.curve and r.state in ("complete", "pruned")]
    if not curves or len(complete) >= min_points:
        return list(records)
    reached: dict[int, int] = {}
    for r in curves:
        for step in r.curve:
            reached[step] = reached.get(step, 0) + 1
    enough = [step for step, n in reached.items() if n >= min_points]
    if not enough:
        return list(records)
    rung = max(enough)
    out = [r for r in records if r.state == "fail"]
    out += [r.model_copy(update={"state": "complete", "value": r.curve[rung]}) for r in curves if rung in r.curve]
    return sorted(out, key=lambda r: r.number)
