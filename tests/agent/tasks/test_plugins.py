"""Tests for agent/tasks/plugins.py: a real distribution on sys.path registers tasks under ``llm_hpo.tasks``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from agent.errors import UserError
from agent.tasks import ENTRY_POINT_GROUP, build_task, list_tasks, resolve_tasks
from tests.distributions import lay_out
from tools.command import RunCommand

ROOT = Path(__file__).resolve().parents[3]
MODULE = "hpo_plugin_demo"

PLUGIN = '''
"""Tasks of a demo package."""
from pathlib import Path
from typing import ClassVar

from agent.space import SearchSpace
from agent.tasks import Task
from tools.base import NO_TRIAL, EvaluationTool
from evaluators.base import EvalResult


class Quadratic(EvaluationTool):
    name: ClassVar[str] = "evaluate"
    description: ClassVar[str] = "Evaluate the quadratic."

    async def evaluate(self, config, trial=NO_TRIAL):
        return EvalResult(value=(config["x"] - 0.3) ** 2)


def quadratic(*, seed, space):
    """A quadratic in x with its minimum at 0.3."""
    space = space or SearchSpace.from_dict({"x": {"type": "float", "low": -1.0, "high": 1.0}})
    return Task(name="named-otherwise", family="custom", description="A quadratic in x.", space=space,
                template="task_custom", tool=Quadratic(space))


def from_file(*, seed, space):
    """The same kind of task from a task file the package ships."""
    return Path(__file__).with_name("demo_task.json")


def raising(*, seed, space):
    return 1 / 0


def wrong_type(*, seed, space):
    return 42
'''

TASK_FILE = {
    "description": "x squared.",
    "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
    "metric": "loss",
    "command": ["python", "-c", "import json, sys; print(json.dumps({'loss': float(sys.argv[1]) ** 2}))", "{x}"],
}

ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
quad = {MODULE}:quadratic
from-file = {MODULE}:from_file
raising = {MODULE}:raising
wrong-type = {MODULE}:wrong_type
broken = {MODULE}:no_such_factory
toy-branin = {MODULE}:quadratic
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an installed distribution, as pip lays one out: the module and its dist-info."""
    folder = lay_out(tmp_path_factory.mktemp("site"), MODULE, PLUGIN, ENTRY_POINTS, "hpo-plugin-demo")
    (folder / "demo_task.json").write_text(json.dumps(TASK_FILE))
    return folder


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(MODULE, None)


def test_registered_tasks_are_listed_and_built(installed: Path) -> None:
    listed = {info.name: info for info in list_tasks()}
    assert listed["quad"].family == "plugin"
    assert listed["quad"].summary == "A quadratic in x with its minimum at 0.3. (from hpo-plugin-demo 0.1)"
    assert listed["broken"].summary.startswith(f"cannot load {MODULE}:no_such_factory (AttributeError")
    assert listed["toy-branin"].family == "toy", "a built-in task of the same name wins"
    assert resolve_tasks("quad,from-file") == ("quad", "from-file")

    quad = build_task("quad", seed=3)
    assert quad.name == "quad", "the task takes the entry point's name"
    from_file = build_task("from-file")
    assert from_file.name == "from-file" and isinstance(from_file.tool, RunCommand)
    assert from_file.tool.argv[0] == sys.executable


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken", "task 'broken' (hpo_plugin_demo:no_such_factory, entry point group llm_hpo.tasks): cannot load"),
        ("raising", "task 'raising' (hpo_plugin_demo:raising, entry point group llm_hpo.tasks): its factory raised"),
        ("wrong-type", "its factory returned a int, not a Task or a task file's path"),
    ],
)
def test_a_broken_registration_is_one_error_naming_it(installed: Path, name: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        build_task(name)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_the_command_line_lists_and_runs_a_registered_task(site: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listing = subprocess.run(
        [sys.executable, "-m", "agent", "tasks"],
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    assert "quad" in listing.stdout and "A quadratic in x with its minimum at 0.3." in listing.stdout

    save = tmp_path / "study"
    args = ["--task", "from-file", "--strategy", "random", "--budget", "3", "--save_dir", str(save)]
    run = subprocess.run([sys.executable, "-m", "agent", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="from-file-random-seed0", storage=f"sqlite:///{save / 'study.db'}")
    assert study.user_attrs["task"] == "from-file"
    assert [t.value for t in study.trials] == [pytest.approx(t.params["x"] ** 2) for t in study.trials]
