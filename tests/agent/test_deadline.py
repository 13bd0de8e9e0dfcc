"""Tests for agent/deadline.py, and the time budget in a study (agent/optimize.py, agent/session.py): no trial
starts once the time is spent, a running trial stops at its next report, a resumed study has the time left.
Time moves by a clock the test holds or by recorded costs (``cost_s``), never by sleeping."""

from __future__ import annotations

import pickle
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from agent.deadline import DEADLINE, Deadline, StudyClock, parse_duration
from agent.optimize import StudyLoop
from agent.records import TrialRecord
from agent.session import StudyConfig, run_study
from agent.space import Choice
from agent.strategies.baselines import RandomStrategy
from agent.study import StudyStore
from agent.study.terms import TIME_BUDGET, TIME_USED
from agent.tasks import build_task
from evaluators.base import EvalResult
from tests.processes import read_pids, wait_gone
from tools.base import NO_TRIAL, TrialContext
from tools.command import RunCommand
from tools.evaluate_toy import EvaluateToy

TASK = build_task("toy-branin")


class Clock:
    """A wall clock the test moves (picklable, as a deadline's clock must be)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- durations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1h2m3s", 3723), ("1.5h", 5400), (" 10M ", 600)],
)
def test_a_duration_is_hours_minutes_seconds_each_with_its_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "h", "1d", "30m2h", "-5m", "0s", "1h 30", "abc", "1e3s"])
def test_a_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="90s, 30m, 2h or 1h30m"):
        parse_duration(text)


# ---- the clock and the deadline ------------------------------------------------------------------------


def test_the_clock_counts_earlier_runs_wall_time_and_recorded_costs_in_place_of_the_machines() -> None:
    clock = Clock()
    study = StudyClock(100.0, used_s=30.0, clock=clock)
    assert (study.used_s(), study.left_s(), study.spent()) == (30.0, 70.0, False)
    clock.now += 20.0  # proposing and evaluating, 20 s of wall time...
    study.counted(machine_s=5.0, cost_s=55.0)  # ...of which a replayed evaluation took 5 s here but recorded 55
    assert study.used_s() == 30.0 + 20.0 - 5.0 + 55.0 == 100.0
    assert study.spent()
    assert not StudyClock(None, clock=clock).spent(), "without a time budget the clock only counts"


def test_a_deadline_is_a_wall_clock_time_that_expires_in_another_process_too() -> None:
    clock = Clock()
    deadline = StudyClock(60.0, used_s=20.0, clock=clock).deadline()
    assert deadline is not None and deadline.at == clock.now + 40.0
    moved = pickle.loads(pickle.dumps(deadline))  # what a worker process or a Ray task receives
    assert not moved.expired()
    moved.clock.now += 40.0
    assert moved.expired() and moved.left_s() == 0.0
    assert isinstance(pickle.loads(pickle.dumps(Deadline(at=0.0))).expired(), bool), "time.time() by default"


# ---- in a study -----------------------------------------------------------------------------------------


class Costly(EvaluateToy):
    """Branin whose every evaluation recorded ``cost_s`` seconds (as a replayed table's)."""

    def __init__(self, cost_s: float) -> None:
        super().__init__("branin", TASK.space)
        self.cost_s = cost_s
        self.calls = 0

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        self.calls += 1
        return replace(await super().evaluate(config), cost_s=self.cost_s)


class Steps(EvaluateToy):
    """Branin trained for 10 steps of 10 s each (on the test's clock), reporting each; stops when told."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("branin", TASK.space)
        self.clock = clock
        self.stopped_at: list[int] = []

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        for step in range(1, 11):
            self.clock.now += 10.0
            if trial.report is not None and trial.report(step, float(step)):
                self.stopped_at.append(step)
                return EvalResult(value=None, state="pruned")
        return await super().evaluate(config)


def open_store(save_dir: Path) -> StudyStore:
    return StudyStore.open(
        save_dir=save_dir,
        study_name="branin",
        space=TASK.space,
        meta={"task": TASK.name},
        storage=str(save_dir / "study.log"),
    )


@pytest.mark.anyio
async def test_no_trial_starts_once_the_time_is_spent_counting_recorded_costs(tmp_path: Path) -> None:
    store = open_store(tmp_path / "run")
    try:
        tool = Costly(cost_s=10.0)
        clock = StudyClock(35.0, clock=Clock())  # the wall clock stands still: only the recorded costs move it
        summary = await StudyLoop(tool=tool, strategy=RandomStrategy(), store=store, budget=10, clock=clock).run()
        assert (summary.n_trials, tool.calls) == (4, 4), "3 trials used 30 s of 35: a 4th started, then none"
        assert summary.compute_s == 40.0
        assert [r.cost_s for r in store.records()] == [10.0] * 4
        assert 39.0 < summary.time_used_s <= 40.0 and summary.time_budget_s == 35.0  # less the lookups' own time
        assert store.meta[TIME_USED] == pytest.approx(summary.time_used_s, abs=1e-3)
    finally:
        store.close()


@pytest.mark.anyio
async def test_a_running_trial_stops_at_its_next_report_and_is_recorded_as_stopped_by_the_deadline(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "run")
    try:
        wall = Clock()
        tool = Steps(wall)
        clock = StudyClock(150.0, clock=wall)
        summary = await StudyLoop(tool=tool, strategy=RandomStrategy(), store=store, budget=5, clock=clock).run()
        # trial 0 ran its 10 steps (100 s); trial 1 started with 50 s left and stopped at its 5th report
        assert tool.stopped_at == [5]
        records = store.records()
        assert [(r.state, r.stopped_by) for r in records] == [("complete", None), ("pruned", DEADLINE)]
        assert (summary.complete, summary.pruned, summary.stopped_by_deadline, summary.failed) == (1, 0, 1, 0)
        body = (tmp_path / "run" / "trials" / "trial_0001.json").read_text()
        assert '"stopped_by": "deadline"' in body
    finally:
        store.close()


@pytest.mark.anyio
async def test_without_a_time_budget_nothing_is_stopped_and_the_time_is_still_kept(tmp_path: Path) -> None:
    store = open_store(tmp_path / "run")
    try:
        wall = Clock()
        tool = Steps(wall)
        summary = await StudyLoop(
            tool=tool, strategy=RandomStrategy(), store=store, budget=2, clock=StudyClock(clock=wall)
        ).run()
        assert (summary.complete, summary.stopped_by_deadline, tool.stopped_at) == (2, 0, [])
        assert store.meta[TIME_USED] == 200.0, "a time budget added later counts what was used"
    finally:
        store.close()


# ---- a whole study on a replayed table: resume, extend -------------------------------------------------


def _config(tmp_path: Path, time_budget_s: float | None) -> StudyConfig:
    return StudyConfig(
        task=build_task("hpobench-kc1", seed=0),
        strategy="random",
        budget=50,
        save_dir=tmp_path / "study",
        time_budget_s=time_budget_s,
        checks=False,
    )


@pytest.mark.anyio
async def test_a_resumed_study_goes_on_with_the_time_left_and_a_longer_budget_extends_it(tmp_path: Path) -> None:
    first = await run_study(_config(tmp_path, 60.0), say=lambda line: None)
    costs = [r.cost_s for r in _records(tmp_path)]
    assert all(c is not None and c > 0 for c in costs), "HPOBench's recorded train_time is each trial's cost"
    assert 1 <= first.n_trials < 50, "the time budget, not the trial budget, ended the study"
    assert sum(costs[:-1]) < 60.0 <= first.time_used_s  # the last trial started with time left, then it was spent

    again = await run_study(_config(tmp_path, None), say=lambda line: None)
    assert again.n_new == 0 and again.time_budget_s == 60.0, "a plain re-run keeps the budget: no time is left"

    extended = float(int(first.time_used_s) + 60)  # a minute more than the first run used
    longer = await run_study(_config(tmp_path, extended), say=lambda line: None)
    costs = [r.cost_s or 0.0 for r in _records(tmp_path)]
    assert longer.n_new >= 1 and longer.time_budget_s == extended
    assert longer.n_trials == 50 or sum(costs[:-1]) < extended <= longer.time_used_s
    assert longer.time_used_s >= first.time_used_s + sum(costs[first.n_trials :])


def _records(tmp_path: Path) -> list[TrialRecord]:
    store = StudyStore.open(
        save_dir=tmp_path / "study",
        study_name="hpobench-kc1-random-seed0",
        space=build_task("hpobench-kc1").space,
        meta={},
    )
    try:
        assert store.meta[TIME_BUDGET] >= 60.0
        return store.records()
    finally:
        store.close()


# ---- a training script's steps: the deadline or the task's timeout, whichever comes first --------------

FOREVER = """\
import json, os, sys, time
from pathlib import Path
Path("script.pid").write_text(str(os.getpid()))
for step in range(100_000):
    print(json.dumps({"step": step, "loss": 1.0 / (step + 1)}), flush=True)
    time.sleep(0.05)
"""


def forever(tmp_path: Path, timeout: float) -> RunCommand:
    script = tmp_path / "train.py"
    script.write_text(FOREVER)
    return RunCommand(TASK.space, [sys.executable, str(script), "{x1}", "{x2}"], "loss", timeout=timeout)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("budget_s", "timeout_s", "ended"),
    [(1.0, 600.0, ("pruned", DEADLINE, None)), (3600.0, 1.0, ("fail", None, "timed out after 1 s"))],
)
async def test_a_scripts_trial_stops_at_the_deadline_or_its_timeout_whichever_comes_first(
    tmp_path: Path, budget_s: float, timeout_s: float, ended: tuple[str, str | None, str | None]
) -> None:
    store = open_store(tmp_path / "run")
    try:
        tool = forever(tmp_path, timeout_s)  # prints a step every 50 ms until it is stopped
        clock = StudyClock(budget_s)  # the real wall clock: the script runs until one of the two stops it
        await StudyLoop(tool=tool, strategy=RandomStrategy(), store=store, budget=1, clock=clock).run()
        (record,) = store.records()
        assert (record.state, record.stopped_by) == ended[:2]
        assert ended[2] is None or (record.error or "").startswith(ended[2])
        assert wait_gone(read_pids(tmp_path / "run" / "trials" / "trial_0000")) == [], "nothing left running"
    finally:
        store.close()
