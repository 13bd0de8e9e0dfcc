"""Tests for agent/tasks.py: names and groups of tasks."""

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
