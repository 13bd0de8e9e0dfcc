"""Tests for agent/display/bench.py: a bench's studies, one line each."""

from __future__ import annotations

import io
import re

from rich.console import Console

from agent.display import BenchDisplay
from agent.records import TrialRecord

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=160, color_system=None), out


def rec(number: int, value: float) -> TrialRecord:
    return TrialRecord(number=number, config={}, state="complete", value=value)


def run_two_studies(display: BenchDisplay) -> None:
    for name, values in (("toy-branin/random/seed0", (3.0, 1.5)), ("toy-branin/tpe/seed0", (2.0, 2.5))):
        reporter = display.study(name)
        reporter.started(study=name, budget=2, done=0)
        best = None
        for number, value in enumerate(values):
            record = rec(number, value)
            best = record if best is None or value < (best.value or 0) else best
            reporter.trial_finished(record, best)
        display.done(name, best.value if best else None, 1.25)


def test_plain_lines_one_per_study_and_a_heartbeat_for_long_ones() -> None:
    con, out = console(terminal=False)
    with BenchDisplay(2, console=con, plain_interval_s=3600) as display:
        run_two_studies(display)
    assert out.getvalue().splitlines() == [
        "[1/2] toy-branin/random/seed0: best 1.5 (1.2 s)",
        "[2/2] toy-branin/tpe/seed0: best 2 (1.2 s)",
    ]
    con, out = console(terminal=False)
    with BenchDisplay(2, console=con, plain_interval_s=0.0) as display:
        run_two_studies(display)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  toy-branin/random/seed0: trial 0/2, ")
    assert lines[2].startswith("  toy-branin/random/seed0: trial 2/2, best 1.5, ")


def test_quiet_says_nothing() -> None:
    con, out = console(terminal=True)
    with BenchDisplay(2, console=con, quiet=True) as display:
        run_two_studies(display)
    assert out.getvalue() == ""


def test_terminal_shows_running_studies_in_place() -> None:
    con, out = console(terminal=True)
    with BenchDisplay(2, console=con) as display:
        reporter = display.study("toy-branin/random/seed0")
        reporter.started(study="x", budget=30, done=0)
        reporter.trial_finished(rec(0, 3.0), rec(0, 3.0))
        assert display._live is not None
        display._live.refresh()
        display.done("toy-branin/random/seed0", 3.0, 2.0)
    text = ANSI.sub("", out.getvalue())
    assert "toy-branin/random/seed0: trial 1/30, best 3, " in text
    assert re.search(r"bench: 0/2 studies, \d+s elapsed", text)
    assert "[1/2] toy-branin/random/seed0: best 3 (2.0 s)" in text
