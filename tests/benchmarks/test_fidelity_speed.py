"""Tests for benchmarks/fidelity_speed.py: the study it times is scheduled as ASHA schedules one, and the script
times a proposal with and without the cap."""

from __future__ import annotations

import sys

import pytest

import agent.strategies.fidelity as fidelity
from benchmarks import fidelity_speed as fs


def test_the_study_timed_stops_its_trials_where_asha_would_in_proportion() -> None:
    records = fs.scheduled_study(900, seed=0)
    stops = [max(r.curve) for r in records]
    assert {s: stops.count(s) for s in (3, 9, 27)} == pytest.approx({3: 600, 9: 200, 27: 100}, rel=0.15)
    assert all((r.state == "complete") == (max(r.curve) == fs.LAST) for r in records)


def test_the_script_times_a_proposal_with_and_without_the_cap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fidelity, "MAX_POINTS", 40)
    monkeypatch.setattr(sys, "argv", ["fidelity_speed.py", "--trials", "60", "--repeats", "1"])
    fs.main()
    out = capsys.readouterr().out
    assert "cap: 40 points" in out
    row = next(line for line in out.splitlines() if line.startswith("| 60 |"))
    points, uncapped, capped, ratio = (float(c) for c in row.strip("| ").split(" | ")[1:])
    assert points > 40 and uncapped > 0 and capped > 0 and ratio > 0
    assert fidelity.MAX_POINTS == 40  # the script puts the cap back as it found it
