"""Tests for agent/study/reporting.py: a trial's steps written to its study and judged by the study's pruner,
from this process or any other that opens the storage; bad steps leave the trial unscheduled, not failed."""

from __future__ import annotations

import functools
import json
import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from agent.deadline import Deadline
from agent.records import ProposalInfo
from agent.space import SearchSpace
from agent.study import StudyStore
from agent.study.reporting import StepReporter
from evaluators.base import EvalResult

SPACE = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 10.0}})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StudyStore]:
    s = StudyStore.open(save_dir=tmp_path, study_name="r", space=SPACE, meta={"task": "t"})
    yield s
    s.close()


def start(store: StudyStore, x: float = 1.0) -> int:
    claimed = store.claim({"x": x}, ProposalInfo(), budget=10)
    assert claimed is not None
    return claimed[0]


def events(store: StudyStore) -> list[dict[str, object]]:
    return [json.loads(line) for line in (store.save_dir / "events.jsonl").read_text().splitlines()]


def test_each_step_is_stored_and_the_studys_pruner_decides(store: StudyStore) -> None:
    number = start(store)
    report = store.reporter(number, optuna.pruners.ThresholdPruner(upper=5.0))
    assert report(1, 4.0) is False
    assert report(2, 6.0) is True
    assert store.study.trials[number].intermediate_values == {1: 4.0, 2: 6.0}
    record = store.finish(number, EvalResult(value=6.0, state="pruned"), 0.1)
    assert record.state == "pruned" and record.step == 2


def test_a_pickled_reporter_opens_the_storage_itself(store: StudyStore) -> None:
    """What a worker process or a Ray task gets: the URL, the study's name, the trial and the pruner."""
    number = start(store)
    report = store.reporter(number, optuna.pruners.ThresholdPruner(upper=5.0))
    assert report.crosses_processes
    copy = pickle.loads(pickle.dumps(report))
    assert copy.study is None
    assert copy(1, 9.0) is True
    assert store.storage.get_trial(report.trial_id).intermediate_values == {1: 9.0}


def test_a_study_in_memory_keeps_its_reporter_in_its_process() -> None:
    study = optuna.create_study()
    trial = study.ask()
    report = StepReporter(
        study_name=study.study_name, trial_id=trial._trial_id, number=0, pruner=optuna.pruners.NopPruner(), study=study
    )
    assert not report.crosses_processes
    with pytest.raises(TypeError, match="a study in memory cannot leave its process"):
        pickle.dumps(report)
    assert report(1, 1.0) is False


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([(1, 1.0), (1, 0.5)], "step 1 does not come after step 1"),
        ([(2, 1.0), (1, 0.5)], "step 1 does not come after step 2"),
        ([(1, 1.0), (2, math.nan)], "step 2 has no finite value of the metric (nan)"),
    ],
)
def test_a_bad_step_is_named_once_and_the_trial_goes_on_unscheduled(
    store: StudyStore, steps: list[tuple[int, float]], message: str
) -> None:
    number = start(store)
    report = store.reporter(number, optuna.pruners.ThresholdPruner(upper=100.0))
    for step, value in steps:
        assert report(step, value) is False
    assert report(7, 1e9) is False, "unscheduled: no more reports to the pruner, which would have stopped it"
    assert report.unscheduled is not None and message in report.unscheduled
    assert set(store.study.trials[number].intermediate_values) == {steps[0][0]}
    record = store.finish(number, EvalResult(value=0.5), 0.1)
    assert record.state == "complete" and record.value == 0.5
    warnings = [e for e in events(store) if e["event"] == "trial_unscheduled"]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert f"trial {number}: {message}; the trial goes on unscheduled" in str(warnings[0]["reason"])


def test_the_last_step_is_recorded_but_never_stops_the_trial(store: StudyStore) -> None:
    number = start(store)
    report = store.reporter(number, optuna.pruners.ThresholdPruner(upper=0.0), max_step=3)
    assert report(3, 5.0) is False
    assert store.study.trials[number].intermediate_values == {3: 5.0}


def test_more_stop_checks_compose_in_and_cross_processes(store: StudyStore) -> None:
    """How a deadline stops a trial at its next report: a picklable check, asked after the pruner."""
    number = start(store)
    expired = functools.partial(bool, 1)
    report = store.reporter(number, optuna.pruners.NopPruner(), also_stop=(expired,))
    copy = pickle.loads(pickle.dumps(report))
    assert copy(1, 1.0) is True and report(2, 1.0) is True
    assert store.study.trials[number].intermediate_values == {1: 1.0, 2: 1.0}


def test_a_trial_re_run_after_a_kill_does_not_report_its_earlier_steps_again(store: StudyStore) -> None:
    number = start(store)
    first = store.reporter(number, optuna.pruners.NopPruner())
    assert first(1, 3.0) is False
    again = pickle.loads(pickle.dumps(first))  # the re-run's reporter: a fresh one over the same trial
    assert again(1, 2.0) is False  # Optuna would warn of a step reported twice (warnings are errors here)
    assert again(2, 1.0) is False
    assert again.unscheduled is None
    assert store.study.trials[number].intermediate_values == {1: 3.0, 2: 1.0}


def test_a_deadline_stops_the_trial_after_the_pruner_heard_the_step_and_says_it_stopped_it(store: StudyStore) -> None:
    """The time budget's deadline is a stop check that names itself: pickled to another process as a worker's
    trial is, it stops the trial there; the pruner heard the value first (the curve is whole), and the trial is
    recorded as stopped by the deadline, not by the scheduler."""
    number = start(store)
    report = store.reporter(number, optuna.pruners.NopPruner(), max_step=3, also_stop=(Deadline(at=0.0),))
    copy = pickle.loads(pickle.dumps(report))
    assert copy(1, 4.0) is True
    assert store.storage.get_trial(report.trial_id).intermediate_values == {1: 4.0}
    record = store.finish(number, EvalResult(value=4.0, state="pruned"), 0.1)
    assert (record.state, record.stopped_by, record.curve) == ("pruned", "deadline", {1: 4.0})
    assert json.loads((store.save_dir / "trials" / f"trial_{number:04d}.json").read_text())["stopped_by"] == "deadline"


def test_a_stop_the_pruner_decides_is_not_the_deadlines_and_the_last_step_is_never_stopped(store: StudyStore) -> None:
    first = start(store)
    report = store.reporter(first, optuna.pruners.ThresholdPruner(upper=5.0), max_step=3, also_stop=(Deadline(at=0),))
    assert report(1, 9.0) is True
    assert store.finish(first, EvalResult(value=9.0, state="pruned"), 0.1).stopped_by is None
    second = start(store, 2.0)
    report = store.reporter(second, optuna.pruners.NopPruner(), max_step=3, also_stop=(Deadline(at=0.0),))
    assert report(3, 1.0) is False, "its last step: it has done all its work"
    assert store.finish(second, EvalResult(value=1.0), 0.1).stopped_by is None
