"""Tests for tools/train_replayed.py and the ``curves-<dataset>`` tasks: a study whose pruner stops replayed
runs at a rung, each run costing only the epochs it ran."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from agent.session import StudyConfig, run_study
from agent.study import opened_storage
from agent.tasks import build_task, resolve_tasks
from evaluators.curves import curve_datasets, load_table
from tools.base import TrialContext

pytestmark = pytest.mark.anyio


def test_every_table_is_a_task_in_the_curves_group() -> None:
    assert resolve_tasks("curves") == tuple(f"curves-{d}" for d in curve_datasets())
    assert len(curve_datasets()) >= 4


async def test_the_task_replays_its_table_with_the_table_as_true_error() -> None:
    task = build_task("curves-digits", seed=1)
    table = load_table("digits")
    assert task.tool.max_step == table.epochs
    assert task.template == "task_curves"
    assert task.optimum == pytest.approx(table.best_true_value())
    config = table.config(17)
    assert task.true_error is not None
    assert task.true_error(config) == pytest.approx(table.true_value(17))
    steps: list[int] = []
    result = await task.tool.evaluate(config, TrialContext(report=lambda s, v: steps.append(s) or s == 3))
    assert steps == [1, 2, 3]
    assert result.state == "pruned"
    assert result.cost_s == pytest.approx(3 * table.seconds_per_epoch(17))


async def test_a_study_with_the_default_scheduler_stops_runs_at_the_rungs_3_and_9(tmp_path: Path) -> None:
    task = build_task("curves-segment", seed=0)
    config = StudyConfig(task=task, strategy="random", budget=24, seed=0, save_dir=tmp_path)  # --pruner left out
    assert config.scheduler.to_dict() == {"pruner": "asha", "min_step": 3, "max_step": 27}
    summary = await run_study(config, say=lambda line: None)
    assert summary.n_trials == 24
    assert summary.pruned > 0 and summary.complete > 0
    with opened_storage(f"sqlite:///{tmp_path / 'study.db'}") as storage:
        trials = storage.get_all_trials(storage.get_study_id_from_name(config.name))
    for trial in trials:
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert steps[-1] in (3, 9)
        else:
            assert steps[-1] == task.tool.max_step
