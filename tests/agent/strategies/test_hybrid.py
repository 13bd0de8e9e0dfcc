"""Tests for agent/strategies/hybrid.py: the model and the optimizer sharing a study, on scripted models."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.bench import best_configs
from agent.messages import ChatMessage
from agent.optimize import optimize
from agent.providers.scripted import ConfigProvider, ScriptedProvider
from agent.records import TrialRecord
from agent.strategies.base import ProposeContext
from agent.strategies.credit import Arm, ArmCredit, Credit, arm_of
from agent.strategies.hybrid import CANDIDATES, HybridStrategy
from agent.strategies.registry import make_strategy
from agent.strategies.surrogate import SurrogateModel
from agent.study import StudyStore
from agent.tasks import Task, build_task

pytestmark = pytest.mark.anyio
call = ScriptedProvider.call


def open_store(tmp_path: Path, task: Task) -> StudyStore:
    return StudyStore.open(
        save_dir=tmp_path, study_name="h", space=task.space, meta={}, storage=str(tmp_path / "s.log")
    )


async def run(tmp_path: Path, task: Task, provider: object, budget: int) -> tuple[list[TrialRecord], StudyStore]:
    store = open_store(tmp_path, task)
    try:
        strategy = make_strategy(
            "hybrid", task=task, budget=budget, seed=0, provider=provider, records=store.records, events=store.events
        )  # type: ignore[arg-type]
        assert isinstance(strategy, HybridStrategy)
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=budget)
        return store.records(), store
    finally:
        store.close()


def takes_the_first(messages: Sequence[ChatMessage]) -> str:
    """A model that opens with a configuration of its own, then always takes the optimizer's first candidate."""
    if "Candidates:" in messages[-1].content:
        return call("take", candidate=1)
    return call("evaluate_toy", x1=2.5, x2=2.5)


async def test_the_model_opens_the_study_then_shares_the_rounds(tmp_path: Path) -> None:
    task = build_task("toy-branin")
    provider = ScriptedProvider([takes_the_first] * 12)
    records, _ = await run(tmp_path, task, provider, budget=12)
    assert records[0].source == "llm" and records[0].config == {"x1": 2.5, "x2": 2.5}
    assert records[0].proposal.decision == {"round": "model", "choice": "own"}
    later = [r.proposal.decision for r in records[1:]]
    assert all({"share", "credit", "round"} <= set(d) for d in later)
    # Within the bandit's bounds, scaled by the part of the budget left (fewer model rounds near the end).
    assert all(0.1 * (12 - n) / 12 - 1e-3 <= d["share"] <= 0.9 * (12 - n) / 12 + 1e-3 for n, d in enumerate(later, 1))
    model_rounds = [r for r in records[1:] if r.proposal.decision["round"] == "model"]
    assert model_rounds, "with a share of about a third, some rounds of 11 go to the model"
    for r in model_rounds:
        assert r.source == "llm" and r.proposal.decision["choice"] == "candidate 1"
        assert arm_of(r) == "optimizer", "taking the optimizer's own next trial earns the model nothing"
        state = r.proposal.conversation[0].content
        assert state.startswith(f"Trial {r.number} of 12. Candidates:")
        assert state.count(" ~ ") == CANDIDATES
    optimizer_rounds = [r for r in records[1:] if r.proposal.decision["round"] == "optimizer"]
    assert all(r.source in ("surrogate", "random") and not r.proposal.usage for r in optimizer_rounds)
    assert len(provider.calls) == 1 + len(model_rounds)


async def test_the_prompt_only_grows_so_a_cache_reuses_it(tmp_path: Path) -> None:
    """Everything before a round's own text is the previous prompt's, unchanged: llama.cpp's cache reuses it."""
    task = build_task("toy-branin")
    provider = ScriptedProvider([takes_the_first] * 16)
    await run(tmp_path, task, provider, budget=16)  # the bandit gives this seed's study 3 model rounds after the first
    prompts = [c.messages for c in provider.calls]
    assert len(prompts) >= 3
    for before, after in zip(prompts, prompts[1:], strict=False):
        assert before[0] == after[0], "the system prompt never changes"
        shared = before[1].content.rsplit("\n\n", 1)[0]  # the previous prompt without its round's own text
        assert after[1].content.startswith(shared)
        assert "Results, one line per trial" in shared
    last = prompts[-1][1].content
    assert "\n2.5,2.5 -> " in last and last.count(" *") >= 1  # results listed in a few tokens, the model's marked


async def test_own_configurations_are_moved_onto_the_grid_and_repeats_reasked(tmp_path: Path) -> None:
    task = build_task("hpobench-kc1")
    first = {"alpha": 1.1e-4, "batch_size": 30, "depth": 2, "learning_rate_init": 1.2e-3, "width": 250}

    def answer(messages: Sequence[ChatMessage]) -> str:
        return call("evaluate_tabular", **first)  # the same configuration every time: a repeat from then on

    provider = ScriptedProvider([answer] * 40)
    records, _ = await run(tmp_path, task, provider, budget=6)
    grid = records[0].config
    assert grid == task.space.validate_config(grid) and grid["learning_rate_init"] != first["learning_rate_init"]
    again = [r for r in records[1:] if r.proposal.decision.get("round") == "model"]
    for r in again:  # asked again and again, the reasks ran out: the optimizer's choice instead
        assert r.source == "fallback" and r.proposal.reasks == 3
        assert "already evaluated in trial 0" in r.proposal.conversation[2].content
    assert len({task.space.key(r.config) for r in records}) == len(records)


async def test_a_strong_model_takes_over_and_a_useless_one_fades(tmp_path: Path) -> None:
    """Stand-ins of known quality (the bench's): the best 1% of the table, or random configurations."""
    task = build_task("hpobench-kc1", seed=0)
    best = await best_configs(task)
    strong, _ = await run(
        tmp_path / "strong", task, ConfigProvider("evaluate_tabular", lambda r: dict(r.choice(best))), 16
    )
    assert strong[15].proposal.decision["share"] / (1 / 16) > 0.5, "before the end-of-budget scaling"
    useless, _ = await run(tmp_path / "useless", task, ConfigProvider("evaluate_tabular", task.space.sample), 24)
    shares = [r.proposal.decision["share"] for r in useless[1:]]
    assert shares[-1] < shares[0]
    assert json.dumps(useless[-1].proposal.decision)  # stored as JSON


class ModelRounds(ArmCredit):
    """A bandit that gives every round to the model (what the model is shown is the test's subject)."""

    def share(self, credit: dict[Arm, Credit], rng: random.Random, left: float = 1.0) -> float:
        return 1.0


def branin(x1: float, x2: float) -> float:
    return (
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )


def branin_trials(case: str) -> list[TrialRecord]:
    """Eight Branin trials: ``cost``: complete, their recorded seconds growing with ``x2`` (1 s to ~400 s);
    ``rungs``: none complete, six stopped at step 3 (their value there is Branin's) and two at step 1."""
    rng = random.Random(7)
    space = build_task("toy-branin").space
    out = []
    for i in range(8):
        c = space.sample(rng)
        x1, x2 = float(c["x1"]), float(c["x2"])  # type: ignore[arg-type]
        v = branin(x1, x2)
        if case == "cost":
            out.append(TrialRecord(number=i, config=c, state="complete", value=v, cost_s=math.exp(0.4 * x2)))
        else:
            curve = {1: v + 5.0, 3: v} if i < 6 else {1: v + 5.0}
            out.append(TrialRecord(number=i, config=c, state="pruned", curve=curve))
    return out


@pytest.mark.parametrize("case", ["cost", "rungs"])
async def test_the_first_candidate_shown_is_the_trial_the_optimizers_round_would_run(tmp_path: Path, case: str) -> None:
    """One door for the optimizer's rounds and the candidates ``hybrid`` shows the model: under a time budget
    (expected improvement per second) and fitting the highest rung (``rungs``, without the model over steps), the
    model's first candidate is the optimizer's own next trial; the plain surrogate on the raw trials (what was
    shown before) picks another on some seed."""
    task = build_task("toy-branin")
    records = branin_trials(case)
    time_left = 0.9 if case == "cost" else None
    store = open_store(tmp_path, task)

    def hybrid() -> HybridStrategy:
        provider = ScriptedProvider([takes_the_first])
        strategy = make_strategy(
            "hybrid", task=task, budget=30, seed=0, provider=provider, records=store.records, events=store.events
        )
        assert isinstance(strategy, HybridStrategy)
        strategy.rungs, strategy.fidelity, strategy.credit = case == "rungs", case != "rungs", ModelRounds()
        return strategy

    def context(s: int) -> ProposeContext:
        return ProposeContext(space=task.space, records=records, rng=random.Random(s), time_left=time_left)

    old_door_differs = []
    try:
        for s in range(3):
            ctx = context(s)
            ctx.rng.random()  # the draw a model round takes before the optimizer proposes
            config, how = hybrid()._surrogate_config(ctx)
            assert ("cost_weight" in how) == (case == "cost"), how
            shown = await hybrid().propose(context(s))
            assert shown.decision["round"] == "model" and shown.decision["choice"] == "candidate 1", shown.decision
            assert shown.config is not None and task.space.key(shown.config) == task.space.key(config)
            ctx = context(s)
            ctx.rng.random()
            old = SurrogateModel().proposal(task.space, records, ctx.rng)[0]
            old_door_differs.append(task.space.key(old) != task.space.key(config))
    finally:
        store.close()
    assert any(old_door_differs), "the trials here tell the two doors apart"
