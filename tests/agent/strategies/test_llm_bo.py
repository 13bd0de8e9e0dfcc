"""Tests for agent/strategies/bo.py and llm_bo.py: ``bo`` and ``llm-bo`` in whole studies (scripted model,
real storage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.executors import make_executor
from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.strategies.bo import BOStrategy
from agent.strategies.llm_bo import LLMBOStrategy
from agent.strategies.registry import DEFAULT_STRATEGY, make_strategy
from agent.study import StudyStore
from agent.tasks import build_task

pytestmark = pytest.mark.anyio

call = ScriptedProvider.call


def open_store(path: Path, task: str, strategy: str) -> StudyStore:
    return StudyStore.open(
        save_dir=path,
        study_name="s",
        space=build_task(task).space,
        meta={"task": task, "strategy": strategy, "seed": 0},
        storage=str(path / "study.log"),
    )


def test_llm_bo_is_the_default() -> None:
    assert DEFAULT_STRATEGY == "llm-bo"


async def test_llm_bo_asks_the_model_once_then_the_surrogate_takes_over(tmp_path: Path) -> None:
    task = build_task("hpobench-kc1", seed=3)
    first = {"alpha": 0.00027825593, "batch_size": 64, "depth": 2, "learning_rate_init": 0.0016681006, "width": 101}
    provider = ScriptedProvider([call("evaluate_tabular", **first)])
    store = open_store(tmp_path, task.name, "llm-bo")
    strategy = make_strategy(
        "llm-bo", task=task, budget=8, seed=3, provider=provider, records=store.records, events=store.events
    )
    assert isinstance(strategy, LLMBOStrategy)
    summary = await optimize(tool=task.tool, strategy=strategy, store=store, budget=8, seed=3)
    records = store.records()
    assert summary.n_trials == 8 and len(provider.calls) == 1
    assert records[0].config == first and records[0].source == "llm"
    assert [r.source for r in records[1:]] == ["random"] * 2 + ["surrogate"] * 5  # its startup is random
    assert len({task.space.key(r.config) for r in records}) == 8
    # The model was asked for a practitioner's starting point, in the study's stored conversation.
    prompt = provider.calls[0].messages[-1].content
    assert "experienced practitioner" in prompt
    # ...and saw the grids as ranges, written as the model should write them back (1e-8, not 1e-08).
    task_prompt = "\n".join(m.content for m in provider.calls[0].messages)
    assert "alpha: a number in [1e-8, 1], log scale" in task_prompt
    assert "batch_size: an integer in [4, 256], log scale" in task_prompt
    assert [r.number for r in store.records() if r.proposal.conversation] == [0]
    store.close()


async def test_an_invalid_first_answer_falls_back_and_the_study_goes_on(tmp_path: Path) -> None:
    task = build_task("toy-branin")
    provider = ScriptedProvider(["not json"] * 4)
    store = open_store(tmp_path, task.name, "llm-bo")
    strategy = make_strategy(
        "llm-bo", task=task, budget=4, seed=0, provider=provider, records=store.records, events=store.events
    )
    summary = await optimize(tool=task.tool, strategy=strategy, store=store, budget=4, seed=0)
    assert summary.n_trials == 4
    assert [r.source for r in store.records()] == ["fallback", "random", "random", "surrogate"]
    store.close()


async def test_bo_resumes_without_repeating(tmp_path: Path) -> None:
    task = build_task("nb201-cifar10", seed=1)
    store = open_store(tmp_path, task.name, "bo")
    strategy = BOStrategy()
    await optimize(tool=task.tool, strategy=strategy, store=store, budget=4, seed=1)
    store.close()
    store = open_store(tmp_path, task.name, "bo")
    again = BOStrategy()  # a new process: nothing in memory, everything from storage
    summary = await optimize(tool=task.tool, strategy=again, store=store, budget=9, seed=1)
    records = store.records()
    assert summary.n_trials == 9
    assert len({task.space.key(r.config) for r in records}) == 9
    store.close()


async def test_bo_batches_hold_distinct_configurations(tmp_path: Path) -> None:
    task = build_task("toy-branin")
    store = open_store(tmp_path, task.name, "bo")
    strategy = BOStrategy()
    executor = make_executor("local", workers=3)
    try:
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=9, seed=0, executor=executor, batch=3)
    finally:
        executor.close()
    keys = [task.space.key(r.config) for r in store.records()]
    assert len(keys) == 9 and len(set(keys)) == 9
    store.close()
