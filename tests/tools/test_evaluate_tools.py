"""Tests for tools/evaluate_toy.py and tools/evaluate_tabular.py: validate through the space, then evaluate."""

from __future__ import annotations

import math
from typing import Any

import pytest

from agent.errors import InvalidSuggestion
from agent.space import FloatParam, SearchSpace
from agent.tasks import Task, build_task
from tools.base import EvaluationTool
from tools.evaluate_tabular import EvaluateTabular
from tools.evaluate_toy import EvaluateToy

pytestmark = pytest.mark.anyio

BRANIN = SearchSpace(params={"x1": FloatParam(low=-5.0, high=10.0), "x2": FloatParam(low=0.0, high=15.0)})


@pytest.fixture(scope="module")
def kc1() -> Task:
    return build_task("hpobench-kc1", seed=0)


KC1_CONFIG = {"alpha": 1e-8, "batch_size": 16, "depth": 2, "learning_rate_init": 1e-5, "width": 64}


# ---- evaluate_toy ---------------------------------------------------------------------------------------


def test_toy_tool_surface() -> None:
    tool = EvaluateToy("branin", BRANIN)
    assert isinstance(tool, EvaluationTool)
    assert tool.name == "evaluate_toy"
    assert tool.space is BRANIN
    assert tool.arguments_schema() == BRANIN.json_schema()
    with pytest.raises(ValueError, match="unknown toy function 'brannin'"):
        EvaluateToy("brannin", BRANIN)


def test_toy_validates_through_the_space() -> None:
    tool = EvaluateToy("branin", BRANIN)
    assert tool.validate_arguments({"x1": 3, "x2": 2.5}) == {"x1": 3.0, "x2": 2.5}
    for bad, loc in [({"x1": 11.0, "x2": 2.5}, ["x1"]), ({"x1": "3", "x2": 2.5}, ["x1"]), ({"x1": 3.0}, ["x2"])]:
        with pytest.raises(InvalidSuggestion) as info:
            tool.validate_arguments(bad)
        assert info.value.errors[0]["loc"] == loc


async def test_toy_evaluates_branin() -> None:
    tool = EvaluateToy("branin", BRANIN)
    for x1, x2 in [(-math.pi, 12.275), (math.pi, 2.275), (3 * math.pi, 2.475)]:
        result = await tool.evaluate({"x1": x1, "x2": x2})
        assert result.state == "complete"
        assert result.value == pytest.approx(5 / (4 * math.pi), abs=1e-5)  # the global minimum, 0.397887
        assert result.metrics == {"x1": x1, "x2": x2}
    far = await tool.evaluate({"x1": -5.0, "x2": 0.0})
    assert far.value == pytest.approx(308.129, abs=1e-3)


async def test_toy_tool_evaluates_the_task_space() -> None:
    task = build_task("toy-shifted_ackley")
    assert isinstance(task.tool, EvaluateToy)
    result = await task.tool.evaluate(task.tool.validate_arguments({"x1": 0.93, "x2": 0.59}))
    assert result.value == pytest.approx(0.0, abs=1e-9)


# ---- evaluate_tabular -----------------------------------------------------------------------------------


def test_tabular_tool_surface(kc1: Task) -> None:
    tool = kc1.tool
    assert isinstance(tool, EvaluateTabular)
    assert tool.name == "evaluate_tabular"
    assert tool.arguments_schema() == kc1.space.json_schema()
    assert list(kc1.space.params) == ["alpha", "batch_size", "depth", "learning_rate_init", "width"]


@pytest.mark.parametrize(
    ("change", "loc", "fragment"),
    [
        ({"alpha": 0.5}, ["alpha"], "not one of the choices"),
        ({"batch_size": "16"}, ["batch_size"], "not one of the choices"),
        ({"depth": True}, ["depth"], "not one of the choices"),
        ({"width": 65}, ["width"], "not one of the choices"),
        ({"dropout": 0.1}, ["dropout"], "unknown parameter"),
    ],
)
def test_tabular_validates_through_the_space(kc1: Task, change: dict[str, Any], loc: list[str], fragment: str) -> None:
    with pytest.raises(InvalidSuggestion) as info:
        kc1.tool.validate_arguments({**KC1_CONFIG, **change})
    assert info.value.errors[0]["loc"] == loc
    assert fragment in info.value.errors[0]["msg"]


async def test_tabular_evaluates(kc1: Task) -> None:
    config = kc1.tool.validate_arguments({**KC1_CONFIG, "learning_rate_init": 1e-5 * (1 + 1e-12), "depth": 2.0})
    assert config == KC1_CONFIG
    result = await kc1.tool.evaluate(config)
    assert result.state == "complete"
    assert result.value is not None and 0.0 <= result.value <= 1.0
    assert result.metrics["val_error"] == result.value
    assert result.metrics["val_acc"] == pytest.approx(1.0 - result.value)
    assert kc1.true_error is not None
    assert kc1.optimum is not None and kc1.optimum <= kc1.true_error(config)


async def test_tabular_noise_is_seeded() -> None:
    async def values(seed: int) -> list[float | None]:
        task = build_task("hpobench-kc1", seed=seed)
        return [(await task.tool.evaluate(dict(KC1_CONFIG))).value for _ in range(10)]

    assert await values(1) == await values(1)
