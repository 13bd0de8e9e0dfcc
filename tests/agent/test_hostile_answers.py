"""The hostile answers corpus (tests/data/hostile_answers.json) run through whole study rounds.

Each answer is played by a scripted model inside ``optimize``: it must end as a valid configuration after a
reask, or (when the model keeps answering it) as a recorded fallback trial. Never an exception out of the
loop, never an invalid value in the evaluator, never code executed. The suite prints how many cases ran.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agent.conversation import Agent, AgentSettings
from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.records import TrialRecord
from agent.space import Choice, SearchSpace
from agent.strategies.llm import LLMStrategy
from agent.study import StudyStore
from agent.tasks import CIFAR_SPACE, build_task
from evaluators.base import EvalResult
from tools.base import NO_TRIAL, EvaluationTool, TrialContext
from tools.read_history import ReadHistory

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "hostile_answers.json").read_text())["cases"]
#: Read by the terminal summary hook in tests/conftest.py.
RAN: list[str] = []


def _text(case: dict[str, Any]) -> str:
    if "text" in case:
        return str(case["text"])
    r = case["repeat"]
    return str(r["text"]) * int(r["times"]) + str(r.get("then", "")) * int(r.get("then_times", 0))


class _Recording(EvaluationTool):
    """Records every configuration it is asked to evaluate, and checks it against the space."""

    name: ClassVar[str] = "evaluate_toy"
    description: ClassVar[str] = "evaluate"

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        self.seen: list[dict[str, Choice]] = []

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        assert self.space.validate_config(config) == config, f"invalid configuration reached the evaluator: {config}"
        self.seen.append(dict(config))
        return EvalResult(value=1.0)


def _tool(space_name: str) -> _Recording:
    if space_name == "toy":
        return type("Toy", (_Recording,), {"name": "evaluate_toy"})(build_task("toy-branin").space)
    if space_name == "cifar":
        return type("Cifar", (_Recording,), {"name": "train_cifar"})(CIFAR_SPACE)
    return type("Tab", (_Recording,), {"name": "evaluate_tabular"})(build_task("hpobench-kc1").space)


def _valid(tool: _Recording) -> str:
    import random

    return json.dumps({"tool": tool.name, "arguments": tool.space.sample(random.Random(0))})


async def _round(tmp_path: Path, tool: _Recording, answers: list[str]) -> tuple[TrialRecord, ScriptedProvider]:
    provider = ScriptedProvider(answers)
    store = StudyStore.open(
        save_dir=tmp_path, study_name="h", space=tool.space, meta={}, storage=f"{tmp_path / 'journal.log'}"
    )
    agent = Agent(
        provider=provider,
        eval_tool=tool,
        task_description="A hostile model.",
        task_template="task_tabular",
        budget=1,
        settings=AgentSettings(max_retries=3, on_invalid="random"),
        extra_tools=[ReadHistory(store.records)],
    )
    strategy = LLMStrategy(agent)
    try:
        await optimize(tool=tool, strategy=strategy, store=store, budget=1)
        (record,) = store.records()
        return record, provider
    finally:
        store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
async def test_hostile_answer_is_reasked_then_a_valid_configuration(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tool = _tool(case["space"])
    record, provider = await _round(tmp_path, tool, [_text(case), _valid(tool)])
    assert record.source == "llm" and record.proposal.reasks == 1, "the hostile answer must be reasked once"
    assert len(tool.seen) == 1
    reask = provider.calls[1].messages[-1]
    assert reask.role == "user" and "Fix the errors and try again" in reask.content
    assert len(reask.content) < 5_000, "the reask never echoes an enormous answer"
    assert not [n for n in os.listdir(tmp_path) if n.startswith("PWNED")], "code in an answer must never run"
    RAN.append(case["id"])


@pytest.mark.anyio
@pytest.mark.parametrize("case", CORPUS[::6], ids=[c["id"] for c in CORPUS[::6]])
async def test_a_model_that_keeps_answering_it_gets_a_recorded_fallback(case: dict[str, Any], tmp_path: Path) -> None:
    tool = _tool(case["space"])
    record, provider = await _round(tmp_path, tool, [_text(case)] * 4)
    assert len(provider.calls) == 4
    assert record.source == "fallback" and record.proposal.reasks == 3
    assert record.state == "complete"
    assert len(tool.seen) == 1, "the fallback configuration is random, valid, and evaluated once"
