"""Tests for agent/tasks/registry.py: names and groups of tasks."""

from __future__ import annotations

import pytest

from agent.errors import UserError
from agent.tasks import TASK_GROUPS, list_tasks, resolve_tasks


def test_tasks_take_names_and_groups_in_order_without_repeats() -> None:
    assert resolve_tasks("toy-branin, hpobench ,hpobench-kc1") == ("toy-branin", *TASK_GROUPS["hpobench"])
    with pytest.raises(UserError, match="unknown task or group 'nope'"):
        resolve_tasks("toy-branin,nope")
    with pytest.raises(UserError, match="at least one"):
        resolve_tasks(" , ")


def test_every_group_lists_registered_tasks() -> None:
    names = {info.name for info in list_tasks()}
    for group, members in TASK_GROUPS.items():
        assert members and set(members) <= names, group


def test_the_hpolib_group_is_the_four_regression_tables_minimizing_their_mse() -> None:
    from agent.tasks import build_task

    assert resolve_tasks("hpolib") == (
        "hpolib-naval_propulsion",
        "hpolib-parkinsons_telemonitoring",
        "hpolib-protein_structure",
        "hpolib-slice_localization",
    )
    task = build_task("hpolib-protein_structure", seed=0)
    assert task.metric == "val_loss" and task.direction == "minimize" and task.template == "task_regression"
    assert task.true_error is not None and task.optimum is not None and task.optimum > 0
    assert list(task.space.params) == [
        "activation_fn_1", "activation_fn_2", "batch_size", "dropout_1", "dropout_2",
        "init_lr", "lr_schedule", "n_units_1", "n_units_2",
    ]  # fmt: skip
