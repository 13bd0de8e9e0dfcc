"""Tests for agent/strategies/registry.py: every model-driven strategy shows numeric grids as ranges and moves the
model's answer onto the grid (the paper's loop too, since issue 13: constrained decoding broke its grids)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import parse_strategies
from agent.errors import UserError
from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.strategies.registry import list_strategies, make_strategy
from agent.study import StudyStore
from agent.tasks import build_task

STRATEGIES = [s.name for s in list_strategies()]
LLM_STRATEGIES = [s.name for s in list_strategies() if s.needs_model]

pytestmark = pytest.mark.anyio
call = ScriptedProvider.call
OFF_GRID = {"alpha": 1.1e-4, "batch_size": 30, "depth": 2, "learning_rate_init": 1.2e-3, "width": 250}


@pytest.mark.parametrize("name", sorted(LLM_STRATEGIES))
async def test_the_model_sees_ranges_and_its_answer_lands_on_the_grid(tmp_path: Path, name: str) -> None:
    task = build_task("hpobench-kc1")
    provider = ScriptedProvider([call("evaluate_tabular", **OFF_GRID)] * 4)
    store = StudyStore.open(
        save_dir=tmp_path, study_name="s", space=task.space, meta={}, storage=str(tmp_path / "s.log")
    )
    try:
        strategy = make_strategy(
            name, task=task, budget=1, seed=0, provider=provider, records=store.records, events=store.events
        )
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=1)
        (record,) = store.records()
    finally:
        store.close()
    prompt = "\n".join(m.content for m in provider.calls[0].messages)
    assert "- learning_rate_init: a number in [1e-5, 1], log scale" in prompt
    assert "one of 1e-05" not in prompt and "one of 1e-5" not in prompt
    assert record.source == "llm"
    assert record.config == task.space.validate_config(record.config)
    assert record.config["learning_rate_init"] == pytest.approx(0.0016681006)  # the grid value nearest 1.2e-3 in log
    assert record.config["batch_size"] in task.space.params["batch_size"].choices  # type: ignore[union-attr]


def test_every_strategy_has_a_name_the_cli_accepts_and_says_whether_it_asks_a_model() -> None:
    assert set(STRATEGIES) == {"hybrid", "llm-bo", "llm", "bo", "random", "tpe"}
    assert set(LLM_STRATEGIES) == {"hybrid", "llm-bo", "llm"}
    assert parse_strategies(",".join(STRATEGIES)) == tuple(STRATEGIES)
    with pytest.raises(UserError, match="nope"):
        parse_strategies("random,nope")
