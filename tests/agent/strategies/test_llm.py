"""Tests for agent/strategies/llm.py: the paper's loop, one answer per round, a batch round while other
trials run, each round kept in the conversation, and the sampler that draws its fallback."""

from __future__ import annotations

import json
import random

import optuna
import pytest

from agent.conversation import Agent
from agent.providers.scripted import ScriptedProvider
from agent.records import ProposalInfo, TrialRecord
from agent.strategies.base import ProposeContext
from agent.strategies.llm import LLMStrategy
from agent.tasks import build_task

pytestmark = pytest.mark.anyio
TOY = build_task("toy-branin")
call = ScriptedProvider.call


def strategy(*answers: str) -> tuple[LLMStrategy, ScriptedProvider]:
    provider = ScriptedProvider(list(answers))
    agent = Agent(
        provider=provider,
        eval_tool=TOY.tool,
        task_description=TOY.description,
        task_template=TOY.template,
        budget=5,
    )
    return LLMStrategy(agent), provider


def ctx(*records: TrialRecord) -> ProposeContext:
    return ProposeContext(space=TOY.space, records=list(records), rng=random.Random(0))


def done(number: int, config: dict[str, float], value: float) -> TrialRecord:
    return TrialRecord(number=number, config=config, state="complete", value=value, proposal=ProposalInfo(source="llm"))  # type: ignore[arg-type]


async def test_the_model_names_each_configuration_and_sees_its_earlier_rounds() -> None:
    llm, provider = strategy(call("evaluate_toy", x1=1.0, x2=2.0), call("evaluate_toy", x1=3.0, x2=4.0))
    first = await llm.propose(ctx())
    assert (first.source, first.config) == ("llm", {"x1": 1.0, "x2": 2.0})
    llm.trial_started(0, first)
    second = await llm.propose(ctx(done(0, {"x1": 1.0, "x2": 2.0}, 12.5)))
    assert second.config == {"x1": 3.0, "x2": 4.0}
    sent = [m.content for m in provider.calls[1].messages]
    assert any('"x1": 1.0' in text and '"x2": 2.0' in text for text in sent), "its first answer is in the chat"
    assert any("12.5" in text for text in sent), "and the result it got"


async def test_while_another_trial_runs_the_round_is_a_batch_that_names_it() -> None:
    batch = json.dumps({"calls": [{"tool": "evaluate_toy", "arguments": {"x1": 5.0, "x2": 5.0}}]})
    llm, provider = strategy(batch)
    running = TrialRecord(number=0, config={"x1": 1.0, "x2": 1.0}, state="running")
    (proposal,) = await llm.propose_batch(ctx(running), 1)
    assert proposal.config == {"x1": 5.0, "x2": 5.0}
    last = provider.calls[0].messages[-1].content
    assert "being evaluated now" in last and 'trial 0: {"x1": 1.0, "x2": 1.0}' in last


def test_its_fallback_sampler_is_random_and_seeded_by_the_study_so_far() -> None:
    llm, _ = strategy()
    draws = [llm.sampler(seed=1, n_existing=n) for n in (0, 0, 3)]
    assert [type(s).__name__ for s in draws] == ["RandomSampler"] * 3
    xs = [optuna.create_study(sampler=s).ask().suggest_float("x", 0.0, 1.0) for s in draws]
    assert xs[0] == xs[1] and xs[0] != xs[2], "a resumed study does not replay its earlier draws"
