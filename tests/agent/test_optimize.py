"""Tests for agent/optimize.py (with agent/study): whole studies on toy Branin, resumed, crashed, failing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from agent.conversation import Agent, AgentSettings
from agent.errors import BrokenStrategy, ProviderUnavailable, ReaskBudgetExhausted, StudyError, UserError
from agent.messages import ChatMessage
from agent.optimize import UNREACHABLE, Reporter, StudyLoop, optimize
from agent.providers.base import Completion
from agent.providers.breaker import CircuitBreaker
from agent.providers.scripted import ScriptedProvider
from agent.records import ProposalInfo, TrialRecord
from agent.space import Choice, FloatParam, SearchSpace
from agent.strategies.base import Proposal, ProposeContext
from agent.strategies.baselines import RandomStrategy
from agent.strategies.llm import LLMStrategy
from agent.strategies.registry import make_strategy
from agent.study import StudySnapshot, StudyStore
from agent.study.store import OWNERLESS_GRACE_S
from agent.tasks import build_task
from evaluators.base import EvalResult, Progress, SetupError
from tools.base import NO_TRIAL, TrialContext
from tools.evaluate_toy import EvaluateToy
from tools.read_history import ReadHistory

pytestmark = pytest.mark.anyio

TASK = build_task("toy-branin")
SPACE = TASK.space
call = ScriptedProvider.call
OUT_OF_RANGE = call("evaluate_toy", x1=99.0, x2=2.5)

Opener = Callable[..., StudyStore]


@pytest.fixture(autouse=True)
def _shipped_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_PROMPTS_DIR", raising=False)


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    """Open (or reopen) a study; a journal file by default (fast), ``sqlite=True`` for the default storage."""
    opened: list[StudyStore] = []

    def _open(
        save_dir: Path | None = None,
        *,
        space: SearchSpace = SPACE,
        sqlite: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> StudyStore:
        save_dir = save_dir or tmp_path / "run"
        store = StudyStore.open(
            save_dir=save_dir,
            study_name="branin",
            space=space,
            meta={"task": TASK.name, "strategy": "test", "seed": 0} if meta is None else meta,
            storage=None if sqlite else str(save_dir / "study.log"),
        )
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


class RecordingToy(EvaluateToy):
    """Branin that remembers every configuration it was asked to evaluate."""

    def __init__(self, fail_on: Sequence[int] = ()) -> None:
        super().__init__("branin", SPACE)
        self.seen: list[dict[str, Choice]] = []
        self.fail_on = set(fail_on)

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        self.seen.append(dict(config))
        if len(self.seen) - 1 in self.fail_on:
            raise RuntimeError("CUDA out of memory")
        return await super().evaluate(config)


def llm_strategy(store: StudyStore, answers: Sequence[str], budget: int, **settings: Any) -> LLMStrategy:
    agent = Agent(
        provider=ScriptedProvider(answers),
        eval_tool=TASK.tool,
        task_description=TASK.description,
        task_template=TASK.template,
        budget=budget,
        settings=AgentSettings(**settings),
        extra_tools=[ReadHistory(store.records)],
        events=store.events,
    )
    strategy = LLMStrategy(agent)
    return strategy


def provider_of(strategy: LLMStrategy) -> ScriptedProvider:
    provider = strategy.agent.provider
    assert isinstance(provider, ScriptedProvider)
    return provider


def events(save_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (save_dir / "events.jsonl").read_text().splitlines()]


def trial_file(save_dir: Path, number: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((save_dir / "trials" / f"trial_{number:04d}.json").read_text())
    return body


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def set_owner(store: StudyStore, number: int, owner: dict[str, Any]) -> None:
    """Pretend another process owns the RUNNING trial ``number``."""
    trial = next(t for t in store.study.get_trials(deepcopy=False) if t.number == number)
    store.study._storage.set_trial_user_attr(trial._trial_id, "worker", owner)


# ---- a random study, and resuming it ------------------------------------------------------------------


async def test_random_study_then_resume(tmp_path: Path, open_store: Opener) -> None:
    save_dir = tmp_path / "run"
    store = open_store(sqlite=True)
    assert (save_dir / "study.db").exists()
    strategy = RandomStrategy()
    summary = await optimize(tool=TASK.tool, strategy=strategy, store=store, budget=5, seed=0)

    assert (summary.n_trials, summary.n_new) == (5, 5)
    first = store.study.get_trials()
    assert [t.state for t in first] == [TrialState.COMPLETE] * 5
    assert summary.best is not None and summary.best.value == min(t.value for t in first)
    assert sorted(p.name for p in (save_dir / "trials").iterdir()) == [f"trial_{i:04d}.json" for i in range(5)]
    for t in first:
        body = trial_file(save_dir, t.number)
        assert body["trial"] == t.number
        assert body["state"] == "complete"
        assert body["value"] == t.value
        assert body["hyperparameters"] == t.params
        assert SPACE.validate_config(body["hyperparameters"]) == t.params
        assert body["source"] == "sampler"
        assert body["error"] is None
    log = events(save_dir)
    names = [e["event"] for e in log]
    assert names[0] == "study_started" and names[-1] == "study_finished"
    assert names.count("trial_started") == names.count("trial_finished") == 5
    assert all("timestamp" in e and "level" in e for e in log)
    finished = [e for e in log if e["event"] == "trial_finished"]
    assert [(e["trial"], e["state"], e["value"]) for e in finished] == [(t.number, "complete", t.value) for t in first]
    store.close()

    # The same command with a larger budget resumes: exactly the missing trials, and no replayed draws.
    store = open_store(sqlite=True)
    summary = await optimize(tool=TASK.tool, strategy=strategy, store=store, budget=8, seed=0)
    assert (summary.n_trials, summary.n_new) == (8, 3)
    trials = store.study.get_trials()
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert [t.params for t in trials[:5]] == [t.params for t in first]
    old_keys = {SPACE.key(t.params) for t in first}
    assert not old_keys & {SPACE.key(t.params) for t in trials[5:]}
    assert len(list((save_dir / "trials").iterdir())) == 8
    assert [e["event"] for e in events(save_dir)].count("study_started") == 2

    # Without the resumed seed the sampler would have replayed trial 0.
    replay = optuna.create_study(sampler=strategy.sampler(0, 0)).ask(SPACE.to_optuna())
    assert replay.params == first[0].params

    # Nothing left to do: a third run adds nothing.
    again = await optimize(tool=TASK.tool, strategy=strategy, store=store, budget=8, seed=0)
    assert (again.n_trials, again.n_new) == (8, 0)


# ---- the LLM strategy ---------------------------------------------------------------------------------


async def test_no_invalid_configuration_reaches_the_evaluator(tmp_path: Path, open_store: Opener) -> None:
    store = open_store()
    answers = [
        # trial 0: one reask, then valid
        OUT_OF_RANGE,
        call("evaluate_toy", x1=1.5, x2=2.5),
        # trial 1: invalid until the reasks run out -> the sampler draws a fallback
        "I think x1=2 would be good",
        '{"tool": "evaluate_toy", "arguments": {"x1": "2", "x2": 2.5}}',
        '{"tool": "evaluate_toy", "arguments": {"x1": NaN, "x2": 2.5}}',
        # trial 2: valid at once
        call("evaluate_toy", x1=-3.0, x2=12.0),
    ]
    strategy = llm_strategy(store, answers, budget=3, max_retries=2, on_invalid="random")
    tool = RecordingToy()
    summary = await optimize(tool=tool, strategy=strategy, store=store, budget=3)

    assert len(tool.seen) == 3
    for config in tool.seen:
        assert SPACE.validate_config(config) == config
    records = store.records()
    assert [r.source for r in records] == ["llm", "fallback", "llm"]
    assert [r.state for r in records] == ["complete"] * 3
    assert records[0].config == {"x1": 1.5, "x2": 2.5}
    assert records[2].config == {"x1": -3.0, "x2": 12.0}
    assert tool.seen == [r.config for r in records]
    body = trial_file(tmp_path / "run", 1)
    assert body["source"] == "fallback"
    assert body["reasks"] == 2
    assert body["answer"] == answers[4]
    assert [p["kind"] for p in body["conversation"]] == ["answer", "reask", "answer", "reask", "answer"]
    assert (summary.reasks, summary.fallbacks, summary.llm_calls) == (3, 1, 6)
    assert [r.number for r in store.records() if r.proposal.conversation] == [0, 1, 2]
    # The model is told its answers were replaced by a random configuration.
    last_prompt = provider_of(strategy).calls[-1].messages[-1].content
    assert "(a random configuration: your answers were invalid)" in last_prompt


async def test_stop_on_invalid_ends_the_study_without_a_trial(open_store: Opener) -> None:
    store = open_store()
    strategy = llm_strategy(store, [OUT_OF_RANGE] * 2, budget=3, max_retries=1, on_invalid="stop")
    with pytest.raises(ReaskBudgetExhausted):
        await optimize(tool=RecordingToy(), strategy=strategy, store=store, budget=3)
    assert store.study.get_trials() == []


async def test_a_proposal_the_door_refuses_is_no_trial_and_the_sampler_draws_its_round(open_store: Opener) -> None:
    class Rogue(RandomStrategy):
        """Out of range on every other round."""

        name = "rogue"

        async def propose(self, ctx: ProposeContext) -> Proposal:
            if len(ctx.records) % 2 == 0:
                return Proposal(config={"x1": 99.0, "x2": 2.5}, source="llm")
            return Proposal(config={"x1": 1.5, "x2": 2.5}, source="llm")

    shown: list[str] = []

    class Watching(Reporter):
        def trial_started(self, number: int, config: dict[str, Choice], source: str) -> None:
            shown.append(source)

    store = open_store()
    tool = RecordingToy()
    summary = await optimize(tool=tool, strategy=Rogue(), store=store, budget=4, reporter=Watching())
    assert summary.n_trials == 4 and summary.complete == 4
    records = store.records()
    assert [r.source for r in records] == ["fallback", "llm", "fallback", "llm"] == shown
    assert tool.seen == [r.config for r in records], "only what passed the door was evaluated"
    assert all(SPACE.validate_config(c) == c for c in tool.seen)
    assert records[0].proposal.reason is not None and "x1: out of range" in records[0].proposal.reason
    refused = [e for e in events(store.save_dir) if e["event"] == "proposal_refused"]
    assert [(e["strategy"], e["level"]) for e in refused] == [("rogue", "warning")] * 2


async def test_three_refused_proposals_in_a_row_stop_the_run(open_store: Opener) -> None:
    class Rogue(RandomStrategy):
        name = "rogue"

        async def propose(self, ctx: ProposeContext) -> Proposal:
            return Proposal(config={"x1": 1.0}, source="llm")

    store = open_store()
    tool = RecordingToy()
    with pytest.raises(BrokenStrategy, match="strategy 'rogue' proposed 3 configurations in a row .* x2: missing"):
        await optimize(tool=tool, strategy=Rogue(), store=store, budget=5)
    assert [(r.state, r.source) for r in store.records()] == [("complete", "fallback")] * 2
    assert len(tool.seen) == 2


async def test_resumed_llm_study_restores_the_conversation(tmp_path: Path, open_store: Opener) -> None:
    answers = [
        call("evaluate_toy", x1=-3.0, x2=12.0),
        OUT_OF_RANGE,
        call("evaluate_toy", x1=3.0, x2=2.5),
        call("evaluate_toy", x1=9.4, x2=2.5),
    ]
    # Uninterrupted: three trials in one run.
    whole = open_store(tmp_path / "whole")
    strategy = llm_strategy(whole, answers, budget=3)
    await optimize(tool=TASK.tool, strategy=strategy, store=whole, budget=3)
    expected = provider_of(strategy).calls[-1].messages

    # Interrupted after two trials, then the same command again.
    part = open_store(tmp_path / "part")
    await optimize(tool=TASK.tool, strategy=llm_strategy(part, answers[:3], budget=3), store=part, budget=2)
    part.close()
    resumed = open_store(tmp_path / "part")
    strategy = llm_strategy(resumed, answers[3:], budget=3)
    summary = await optimize(tool=TASK.tool, strategy=strategy, store=resumed, budget=3)

    assert (summary.n_trials, summary.n_new) == (3, 1)
    prompt = provider_of(strategy).calls[0].messages
    contents = [m.content for m in prompt if m.role == "assistant"]
    assert contents == [answers[0], answers[2]]  # a settled round is sent without its rejected answer
    assert prompt == expected


# ---- failures and crashes -----------------------------------------------------------------------------


async def test_an_evaluator_that_raises_makes_a_failed_trial(tmp_path: Path, open_store: Opener) -> None:
    store = open_store()
    strategy = RandomStrategy()
    tool = RecordingToy(fail_on=[1])
    summary = await optimize(tool=tool, strategy=strategy, store=store, budget=3)

    assert summary.n_trials == 3
    records = store.records()
    assert [r.state for r in records] == ["complete", "fail", "complete"]
    assert records[1].error == "RuntimeError: CUDA out of memory"
    assert records[1].value is None
    body = trial_file(tmp_path / "run", 1)
    assert (body["state"], body["value"], body["error"]) == ("fail", None, "RuntimeError: CUDA out of memory")
    assert body["hyperparameters"] == tool.seen[1]
    raised = [e for e in events(tmp_path / "run") if e["event"] == "evaluation_raised"]
    assert len(raised) == 1 and raised[0]["level"] == "error" and "CUDA out of memory" in raised[0]["traceback"]
    assert summary.best is not None and summary.best.number != 1


async def test_a_stale_running_trial_is_adopted_with_exactly_its_configuration(
    tmp_path: Path, open_store: Opener
) -> None:
    store = open_store()
    started = store.claim({"x1": 1.25, "x2": 7.5}, ProposalInfo(source="llm", answer="{}"), budget=1)
    assert started == (0, {"x1": 1.25, "x2": 7.5})
    set_owner(store, 0, {"host": socket.gethostname(), "pid": dead_pid(), "token": "gone"})
    store.close()

    store = open_store()
    assert [t.number for t in store.snapshot().stale] == [0]
    tool = RecordingToy()
    summary = await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=3)

    trials = store.study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert (summary.n_trials, summary.n_new) == (3, 3)
    assert tool.seen[0] == trials[0].params == {"x1": 1.25, "x2": 7.5}
    record = store.records()[0]
    assert (record.resumed, record.source, record.proposal.answer) == (1, "llm", "{}")
    assert [e["trial"] for e in events(tmp_path / "run") if e["event"] == "trial_adopted"] == [0]
    assert trial_file(tmp_path / "run", 0)["resumed"] == 1


@pytest.mark.parametrize("left", ["no params, no owner", "half the params", "a value outside the space"])
async def test_a_stale_trial_without_a_whole_valid_configuration_is_void_never_run(
    tmp_path: Path, open_store: Opener, left: str
) -> None:
    """An older version wrote a claim parameter by parameter; a kill could leave half of it. Nobody proposed
    what is left: it is marked void (failed, not counted) and its round proposed again."""
    store = open_store()
    kinds: dict[str, dict[str, Any]] = {"no params, no owner": {}, "half the params": {"x1": 1.0}}
    params = kinds.get(left, {"x1": 99.0, "x2": 2.5})
    dists = {name: optuna.distributions.FloatDistribution(-100.0, 100.0) for name in params}
    attrs = {} if not params else {"worker": {"host": socket.gethostname(), "pid": dead_pid(), "token": "gone"}}
    partial = optuna.trial.create_trial(state=TrialState.RUNNING, params=params, distributions=dists, user_attrs=attrs)
    partial.datetime_start = datetime.now() - timedelta(seconds=OWNERLESS_GRACE_S + 1)
    store.study.add_trial(partial)
    store.close()

    store = open_store()
    tool = RecordingToy()
    summary = await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=3)
    trials = store.study.get_trials()
    assert trials[0].state == TrialState.FAIL and "without a whole configuration" in trials[0].user_attrs["void"]
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 3
    assert (summary.n_trials, summary.n_new) == (3, 3)
    assert [r.number for r in store.records()] == [1, 2, 3]
    assert all(SPACE.validate_config(c) == c for c in tool.seen) and len(tool.seen) == 3
    assert [e["trial"] for e in events(tmp_path / "run") if e["event"] == "trial_void"] == [0]


async def test_a_live_workers_running_trial_is_left_alone(open_store: Opener) -> None:
    store = open_store()
    strategy = RandomStrategy()
    started = store.claim(None, ProposalInfo(), budget=1)
    assert started is not None
    number = started[0]
    set_owner(store, number, {"host": socket.gethostname(), "pid": os.getppid(), "token": "alive"})
    store.close()

    store = open_store()
    snapshot = store.snapshot()
    assert snapshot.stale == ()
    assert snapshot.running == 1
    summary = await optimize(tool=RecordingToy(), strategy=strategy, store=store, budget=3)
    assert summary.n_trials == 2  # the third is the other worker's, still running
    assert store.study.get_trials()[number].state == TrialState.RUNNING


# ---- opening --------------------------------------------------------------------------------------------


def test_reopening_with_another_space_or_task_raises(tmp_path: Path, open_store: Opener) -> None:
    open_store().close()
    other = SearchSpace(params={"x1": FloatParam(low=-5.0, high=5.0), "x2": FloatParam(low=0.0, high=15.0)})
    with pytest.raises(StudyError, match="another search space"):
        open_store(space=other)
    with pytest.raises(StudyError, match="belongs to task 'toy-branin', not 'toy-ackley'"):
        open_store(meta={"task": "toy-ackley"})
    open_store().close()  # the same space and task reopen fine


# ---- a provider that cannot be reached ---------------------------------------------------------------


class _Down(ScriptedProvider):
    """Answers its script, but raises ProviderUnavailable on the calls numbered in ``down``."""

    def __init__(self, answers: Sequence[str], down: set[int]) -> None:
        super().__init__(answers)
        self.down = down
        self.attempts = 0

    async def complete(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        self.attempts += 1
        if self.attempts in self.down:
            raise ProviderUnavailable("POST http://model/v1/chat/completions failed after 4 attempts: refused")
        return await super().complete(messages, **kwargs)


@pytest.mark.parametrize("strategy_name", ["llm", "llm-bo"])
async def test_a_round_without_the_model_is_a_recorded_fallback_and_the_study_goes_on(
    open_store: Opener, strategy_name: str
) -> None:
    store = open_store()
    answers = [call("evaluate_toy", x1=-3.0, x2=12.0), call("evaluate_toy", x1=3.0, x2=2.5)]
    provider = _Down(answers, down={1} if strategy_name == "llm-bo" else {2})
    strategy = make_strategy(
        strategy_name, task=TASK, budget=3, seed=0, provider=provider, records=store.records, events=store.events
    )
    summary = await optimize(tool=RecordingToy(), strategy=strategy, store=store, budget=3)
    records = store.records()
    assert summary.n_trials == 3 and summary.fallbacks == 1
    fallback = records[0] if strategy_name == "llm-bo" else records[1]
    assert fallback.source == "fallback" and fallback.state == "complete"
    assert fallback.proposal.reason is not None and "could not be reached" in fallback.proposal.reason
    if strategy_name == "llm":
        assert [r.source for r in records] == ["llm", "fallback", "llm"], "the model is asked again"
    events_seen = [e["event"] for e in events(store.save_dir)]
    assert "provider_unavailable" in events_seen


async def test_stop_on_provider_error_ends_the_study(open_store: Opener) -> None:
    store = open_store()
    strategy = make_strategy(
        "llm", task=TASK, budget=3, seed=0, provider=_Down([], down={1}), records=store.records, events=store.events
    )
    with pytest.raises(ProviderUnavailable):
        await optimize(tool=RecordingToy(), strategy=strategy, store=store, budget=3, on_provider_error="stop")
    assert store.records() == []


async def test_with_the_breaker_a_dead_model_is_asked_less_and_less(open_store: Opener) -> None:
    """The round after a failed call is proposed without calling the model at all; then 2 rounds, then 4."""
    store = open_store()
    answers = [call("evaluate_toy", x1=-3.0, x2=12.0), call("evaluate_toy", x1=3.0, x2=2.5)]
    backend = _Down(answers, down=set(range(2, 100)))
    provider = CircuitBreaker(backend)
    strategy = make_strategy(
        "llm", task=TASK, budget=12, seed=0, provider=provider, records=store.records, events=store.events
    )
    summary = await optimize(tool=RecordingToy(), strategy=strategy, store=store, budget=12)
    records = store.records()
    assert [r.source for r in records] == ["llm", *["fallback"] * 11]
    asked = [r.number for r in records if not (r.proposal.reason or "").startswith(f"{UNREACHABLE}: not asked")]
    assert asked == [0, 1, 3, 6, 11], "calls at trials 1, 3, 6, 11; 1, 2 and 4 rounds skipped in between"
    assert backend.attempts == 5 and summary.unreachable == summary.fallbacks == 11
    assert all(r.unreachable for r in records[1:])


class _Epochs(EvaluateToy):
    """Branin that reports two epochs of progress before answering."""

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        assert trial.progress is not None
        for epoch in (0.5, 1, 1.5, 2):
            trial.progress(Progress(epoch, 2, elapsed_s=epoch))
        return await super().evaluate(config)


async def test_an_evaluations_progress_reaches_the_reporter_with_its_trial(open_store: Opener) -> None:
    seen: list[tuple[int, float]] = []

    class Watching(Reporter):
        def progress(self, number: int, progress: Progress) -> None:
            seen.append((number, progress.done))

    store = open_store()
    await optimize(tool=_Epochs("branin", SPACE), strategy=RandomStrategy(), store=store, budget=2, reporter=Watching())
    assert seen == [(0, 0.5), (0, 1), (0, 1.5), (0, 2), (1, 0.5), (1, 1), (1, 1.5), (1, 2)]


class _NoData(EvaluateToy):
    calls = 0

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        type(self).calls += 1
        raise SetupError("--val_size 5000 holds out at least as many images as the 2000 training images")


async def test_a_setup_error_stops_the_study_at_its_first_occurrence(open_store: Opener) -> None:
    store = open_store()
    with pytest.raises(UserError, match="--val_size 5000"):
        await optimize(tool=_NoData("branin", SPACE), strategy=RandomStrategy(), store=store, budget=5)
    assert _NoData.calls == 1, "not once per trial of the budget"
    assert [r.state for r in store.records()] == ["running"], "nothing recorded: the trial is re-run on resume"


# ---- the study loop as an object: the seams a scheduler and a time budget extend ------------------------


async def test_wants_more_is_where_a_time_budget_stops_new_trials(open_store: Opener) -> None:
    class Deadline(StudyLoop):
        """Stops starting trials once 2 have run, as a spent time budget would; the budget says 5."""

        def wants_more(self, snapshot: StudySnapshot) -> bool:
            return super().wants_more(snapshot) and snapshot.used < 2

    store = open_store()
    tool = RecordingToy()
    summary = await Deadline(tool=tool, strategy=RandomStrategy(), store=store, budget=5).run()
    assert (summary.n_trials, len(tool.seen)) == (2, 2)
    assert [r.state for r in store.records()] == ["complete"] * 2


async def test_run_trial_is_the_per_trial_step_a_scheduler_extends(open_store: Opener) -> None:
    class Stopping(StudyLoop):
        """Decides per trial: the second is stopped early (pruned) instead of evaluated in full."""

        async def run_trial(self, number: int, config: dict[str, Choice]) -> TrialRecord:
            if number == 1:
                return self.record(number, EvalResult(state="pruned", value=None), 0.0)
            return await super().run_trial(number, config)

    store = open_store()
    tool = RecordingToy()
    summary = await Stopping(tool=tool, strategy=RandomStrategy(), store=store, budget=3).run()
    assert [r.state for r in store.records()] == ["complete", "pruned", "complete"]
    assert (summary.n_trials, summary.pruned, len(tool.seen)) == (3, 1, 2)


async def test_a_summary_counts_the_budgets_trials_apart_from_a_probe(open_store: Opener) -> None:
    store = open_store()
    loop = StudyLoop(tool=RecordingToy(), strategy=RandomStrategy(), store=store, budget=2)
    started = store.claim({"x1": 2.5, "x2": 7.5}, ProposalInfo(source="probe"), budget=None)
    assert started is not None
    store.finish(started[0], EvalResult(state="complete", value=1.0), 0.1)
    summary = await loop.run()
    assert (summary.n_trials, summary.complete, summary.probes) == (2, 2, 1)
    assert len(store.study.get_trials()) == 3, "the probe does not use the budget"
