"""Tests for agent/study/scheduler.py: which pruner a study gets, Optuna's own, over the task's steps."""

from __future__ import annotations

import optuna
import pytest

from agent.study.scheduler import DEFAULT_PRUNER, Scheduler


def test_a_task_that_reports_steps_is_scheduled_by_default_and_one_that_reports_none_is_not() -> None:
    assert Scheduler.choose(None, max_step=27) == Scheduler(DEFAULT_PRUNER, 1, 27)
    assert Scheduler.choose(None, max_step=27, min_step=3).to_dict() == {
        "pruner": DEFAULT_PRUNER,
        "min_step": 3,
        "max_step": 27,
    }
    assert not Scheduler.choose(None, max_step=None).on
    assert Scheduler.choose(None, max_step=None).build() is None
    assert Scheduler.choose("none", max_step=27).to_dict() == {"pruner": "none"}


def test_each_name_is_optunas_pruner_over_the_tasks_steps() -> None:
    asha = Scheduler.choose("asha", max_step=27, min_step=3).build()
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    assert asha._min_resource == 3 and asha._reduction_factor == 3 and asha._min_early_stopping_rate == 0
    hyperband = Scheduler.choose("hyperband", max_step=27).build()
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._min_resource == 1 and hyperband._max_resource == 27
    unknown = Scheduler.choose("hyperband", max_step=None).build()
    assert isinstance(unknown, optuna.pruners.HyperbandPruner) and unknown._max_resource == "auto"
    assert isinstance(Scheduler.choose("median", max_step=5).build(), optuna.pruners.MedianPruner)


def test_asha_stops_a_trial_outside_the_best_third_at_a_rung() -> None:
    """Optuna's successive halving as built here, on a study of real trials: rungs at steps 1, 3, 9."""
    study = optuna.create_study(pruner=Scheduler.choose("asha", max_step=9).build())
    decisions = []
    for value in (1.0, 2.0, 0.5):
        trial = study.ask()
        trial.report(value, 1)
        decisions.append(trial.should_prune())
        study.tell(
            trial,
            state=optuna.trial.TrialState.PRUNED if decisions[-1] else None,
            values=None if decisions[-1] else value,
        )
    assert decisions == [False, True, False]


def test_an_unknown_name_says_which_exist() -> None:
    with pytest.raises(ValueError, match="unknown pruner 'sha'; choose one of asha, hyperband, median, none"):
        Scheduler.choose("sha", max_step=3)
