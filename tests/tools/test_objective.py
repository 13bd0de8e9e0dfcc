"""Tests for tools/objective.py: the user's Python function as an evaluation, in threads and processes."""

from __future__ import annotations

import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio.to_process
import pytest

from agent.space import SearchSpace
from evaluators.base import SetupError, TrialFailed
from tools.base import TrialContext
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

CLOSED = []

def curve(config):
    try:
        for epoch in range(1, 5):
            yield epoch, {"loss": config["x"] / epoch, "lr": 0.1}
        return {"loss": config["x"] / 4, "epochs": 4}
    finally:
        CLOSED.append(config["x"])

def last_yield_is_the_result(config):
    yield 1, 2.0
    yield 2, config["x"]

async def async_curve(config):
    for epoch in range(1, 4):
        yield epoch, config["x"] * epoch

def bad_yield(config):
    yield "epoch 1"
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


@pytest.mark.timeout(60)  # a hang fails here; "timed out" below shows the 0.3 s timeout ended the 2 s sleep
async def test_a_timeout_fails_the_trial(folder: Path) -> None:
    result = await tool(folder, "slow", timeout=0.3).evaluate({"x": 0.0})
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


class Reports:
    """A trial's ``report``: records each ``(step, value)``; says stop at ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.seen: list[tuple[int, float]] = []
        self.stop_at = stop_at

    def __call__(self, step: int, value: float) -> bool:
        self.seen.append((step, value))
        return step == self.stop_at


async def test_a_generator_reports_each_step_and_returns_its_result(folder: Path) -> None:
    reports = Reports()
    result = await tool(folder, "curve").evaluate({"x": 4.0}, TrialContext(report=reports))
    assert reports.seen == [(1, 4.0), (2, 2.0), (3, 4 / 3), (4, 1.0)]
    assert result.state == "complete" and result.value == 1.0 and result.metrics == {"epochs": 4}


async def test_a_generator_stopped_at_a_step_is_closed_and_pruned_there(folder: Path) -> None:
    objective = tool(folder, "curve")
    reports = Reports(stop_at=2)
    result = await objective.evaluate({"x": 3.0}, TrialContext(report=reports))
    assert [step for step, _ in reports.seen] == [1, 2], "no step runs after the stop"
    assert result.state == "pruned" and result.value == 1.5 and result.metrics == {"step": 2}
    assert sys.modules[objective.target.partition(":")[0]].CLOSED == [3.0], "its finally block ran"


async def test_without_a_reporter_the_generator_runs_to_its_end_and_its_last_yield_is_the_result(
    folder: Path,
) -> None:
    result = await tool(folder, "last_yield_is_the_result").evaluate({"x": 0.25})
    assert result.state == "complete" and result.value == 0.25


async def test_an_async_generator_reports_and_stops_the_same_way(folder: Path) -> None:
    reports = Reports(stop_at=2)
    result = await tool(folder, "async_curve").evaluate({"x": 2.0}, TrialContext(report=reports))
    assert reports.seen == [(1, 2.0), (2, 4.0)]
    assert result.state == "pruned" and result.value == 4.0
    whole = await tool(folder, "async_curve").evaluate({"x": 2.0})
    assert whole.state == "complete" and whole.value == 6.0


async def test_a_yield_that_is_no_step_value_pair_says_what_to_yield(folder: Path) -> None:
    with pytest.raises(TrialFailed, match=r"yielded 'epoch 1'; yield \(step, value\) pairs"):
        await tool(folder, "bad_yield").evaluate({"x": 0.0}, TrialContext(report=Reports()))
