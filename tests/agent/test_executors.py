"""Tests for agent/executors.py and the study loop's batches: parallel evaluations, batch answers, Ray tasks."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import optuna
import pytest
from optuna.trial import TrialState

from agent.conversation import Agent, AgentSettings
from agent.executors import LocalExecutor
from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.strategies.llm import LLMStrategy
from agent.study import StudyStore, open_storage
from agent.tasks import Task, build_task
from evaluators.base import EvalResult
from tools.base import NO_TRIAL, TrialContext
from tools.evaluate_toy import EvaluateToy

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
TOY = build_task("toy-branin")
RAY_MISSING = importlib.util.find_spec("ray") is None


def batch(tool: str, *configs: dict[str, Any]) -> str:
    return json.dumps({"calls": [{"tool": tool, "arguments": c} for c in configs]})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StudyStore]:
    s = StudyStore.open(
        save_dir=tmp_path, study_name="b", space=TOY.space, meta={"task": TOY.name}, storage=str(tmp_path / "s.log")
    )
    yield s
    s.close()


def llm(task: Task, store: StudyStore, answers: list[str], budget: int, **settings: Any) -> LLMStrategy:
    agent = Agent(
        provider=ScriptedProvider(answers),
        eval_tool=task.tool,
        task_description=task.description,
        task_template=task.template,
        budget=budget,
        settings=AgentSettings(**settings),
        events=store.events,
    )
    strategy = LLMStrategy(agent)
    return strategy


class SlowToy(EvaluateToy):
    """Branin that takes ``seconds`` and counts how many evaluations overlap."""

    def __init__(self, seconds: float) -> None:
        super().__init__("branin", TOY.space)
        self.seconds = seconds
        self.running = self.most = 0

    async def evaluate(self, config: dict[str, Any], trial: TrialContext = NO_TRIAL) -> EvalResult:
        self.running += 1
        self.most = max(self.most, self.running)
        await anyio.sleep(self.seconds)
        self.running -= 1
        return await super().evaluate(config)


async def test_a_batch_answer_becomes_k_trials_and_duplicates_are_reasked(store: StudyStore) -> None:
    a, b, c, d = ({"x1": float(i), "x2": 2.0} for i in range(4))
    answers = [
        batch("evaluate_toy", a, a),  # the same configuration twice: reasked
        batch("evaluate_toy", a, b),
        batch("evaluate_toy", b, c),  # b repeats trial 1: reasked
        batch("evaluate_toy", c, d),
    ]
    strategy = llm(TOY, store, answers, budget=4)
    tool = SlowToy(0.05)
    summary = await optimize(tool=tool, strategy=strategy, store=store, budget=4, executor=LocalExecutor(2), batch=2)

    assert summary.n_trials == 4
    assert [t.params for t in store.study.get_trials()] == [a, b, c, d]
    assert tool.most == 2, "both trials of a batch were evaluated at once"
    calls = strategy.agent.provider.calls  # type: ignore[attr-defined]
    assert "the same configuration as call 0 of this answer" in calls[1].messages[-1].content
    assert "already evaluated in trial 1" in calls[3].messages[-1].content
    assert calls[0].json_schema["properties"]["calls"]["minItems"] == 2
    first = store.records()[0]
    assert first.proposal.reasks == 1 and len(first.proposal.usage) == 2
    assert store.records()[1].proposal.usage == ()  # the usage is counted once, on trial 0


async def test_pending_trials_are_shown_to_the_model(store: StudyStore) -> None:
    # Nothing pending yet: the plain answer; then, with trial 0 in flight, the batch format listing it.
    answers = [ScriptedProvider.call("evaluate_toy", x1=1.0, x2=1.0), batch("evaluate_toy", {"x1": 2.0, "x2": 2.0})]
    strategy = llm(TOY, store, answers, budget=2)
    await optimize(tool=SlowToy(0.3), strategy=strategy, store=store, budget=2, executor=LocalExecutor(2))
    second = strategy.agent.provider.calls[1].messages[-1].content  # type: ignore[attr-defined]
    assert "being evaluated now" in second and 'trial 0: {"x1": 1.0, "x2": 1.0}' in second


class Gated(EvaluateToy):
    """Branin whose first ``width`` evaluations wait until all of them run at once; then the last of them
    returns, and the others only once the next evaluation has started and seen the study."""

    def __init__(self, store: StudyStore, width: int) -> None:
        super().__init__("branin", TOY.space)
        self.store, self.width = store, width
        self.running = self.most = 0
        self.numbers: list[int | None] = []
        self.seen: dict[int, TrialState] = {}
        self.all_running, self.next_started = anyio.Event(), anyio.Event()

    async def evaluate(self, config: dict[str, Any], trial: TrialContext = NO_TRIAL) -> EvalResult:
        k = len(self.numbers)
        self.numbers.append(trial.number)
        self.running += 1
        self.most = max(self.most, self.running)
        if k < self.width:
            if self.running == self.width:
                self.all_running.set()
            await self.all_running.wait()  # never set unless `width` evaluations overlap
            if k < self.width - 1:
                await self.next_started.wait()
        elif k == self.width:
            self.seen = {t.number: t.state for t in self.store.study.get_trials()}
            self.next_started.set()
        self.running -= 1
        return await super().evaluate(config)


async def test_workers_overlap_and_record_each_result_as_it_finishes(store: StudyStore) -> None:
    """Three evaluations run at once; the one that finishes first is recorded, and its slot given to the next
    trial, while the two before it still run."""
    from agent.strategies.baselines import RandomStrategy

    tool = Gated(store, width=3)
    await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=6, executor=LocalExecutor(3))
    assert tool.most == 3
    first, second, third = tool.numbers[:3]
    assert first is not None and second is not None and third is not None
    assert (tool.seen[first], tool.seen[second], tool.seen[third]) == (
        TrialState.RUNNING,
        TrialState.RUNNING,
        TrialState.COMPLETE,
    )
    assert [t.state for t in store.study.get_trials()] == [TrialState.COMPLETE] * 6


@pytest.mark.skipif(
    RAY_MISSING, reason="Ray is an extra: pip install -e '.[ray]' (the README's test command and CI install it)"
)
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_tabular_study_on_a_local_ray_instance_with_batches_of_two(tmp_path: Path) -> None:
    """The CLI with --executor ray: a private Ray instance (2 CPUs, 127.0.0.1), two trials in flight."""
    save = tmp_path / "ray"
    argv = ["--task", "hpobench-kc1", "--strategy", "random", "--budget", "8", "--save_dir", str(save)]
    argv += ["--executor", "ray", "--workers", "2", "--batch", "2", "--cpus-per-trial", "1", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "agent", *argv], capture_output=True, cwd=ROOT, env=env, timeout=280)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    study = optuna.load_study(
        study_name="hpobench-kc1-random-seed0", storage=open_storage(f"sqlite:///{save}/study.db")
    )
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(8))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(list((save / "trials").glob("trial_*.json"))) == 8


@pytest.mark.skipif(
    RAY_MISSING, reason="Ray is an extra: pip install -e '.[ray]' (the README's test command and CI install it)"
)
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_llm_batches_evaluated_as_ray_tasks(tmp_path: Path) -> None:
    from agent.executors import RayExecutor

    task = build_task("hpobench-kc1")
    store = StudyStore.open(
        save_dir=tmp_path, study_name="r", space=task.space, meta={"task": task.name}, storage=str(tmp_path / "s.log")
    )
    grid = {name: p.choices for name, p in task.space.params.items()}  # type: ignore[union-attr]
    configs = [{name: choices[i % len(choices)] for name, choices in grid.items()} for i in range(4)]
    answers = [batch("evaluate_tabular", configs[0], configs[1]), batch("evaluate_tabular", configs[2], configs[3])]
    strategy = llm(task, store, answers, budget=4)
    executor = RayExecutor(workers=2)
    try:
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=4, executor=executor, batch=2)
    finally:
        executor.close()
        store.close()
    trials = store.study.get_trials()
    assert [t.params for t in trials] == configs
    assert all(t.state == TrialState.COMPLETE and 0 <= t.value <= 1 for t in trials)  # type: ignore[operator]


class SubprocessToy(EvaluateToy):
    """Branin in a worker process, saying which process ran it."""

    runs_in_subprocess = True

    async def evaluate(self, config: dict[str, Any], trial: TrialContext = NO_TRIAL) -> EvalResult:
        result = await super().evaluate(config)
        assert result.value is not None
        return EvalResult(value=result.value, metrics={"pid": os.getpid()})


@pytest.mark.slow
async def test_tools_that_ask_for_it_run_in_worker_processes(store: StudyStore) -> None:
    from agent.strategies.baselines import RandomStrategy

    strategy = RandomStrategy()
    tool = SubprocessToy("branin", TOY.space)
    await optimize(tool=tool, strategy=strategy, store=store, budget=4, executor=LocalExecutor(2))
    pids = {r.metrics["pid"] for r in store.records()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert [r.state for r in store.records()] == ["complete"] * 4


class SteppedToy(EvaluateToy):
    """Reports ``x1`` at steps 1..3 in a worker process, saying which process ran it; stops when told to."""

    runs_in_subprocess = True
    max_step = 3

    async def evaluate(self, config: dict[str, Any], trial: TrialContext = NO_TRIAL) -> EvalResult:
        value = float(config["x1"])
        for step in (1, 2, 3):
            if trial.report is not None and trial.report(step, value):
                return EvalResult(value=value, state="pruned", metrics={"pid": os.getpid()})
        return EvalResult(value=value, metrics={"pid": os.getpid()})


SCHEDULED = [{"x1": 1.0, "x2": 1.0}, {"x1": 8.0, "x2": 1.0}, {"x1": 2.0, "x2": 1.0}, {"x1": 9.0, "x2": 1.0}]


async def _scheduled_study(store: StudyStore, executor: Any) -> Any:
    """Four trials, two at a time, under Optuna's ThresholdPruner (x1 > 5 stops at step 1)."""
    strategy = llm(TOY, store, [batch("evaluate_toy", *SCHEDULED[:2]), batch("evaluate_toy", *SCHEDULED[2:])], 4)
    pruner = optuna.pruners.ThresholdPruner(upper=5.0)
    tool = SteppedToy("branin", TOY.space)
    return await optimize(
        tool=tool, strategy=strategy, store=store, budget=4, executor=executor, batch=2, pruner=pruner
    )


def _assert_scheduled_elsewhere(store: StudyStore, summary: Any) -> None:
    trials = store.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED] * 2
    assert [t.intermediate_values for t in trials] == [
        {1: 1.0, 2: 1.0, 3: 1.0},
        {1: 8.0},
        {1: 2.0, 2: 2.0, 3: 2.0},
        {1: 9.0},
    ]
    assert os.getpid() not in {r.metrics["pid"] for r in store.records()}
    assert [r.step for r in store.records()] == [3, 1, 3, 1]
    assert (summary.n_trials, summary.complete, summary.pruned) == (4, 2, 2), "a stopped trial counts one"


async def test_worker_processes_report_their_steps_and_are_pruned_by_the_study(store: StudyStore) -> None:
    summary = await _scheduled_study(store, LocalExecutor(2))
    _assert_scheduled_elsewhere(store, summary)


async def test_a_reporter_of_a_study_in_memory_keeps_its_trial_in_this_process() -> None:
    from agent.study.reporting import StepReporter

    study = optuna.create_study()
    trial = study.ask()
    report = StepReporter(
        study_name=study.study_name, trial_id=trial._trial_id, number=0, pruner=optuna.pruners.NopPruner(), study=study
    )
    tool = SteppedToy("branin", TOY.space)
    result = await LocalExecutor(2).evaluate(tool, {"x1": 1.0, "x2": 1.0}, TrialContext(number=0, report=report))
    assert result.metrics["pid"] == os.getpid() and study.trials[0].intermediate_values == {1: 1.0, 2: 1.0, 3: 1.0}


@pytest.mark.skipif(
    RAY_MISSING, reason="Ray is an extra: pip install -e '.[ray]' (the README's test command and CI install it)"
)
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_ray_tasks_report_their_steps_and_are_pruned_by_the_study(tmp_path: Path) -> None:
    from agent.executors import RayExecutor

    store = StudyStore.open(save_dir=tmp_path, study_name="ray", space=TOY.space, meta={"task": TOY.name})
    executor = RayExecutor(workers=2)
    try:
        summary = await _scheduled_study(store, executor)
    finally:
        executor.close()
        store.close()
    _assert_scheduled_elsewhere(store, summary)


async def test_a_deadline_alone_keeps_worker_processes(store: StudyStore) -> None:
    from agent.deadline import StudyClock
    from agent.strategies.baselines import RandomStrategy

    tool = SubprocessToy("branin", TOY.space)
    clock = StudyClock(3600.0)  # a time budget, no scheduler: the trials report to nobody in this process
    await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=2, executor=LocalExecutor(2), clock=clock)
    assert os.getpid() not in {r.metrics["pid"] for r in store.records()}, "not moved into threads"
