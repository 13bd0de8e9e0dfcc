"""Tests for agent/display/_format.py: durations, progress lines, a study's time left."""

from __future__ import annotations

import pytest

from agent.display._format import duration, is_unit_end, progress_text, study_time_left
from evaluators.base import Progress


def test_duration() -> None:
    assert [duration(s) for s in (0, 0.4, 59.6, 60, 252, 3599, 3600, 14_230, -3)] == [
        "0s",
        "0s",
        "1m00s",
        "1m00s",
        "4m12s",
        "59m59s",
        "1h00m",
        "3h57m",
        "0s",
    ]


def test_progress_within_an_epoch() -> None:
    p = Progress(1.37, 10, elapsed_s=137.0, metrics={"loss": 1.23456, "images_per_s": 612.4})
    assert not is_unit_end(p)
    assert progress_text(p) == "epoch 2/10 37%: loss 1.235, 612 img/s, ~14m23s left"


def test_progress_at_an_epoch_end_shows_the_validation_error() -> None:
    p = Progress(2, 10, elapsed_s=200.0, metrics={"loss": 0.9, "val_error": 0.31234, "images_per_s": 600.0})
    assert is_unit_end(p)
    assert progress_text(p) == "epoch 2/10: loss 0.9, val_error 0.3123, 600 img/s, ~13m20s left"
    last = Progress(10, 10, elapsed_s=1000.0, metrics={"val_error": float("nan")})
    assert progress_text(last) == "epoch 10/10: 16m40s elapsed"


def test_progress_of_other_units() -> None:
    assert progress_text(Progress(30, None, elapsed_s=5.0, unit="step")) == "step 30: 5s elapsed"


def test_a_programs_step_shows_its_metric_first_and_is_no_unit_end() -> None:
    """A program may print thousands of step lines: only the last of a known total ends a unit."""
    step = Progress(40, None, elapsed_s=12.0, unit="step", metrics={"val_r2": 0.81234, "loss": 0.3}, headline="val_r2")
    assert progress_text(step) == "step 40: val_r2 0.8123, loss 0.3, 12s elapsed"
    assert not is_unit_end(step)
    assert not is_unit_end(Progress(4, 10, elapsed_s=1.0, unit="step"))
    assert is_unit_end(Progress(10, 10, elapsed_s=1.0, unit="step"))
    assert progress_text(Progress(4, 10, elapsed_s=4.0, unit="step")) == "step 4/10: ~6s left"
    known = Progress(2, None, elapsed_s=1.0, unit="step", metrics={"loss": 0.5}, headline="loss")
    assert progress_text(known) == "step 2: loss 0.5, 1s elapsed", "a known metric is not shown twice"


@pytest.mark.parametrize(
    ("kwargs", "left"),
    [
        ({"remaining": 0, "durations": [], "running": []}, 0.0),
        ({"remaining": 5, "durations": [], "running": []}, None),  # nothing to go by yet
        ({"remaining": 5, "durations": [], "running": [(30.0, None)]}, None),
        ({"remaining": 3, "durations": [], "running": [(30.0, 70.0)]}, 70.0 + 2 * 100.0),  # its projected length
        ({"remaining": 3, "durations": [60.0, 40.0], "running": []}, 3 * 50.0),
        ({"remaining": 3, "durations": [50.0], "running": [(20.0, None)]}, 30.0 + 2 * 50.0),
        ({"remaining": 4, "durations": [50.0], "running": [], "workers": 2}, 2 * 50.0),
        ({"remaining": 5, "durations": [50.0], "running": [(10.0, 5.0), (40.0, None)], "workers": 2}, 10.0 + 2 * 50),
    ],
)
def test_study_time_left(kwargs: dict[str, object], left: float | None) -> None:
    assert study_time_left(**kwargs) == left  # type: ignore[arg-type]
