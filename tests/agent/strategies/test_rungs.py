"""Tests for agent/strategies/rungs.py: the highest rung with enough trials, as records a surrogate fits."""

from __future__ import annotations

from agent.records import TrialRecord
from agent.strategies.rungs import highest_rung


def _stopped(number: int, curve: dict[int, float]) -> TrialRecord:
    return TrialRecord(number=number, config={"x": number}, state="pruned", curve=curve)


def test_few_complete_trials_fit_the_highest_rung_that_enough_trials_reached() -> None:
    records = [
        _stopped(0, {1: 0.9}),
        _stopped(1, {1: 0.8, 2: 0.7, 3: 0.6}),
        _stopped(2, {1: 0.5, 2: 0.4, 3: 0.3}),
        TrialRecord(number=3, config={"x": 3}, state="complete", value=0.1, curve={1: 0.4, 2: 0.2, 3: 0.15, 4: 0.1}),
        TrialRecord(number=4, config={"x": 4}, state="fail"),
    ]
    seen = highest_rung(records, min_points=3)
    assert [(r.number, r.state, r.value) for r in seen] == [
        (1, "complete", 0.6),
        (2, "complete", 0.3),
        (3, "complete", 0.15),
        (4, "fail", None),
    ]
    assert [r.number for r in highest_rung(records, min_points=4)] == [0, 1, 2, 3, 4]  # rung 1: every trial
    assert highest_rung(records, min_points=5) == records  # no rung has 5: nothing changes


def test_enough_complete_trials_or_no_curves_leave_the_records_as_they_are() -> None:
    complete = [TrialRecord(number=n, config={"x": n}, state="complete", value=n, curve={1: n}) for n in range(3)]
    records = [*complete, _stopped(3, {1: 0.5})]
    assert highest_rung(records, min_points=3) == records
    plain = [TrialRecord(number=0, config={"x": 0}, state="pruned")]
    assert highest_rung(plain, min_points=1) == plain
