"""Tests for agent/tasks/taskfile.py: task files load into tasks, and every mistake is one line naming the key."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.space import SearchSpace
from agent.strategies.base import BuildContext
from agent.strategies.bo import BOStrategy
from agent.strategies.registry import get_strategy
from agent.strategies.warp import DEFAULT
from agent.tasks import build_task, load_task_file
from tools.command import RunCommand
from tools.objective import CallObjective

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "digits"

GOOD = """\
description: Tune my script; the value is the validation loss.
space:
  lr: {type: float, low: 1.0e-5, high: 0.1, log: true}
  batch: {type: categorical, choices: [32, 64]}
metric: val_loss
"""


def write(folder: Path, text: str, name: str = "task.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_example_command_task_loads_with_paths_from_its_folder() -> None:
    task = build_task(str(EXAMPLES / "digits.yaml"))
    assert task.name == "digits" and task.family == "custom" and task.direction == "minimize"
    assert task.template == "task_custom"
    assert "The value of each run is its 'val_error'." in task.description
    assert set(task.space.params) == {"learning_rate", "alpha", "hidden", "batch_size"}
    assert isinstance(task.tool, RunCommand)
    assert task.tool.argv[:2] == [sys.executable, str(EXAMPLES / "digits.py")], "python is this interpreter"
    assert task.tool.metric == "val_error" and task.tool.timeout == 300.0
    assert task.tool.needs_directory
    assert (task.tool.min_step, task.tool.max_step) == (1, 10), "its steps: scheduled by default"


def test_the_example_objective_task_loads_and_maximizes() -> None:
    task = load_task_file(EXAMPLES / "digits-objective.yaml")
    assert task.name == "digits-objective" and task.direction == "maximize"
    assert isinstance(task.tool, CallObjective)
    assert task.tool.target == "digits:objective" and task.tool.folder == EXAMPLES
    assert task.tool.runs_in_subprocess


def test_a_json_file_a_command_list_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "bin").mkdir()
    program = tmp_path / "bin" / "train"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    body = {
        "description": "d",
        "space": {"lr": {"type": "float", "low": 0.1, "high": 1.0}},
        "metric": "loss",
        "direction": "maximize",
        "command": ["bin/train", "--data=data", "data", "--lr", "{lr}", "-v", "not-a-file"],
        "timeout": 5,
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(body))
    task = load_task_file(path)
    assert isinstance(task.tool, RunCommand)
    data = str(tmp_path / "data")
    assert task.tool.argv == [str(program), f"--data={data}", data, "--lr", "{lr}", "-v", "not-a-file"]
    assert task.name == "mine" and task.direction == "maximize"


def test_search_space_overrides_the_file_and_placeholders_are_checked_against_it(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "command: python -c pass --lr {lr} --batch {batch}\n")
    override = SearchSpace.from_dict({"lr": {"type": "float", "low": 0.01, "high": 0.1}})
    with pytest.raises(UserError, match=r"command: \{batch\} names no parameter of the search space \(lr\)"):
        load_task_file(path, space=override)
    override = SearchSpace.from_dict({**override.to_dict(), "batch": {"type": "int", "low": 1, "high": 4}})
    assert load_task_file(path, space=override).space == override


@pytest.mark.parametrize("name", ["log", "yeo-johnson", "rank", "none"])
def test_a_task_file_names_the_warp_of_its_values_and_bo_learns_through_it(tmp_path: Path, name: str) -> None:
    task = load_task_file(write(tmp_path, GOOD + f"transform: {name}\ncommand: python -c pass\n"))
    assert task.transform == name
    strategy = get_strategy("bo").build(BuildContext(task=task, budget=5, seed=0))
    assert isinstance(strategy, BOStrategy) and strategy.surrogate.transform == name
    plain = load_task_file(write(tmp_path, GOOD + "command: python -c pass\n", name="plain.yaml"))
    assert plain.transform is None
    built = get_strategy("bo").build(BuildContext(task=plain, budget=5, seed=0))
    assert isinstance(built, BOStrategy) and built.surrogate.transform == DEFAULT


TASK_FILE_ERRORS = [
    ("unknown key", GOOD + "command: python -c pass\nmetrics: loss\n", "metrics", "unknown key; a task file holds"),
    ("both", GOOD + "command: python -c pass\nobjective: m:f\n", "command", "exactly one of command and objective"),
    ("neither", GOOD, "command", "give exactly one of command and objective, not neither"),
    ("placeholder", GOOD + "command: python -c pass --lr {learning_rate}\n", "command", "{learning_rate} names no"),
    ("no module", GOOD + "objective: no_such_module_xyz:f\n", "objective", "cannot import 'no_such_module_xyz'"),
    ("no function", GOOD + "objective: json:no_such_function\n", "objective", "'json' has no attribute"),
    ("not module:function", GOOD + "objective: json\n", "objective", "not of the form module:function"),
    ("program", GOOD + "command: pyhton train.py\n", "command", "program 'pyhton' is not found on PATH"),
    ("relative program", GOOD + "command: ./run.sh\n", "command", "program './run.sh' is not an executable file"),
    ("unbalanced quote", GOOD + "command: python 'train.py\n", "command", "cannot be split into arguments"),
    ("empty command", GOOD + "command: ''\n", "command", "is empty"),
    ("direction", GOOD + "direction: max\ncommand: python -c pass\n", "direction", "minimize or maximize, got 'max'"),
    ("timeout", GOOD + "timeout: -1\ncommand: python -c pass\n", "timeout", "positive number of seconds, got -1"),
    (
        "transform",
        GOOD + "transform: box-cox\ncommand: python -c pass\n",
        "transform",
        "must be one of yeo-johnson, log, rank, none (or left out for the default), got 'box-cox'",
    ),
    ("metric missing", GOOD.replace("metric: val_loss\n", "") + "command: python -c pass\n", "metric", "missing"),
    ("metric step", GOOD.replace("val_loss", "step") + "command: python -c pass\n", "metric", "'step' marks"),
    (
        "description",
        GOOD.replace("Tune my script; the value is the validation loss.", "''") + "command: python -c pass\n",
        "description",
        "must be a non-empty string, got ''",
    ),
    (
        "space",
        GOOD.replace("low: 1.0e-5", "low: 0.0") + "command: python -c pass\n",
        "space",
        "lr: a log scale needs low above 0, got low 0; use a positive low or drop log",
    ),
    ("space missing", "description: d\nmetric: m\ncommand: python -c pass\n", "space", "missing"),
    ("space type", GOOD.replace("type: float", "type: floaty") + "command: python -c pass\n", "space", "unknown type"),
]


@pytest.mark.parametrize(
    ("text", "key", "message"), [e[1:] for e in TASK_FILE_ERRORS], ids=[e[0] for e in TASK_FILE_ERRORS]
)
def test_each_mistake_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        build_task(str(path))
    error = str(caught.value)
    assert "\n" not in error
    assert error.startswith(f"task file {path}: {key}: "), error
    assert message in error


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("task.yaml", "description: [unclosed\n", "not valid YAML (line 2, column 1: "),
        ("task.json", '{"description": ', "not valid JSON (line 1, column 17: Expecting value)"),
        ("task.yaml", "- a list\n- of things\n", "must hold a mapping with the keys description, space, metric"),
        ("missing.yml", None, "cannot read it (No such file or directory)"),
    ],
)
def test_a_file_that_is_not_a_task_file_says_so(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = write(tmp_path, text, name) if text is not None else tmp_path / name
    with pytest.raises(UserError) as caught:
        build_task(str(path))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"task file {path}: {message}"), str(caught.value)


def test_a_module_that_raises_on_import_is_a_task_file_error(tmp_path: Path) -> None:
    (tmp_path / "crashes_on_import_mod.py").write_text("raise RuntimeError('needs a GPU\\nand more')\n")
    path = write(tmp_path, GOOD + "objective: crashes_on_import_mod:f\n")
    try:
        with pytest.raises(
            UserError, match="objective: cannot import 'crashes_on_import_mod': RuntimeError: needs a GPU / and more"
        ):
            load_task_file(path)
    finally:
        sys.modules.pop("crashes_on_import_mod", None)
        sys.path.remove(str(tmp_path))
