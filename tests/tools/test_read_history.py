"""Tests for tools/read_history.py: what the model reads when it asks for the history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.errors import InvalidSuggestion
from agent.records import TrialRecord
from tools.read_history import ReadHistory

pytestmark = pytest.mark.anyio


def rec(number: int, state: str = "complete", value: float | None = None, error: str | None = None) -> TrialRecord:
    return TrialRecord(
        number=number,
        config={"x1": float(number), "opt": "adam"},
        state=state,  # type: ignore[arg-type]
        value=value,
        error=error,
    )


HISTORY = [
    rec(0, value=3.0),
    rec(1, state="fail", error="RuntimeError: CUDA out of memory"),
    rec(2, value=1.0),
    rec(3, state="pruned"),
    rec(4, value=2.0),
    rec(5, value=1.0),
    rec(6, state="running"),
]


async def read(history: list[TrialRecord], **arguments: Any) -> str:
    tool = ReadHistory(lambda: history)
    return await tool(tool.validate_arguments(arguments))


async def test_best_is_ordered_by_value_then_number() -> None:
    assert await read(HISTORY, which="best", n=3) == (
        "The best 3 of 6 finished trials:\n"
        'trial 2: {"x1": 2.0, "opt": "adam"} -> value 1\n'
        'trial 5: {"x1": 5.0, "opt": "adam"} -> value 1\n'
        'trial 4: {"x1": 4.0, "opt": "adam"} -> value 2'
    )


async def test_last_is_in_trial_order_with_failed_and_pruned_lines() -> None:
    assert await read(HISTORY, which="last", n=4) == (
        "The last 4 of 6 finished trials:\n"
        'trial 2: {"x1": 2.0, "opt": "adam"} -> value 1\n'
        'trial 3: {"x1": 3.0, "opt": "adam"} -> pruned (stopped early)\n'
        'trial 4: {"x1": 4.0, "opt": "adam"} -> value 2\n'
        'trial 5: {"x1": 5.0, "opt": "adam"} -> value 1'
    )
    text = await read(HISTORY, which="last", n=6)
    assert 'trial 1: {"x1": 1.0, "opt": "adam"} -> failed: RuntimeError: CUDA out of memory' in text
    assert "trial 6" not in text  # still running


async def test_n_larger_than_the_history() -> None:
    best = await read(HISTORY, which="best", n=20)
    assert best.splitlines()[0] == "The best 4 of 6 finished trials:"  # only trials with a value rank
    assert len(best.splitlines()) == 5
    last = await read(HISTORY, which="last", n=20)
    assert last.splitlines()[0] == "The last 6 of 6 finished trials:"
    assert [line.split(":")[0] for line in last.splitlines()[1:]] == [f"trial {i}" for i in range(6)]


async def test_n_bounds() -> None:
    assert len((await read(HISTORY, which="last", n=1)).splitlines()) == 2
    assert len((await read(HISTORY, which="last", n=20)).splitlines()) == 7


@pytest.mark.parametrize("history", [[], [rec(0, state="running")]])
async def test_empty_history(history: list[TrialRecord]) -> None:
    assert await read(history, which="best", n=3) == "No trial has finished yet."
    assert await read(history, which="last", n=3) == "No trial has finished yet."


async def test_best_when_every_trial_failed() -> None:
    text = await read([rec(0, state="fail", error="boom"), rec(1, state="pruned")], which="best", n=3)
    assert text.startswith("No trial has completed yet (2 finished without a value):")
    assert "failed: boom" in text and "pruned" in text


async def test_the_history_is_read_at_call_time() -> None:
    history: list[TrialRecord] = []
    tool = ReadHistory(lambda: history)
    args = tool.validate_arguments({"which": "last", "n": 5})
    assert await tool(args) == "No trial has finished yet."
    history.append(rec(0, value=0.5))
    assert (await tool(args)).startswith("The last 1 of 1 finished trials:")


@pytest.mark.parametrize(
    ("arguments", "loc", "fragment"),
    [
        ({"which": "best", "n": 0}, ["n"], "greater than or equal to 1"),
        ({"which": "best", "n": 21}, ["n"], "less than or equal to 20"),
        ({"which": "best", "n": -1}, ["n"], "greater than or equal to 1"),
        ({"which": "worst", "n": 3}, ["which"], "'best' or 'last'"),
        ({"which": "best", "n": "3"}, ["n"], "valid integer"),
        ({"which": "best", "n": 3.0}, ["n"], "valid integer"),
        ({"which": "best", "n": True}, ["n"], "valid integer"),
        ({"which": "best", "n": None}, ["n"], "valid integer"),
        ({"which": "best"}, ["n"], "Field required"),
        ({"n": 3}, ["which"], "Field required"),
        ({"which": "best", "n": 3, "sort": "asc"}, ["sort"], "Extra inputs are not permitted"),
        ([["which", "best"]], [], "valid dictionary"),
        (None, [], "valid dictionary"),
    ],
)
def test_invalid_arguments(arguments: Any, loc: list[str], fragment: str) -> None:
    with pytest.raises(InvalidSuggestion) as info:
        ReadHistory(list).validate_arguments(arguments)
    assert info.value.errors[0]["loc"] == loc
    assert fragment in info.value.errors[0]["msg"]
    json.dumps(info.value.errors)


def test_valid_arguments_and_schema() -> None:
    tool = ReadHistory(list)
    assert tool.validate_arguments({"which": "last", "n": 20}) == {"which": "last", "n": 20}
    schema = tool.arguments_schema()
    assert schema["required"] == ["which", "n"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["which"]["enum"] == ["best", "last"]
    assert (schema["properties"]["n"]["minimum"], schema["properties"]["n"]["maximum"]) == (1, 20)
    assert tool.name == "read_history"
    assert "budget" in tool.description


async def test_best_of_a_maximized_study_is_the_highest() -> None:
    tool = ReadHistory(lambda: HISTORY, direction="maximize")
    assert await tool(tool.validate_arguments({"which": "best", "n": 2})) == (
        "The best 2 of 6 finished trials:\n"
        'trial 0: {"x1": 0.0, "opt": "adam"} -> value 3\n'
        'trial 4: {"x1": 4.0, "opt": "adam"} -> value 2'
    )
