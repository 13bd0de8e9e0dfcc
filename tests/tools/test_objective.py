"""Tests for tools/objective.py: the user's Python function as an evaluation, in threads and processes."""

from __future__ import annotations

import pickle
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_process
import pytest

from agent.space import SearchSpace
from evaluators.base import SetupError
from tools.objective import CallObjective, load_callable

pytestmark = pytest.mark.anyio

SPACE = SearchSpace.from_dict({"x": {"type": "float", "low": -5.0, "high": 5.0}})

MODULE = """
import asyncio, threading, time

def square(config):
    return (config["x"] - 1.0) ** 2

def report(config):
    return {"loss": config["x"] * 2, "accuracy": 0.5, "thread": threading.current_thread().name, "deep": [1]}

async def coroutine(config):
    await asyncio.sleep(0)
    return {"loss": -config["x"]}

def nan(config):
    return float("nan")

def no_metric(config):
    return {"accuracy": 1.0}

def text(config):
    return "0.5"

def slow(config):
    time.sleep(2)
    return 0.0

def fails(config):
    raise ValueError("diverged at step 3")

class Trainer:
    @staticmethod
    def run(config):
        return config["x"]

not_callable = 3
"""


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder holding the module ``objective_mod_<n>`` (a fresh name per test: imports are cached)."""
    name = f"objective_mod_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    yield tmp_path
    sys.modules.pop(name, None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def tool(folder: Path, function: str, timeout: float | None = None) -> CallObjective:
    module = next(folder.glob("objective_mod_*.py")).stem
    return CallObjective(SPACE, f"{module}:{function}", "loss", folder, timeout)


async def test_a_number_or_a_dict_holding_the_metric_is_the_value(folder: Path) -> None:
    plain = await tool(folder, "square").evaluate({"x": 3.0})
    assert plain.state == "complete" and plain.value == 4.0 and plain.metrics == {}

    rich = await tool(folder, "report").evaluate({"x": 1.5})
    assert rich.value == 3.0
    assert rich.metrics["accuracy"] == 0.5 and "deep" not in rich.metrics
    assert rich.metrics["thread"] != "MainThread", "a plain function runs in a worker thread"

    awaited = await tool(folder, "coroutine").evaluate({"x": 2.0})
    assert awaited.value == -2.0
    assert (await tool(folder, "Trainer.run").evaluate({"x": 0.5})).value == 0.5


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ("nan", "the objective returned loss = nan: not a finite number"),
        ("no_metric", "the objective returned no 'loss' (its keys: 'accuracy')"),
        ("text", "the objective returned loss = '0.5': not a number"),
    ],
)
async def test_a_result_without_a_finite_value_fails_the_trial(folder: Path, function: str, reason: str) -> None:
    result = await tool(folder, function).evaluate({"x": 0.0})
    assert result.state == "fail" and result.error == reason


async def test_a_timeout_fails_the_trial(folder: Path) -> None:
    started = time.monotonic()
    result = await tool(folder, "slow", timeout=0.3).evaluate({"x": 0.0})
    assert time.monotonic() - started < 5
    assert result.state == "fail" and result.error == "timed out after 0.3 s"


async def test_what_the_function_raises_propagates_for_the_runner_to_record(folder: Path) -> None:
    with pytest.raises(ValueError, match="diverged at step 3"):
        await tool(folder, "fails").evaluate({"x": 0.0})


def test_a_missing_module_or_function_says_what_is_wrong(folder: Path) -> None:
    module = next(folder.glob("objective_mod_*.py")).stem
    with pytest.raises(ValueError, match="cannot import 'no_such_module_here': ModuleNotFoundError"):
        load_callable("no_such_module_here:f", folder)
    with pytest.raises(ValueError, match=f"'{module}' has no attribute 'missing'"):
        load_callable(f"{module}:missing", folder)
    with pytest.raises(ValueError, match="is a int, not a function"):
        load_callable(f"{module}:not_callable", folder)
    with pytest.raises(ValueError, match="not of the form module:function"):
        load_callable("just_a_module", folder)


async def test_a_worker_that_cannot_import_it_stops_the_study(tmp_path: Path) -> None:
    broken = CallObjective(SPACE, "module_that_vanished:f", "loss", tmp_path)
    with pytest.raises(SetupError, match="module_that_vanished"):
        await broken.evaluate({"x": 0.0})


async def test_it_pickles_by_name_and_runs_in_a_worker_process(folder: Path) -> None:
    objective = tool(folder, "report")
    objective.load()
    copy = pickle.loads(pickle.dumps(objective))
    assert copy._function is None and copy.target == objective.target
    result = await anyio.to_process.run_sync(_evaluate_in_process, copy)
    assert result.value == 1.0 and result.metrics["accuracy"] == 0.5


def _evaluate_in_process(objective: CallObjective) -> object:
    return anyio.run(objective.evaluate, {"x": 0.5})
