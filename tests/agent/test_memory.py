"""Tests for agent/memory.py: serialisable parts, and the exact prompts of both renderings (snapshots).

Regenerate the snapshots with ``UPDATE_SNAPSHOTS=1 pytest tests/agent/test_memory.py``, then read the diff: the
files under ``tests/agent/snapshots/`` are exactly what the model sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.conversation import Agent, AgentSettings
from agent.memory import HistoryMode, Memory, Round, settled
from agent.messages import (
    AnswerPart,
    ChatMessage,
    Part,
    ReaskPart,
    ToolReturnPart,
    Usage,
    UserPart,
    dump_parts,
    load_parts,
)
from agent.providers.scripted import ScriptedProvider
from agent.records import ProposalInfo, TrialRecord
from agent.tasks import build_task
from evaluators.toy import evaluate_toy
from tools.read_history import ReadHistory

SNAPSHOTS = Path(__file__).parent / "snapshots"
TASK = build_task("toy-branin")
BUDGET = 3
call = ScriptedProvider.call


@pytest.fixture(autouse=True)
def _shipped_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_PROMPTS_DIR", raising=False)


def render(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(f"--- {m.role}\n{m.content}" for m in messages) + "\n"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS", "") not in ("", "0"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing; run with UPDATE_SNAPSHOTS=1 to create it"
    expected = path.read_text()
    assert text == expected, f"prompt differs from {path}; if intended, rerun with UPDATE_SNAPSHOTS=1 and review"


def make_agent(
    provider: ScriptedProvider, records: Sequence[TrialRecord], history: HistoryMode = "chat", budget: int = BUDGET
) -> Agent:
    return Agent(
        provider=provider,
        eval_tool=TASK.tool,
        task_description=TASK.description,
        task_template=TASK.template,
        budget=budget,
        seed=0,
        settings=AgentSettings(history=history),
        extra_tools=[ReadHistory(lambda: records)],
    )


def finished(number: int, x1: float, x2: float, source: str = "llm") -> TrialRecord:
    config = {"x1": x1, "x2": x2}
    result = evaluate_toy("branin", config)
    return TrialRecord(
        number=number,
        config=config,
        state="complete",
        value=result.value,
        metrics=result.metrics,
        proposal=ProposalInfo(source=source),
    )


async def scenario() -> tuple[list[Round], list[TrialRecord]]:
    """Toy Branin, budget 3, two finished trials; round 2 reads the history once and is reasked once."""
    records: list[TrialRecord] = []
    provider = ScriptedProvider(
        [
            call("evaluate_toy", x1=-3.0, x2=12.0),
            call("read_history", which="best", n=3),
            '{"tool": "evaluate_toy", "arguments": {"x1": 20, "x2": 2.5}}',
            call("evaluate_toy", x1=3.0, x2=2.5),
        ]
    )
    agent = make_agent(provider, records)
    first = await agent.propose(records)
    records.append(finished(0, -3.0, 12.0))
    second = await agent.propose(records)
    assert second.reasks == 1
    records.append(finished(1, 3.0, 2.5))
    return [Round(trial=0, parts=tuple(first.parts)), Round(trial=1, parts=tuple(second.parts))], records


# ---- parts --------------------------------------------------------------------------------------------

PARTS: list[Part] = [
    UserPart(content="the budget allows 3 more evaluations"),
    AnswerPart(
        content='{"tool": "evaluate_toy", "arguments": {"x1": 1}}',
        usage=Usage(provider="scripted", model="m", prompt_tokens=10, completion_tokens=5, latency_s=0.25),
    ),
    ReaskPart(content="fix it", errors=[{"loc": ["arguments", "x2"], "msg": "missing", "input": None}]),
    ToolReturnPart(tool="read_history", content="No trial has finished yet."),
    AnswerPart(content="plain"),
]


def test_parts_round_trip_through_json() -> None:
    dumped = dump_parts(PARTS)
    text = json.dumps(dumped)
    assert [d["kind"] for d in dumped] == ["user", "answer", "reask", "tool_return", "answer"]
    assert load_parts(json.loads(text)) == PARTS
    assert load_parts(dump_parts(load_parts(dumped))) == PARTS


def test_load_parts_edge_cases() -> None:
    assert load_parts(None) == []
    assert load_parts([]) == []
    with pytest.raises(ValueError):
        load_parts([{"kind": "telepathy", "content": "x"}])


def test_round_and_parts_are_frozen() -> None:
    rnd = Round(trial=0, parts=tuple(PARTS))
    with pytest.raises(ValueError):
        rnd.trial = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        PARTS[0].content = "changed"  # type: ignore[misc]


# ---- snapshots ----------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "snapshot"), [("chat", "chat.txt"), ("compressed", "compressed.txt")])
async def test_prompt_snapshot(mode: HistoryMode, snapshot: str) -> None:
    rounds, records = await scenario()
    agent = make_agent(ScriptedProvider([]), records, history=mode)
    agent.restore(rounds)
    messages = agent.messages(records, [])
    assert_snapshot(snapshot, render(messages))
    assert messages[0].role == "system"
    roles = [m.role for m in messages[1:]]
    assert roles[0] == roles[-1] == "user"
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), roles


@pytest.mark.anyio
async def test_restored_conversation_equals_the_live_one() -> None:
    """A resumed study rebuilds exactly the prompt the uninterrupted one would have sent."""
    rounds, records = await scenario()
    live = make_agent(ScriptedProvider([]), records)
    for rnd in rounds:
        live.add_round(rnd.trial, rnd.parts)
    restored = make_agent(ScriptedProvider([]), records)
    restored.restore(load_rounds(rounds))
    assert live.messages(records, []) == restored.messages(records, [])


def load_rounds(rounds: Sequence[Round]) -> list[Round]:
    """Through the storage format: parts dumped to JSON and loaded back."""
    return [Round(trial=r.trial, parts=tuple(load_parts(json.loads(json.dumps(dump_parts(r.parts)))))) for r in rounds]


# ---- rendering rules ----------------------------------------------------------------------------------


def feedback(record: TrialRecord) -> str:
    return f"result of trial {record.number}"


def history(done: Sequence[TrialRecord]) -> str:
    return "history: " + ", ".join(str(r.number) for r in done)


def record(number: int, state: str = "complete", source: str = "llm") -> TrialRecord:
    value = float(number) if state == "complete" else None
    return TrialRecord(
        number=number,
        config={"x1": 0.0, "x2": 0.0},
        state=state,
        value=value,
        proposal=ProposalInfo(source=source),  # type: ignore[arg-type]
    )


def answer(n: int) -> AnswerPart:
    return AnswerPart(content=f"answer {n}")


def test_consecutive_same_role_messages_are_merged() -> None:
    memory = Memory(system="S", task="T", rounds=[Round(trial=0, parts=(answer(0), answer(1)))])
    current = [ToolReturnPart(tool="read_history", content="R"), ReaskPart(content="Q"), answer(2)]
    messages = memory.messages("chat", {}, current, feedback=feedback, history=history)
    assert messages == [
        ChatMessage(role="system", content="S"),
        ChatMessage(role="user", content="T"),
        ChatMessage(role="assistant", content="answer 0\n\nanswer 1"),
        ChatMessage(role="user", content="R\n\nQ"),
        ChatMessage(role="assistant", content="answer 2"),
    ]


def test_chat_renders_rounds_then_feedback() -> None:
    memory = Memory(
        system="S", task="T", rounds=[Round(trial=0, parts=(answer(0),)), Round(trial=1, parts=(answer(1),))]
    )
    messages = memory.messages("chat", {0: record(0), 1: record(1)}, [], feedback=feedback, history=history)
    assert [m.content for m in messages] == ["S", "T", "answer 0", "result of trial 0", "answer 1", "result of trial 1"]


def test_chat_trials_without_a_round_appear_as_feedback() -> None:
    """Trials adopted after a crash (or made by another worker) have no round but are news to the model."""
    memory = Memory(system="S", task="T", rounds=[Round(trial=1, parts=(answer(1),))])
    records = {0: record(0, source="resumed"), 1: record(1), 2: record(2, source="sampler")}
    messages = memory.messages("chat", records, [], feedback=feedback, history=history)
    assert [m.content for m in messages] == [
        "S",
        "T\n\nresult of trial 0",
        "answer 1",
        "result of trial 1\n\nresult of trial 2",
    ]


def test_unfinished_trials_get_no_feedback() -> None:
    memory = Memory(system="S", task="T", rounds=[Round(trial=0, parts=(answer(0),))])
    records = {0: record(0, state="running"), 1: record(1, state="running")}
    chat = memory.messages("chat", records, [], feedback=feedback, history=history)
    assert [m.content for m in chat] == ["S", "T", "answer 0"]
    compressed = memory.messages("compressed", records, [], feedback=feedback, history=history)
    assert [m.content for m in compressed] == ["S", "T"]


def test_compressed_lists_finished_trials_and_only_the_current_round() -> None:
    memory = Memory(system="S", task="T", rounds=[Round(trial=0, parts=(answer(0), ReaskPart(content="old")))])
    records = {2: record(2, state="fail"), 0: record(0), 1: record(1, state="running")}
    current = [answer(5), ReaskPart(content="fix")]
    messages = memory.messages("compressed", records, current, feedback=feedback, history=history)
    assert messages == [
        ChatMessage(role="system", content="S"),
        ChatMessage(role="user", content="T\n\nhistory: 0, 2"),
        ChatMessage(role="assistant", content="answer 5"),
        ChatMessage(role="user", content="fix"),
    ]


def test_ledger_appends_a_line_per_finished_trial_after_the_task() -> None:
    memory = Memory(system="S", task="T", rounds=[Round(trial=0, parts=(answer(0),))])
    records = {2: record(2, state="fail"), 0: record(0), 1: record(1, state="running")}
    current = [UserPart(content="state"), answer(5)]
    messages = memory.messages(
        "ledger", records, current, feedback=feedback, history=history, line=lambda r: f"line {r.number}"
    )
    assert messages == [
        ChatMessage(role="system", content="S"),
        ChatMessage(role="user", content="T\nline 0\nline 2\n\nstate"),
        ChatMessage(role="assistant", content="answer 5"),
    ]
    records[1] = record(1)  # a trial finishes: its line goes in among the others, nothing else moves
    later = memory.messages(
        "ledger", records, [], feedback=feedback, history=history, line=lambda r: f"line {r.number}"
    )
    assert later[1].content == "T\nline 0\nline 1\nline 2"


def test_chat_sends_a_settled_round_without_its_rejected_answers() -> None:
    parts = (
        UserPart(content="open"),
        answer(0),
        ReaskPart(content="fix"),
        answer(1),
        ToolReturnPart(tool="read_history", content="R"),
        answer(2),
    )
    assert settled(parts) == [parts[0], parts[3], parts[4], parts[5]]
    memory = Memory(system="S", task="T", rounds=[Round(trial=0, parts=parts)])
    current = [answer(5), ReaskPart(content="fix now")]  # the round being asked keeps its reasks
    messages = memory.messages("chat", {0: record(0)}, current, feedback=feedback, history=history)
    contents = [m.content for m in messages]
    assert "answer 0" not in "\n".join(contents) and "fix\n" not in "\n".join(contents)
    assert contents[-2:] == ["answer 5", "fix now"]


def test_chat_skip_leaves_out_the_oldest_rounds_words_not_their_results() -> None:
    memory = Memory(system="S", task="T", rounds=[Round(trial=n, parts=(answer(n),)) for n in (2, 0, 1)])
    records = {n: record(n) for n in range(3)}
    full = memory.messages("chat", records, [], feedback=feedback, history=history)
    trimmed = memory.messages("chat", records, [], feedback=feedback, history=history, skip=2)
    joined = "\n".join(m.content for m in trimmed)
    assert "answer 0" not in joined and "answer 1" not in joined and "answer 2" in joined
    assert all(feedback(records[n]) in joined for n in range(3))
    assert len(trimmed) < len(full)


def test_compressed_without_finished_trials_is_the_task() -> None:
    memory = Memory(system="S", task="T")
    assert memory.messages("compressed", {}, [], feedback=feedback, history=history) == [
        ChatMessage(role="system", content="S"),
        ChatMessage(role="user", content="T"),
    ]


@pytest.mark.parametrize("mode", ["chat", "compressed", "ledger"])
def test_messages_never_mutate_memory(mode: HistoryMode) -> None:
    memory = Memory(
        system="S",
        task="T",
        rounds=[Round(trial=0, parts=(answer(0), ReaskPart(content="r"))), Round(trial=1, parts=(answer(1),))],
    )
    records = {0: record(0), 1: record(1), 2: record(2, source="resumed")}
    current: list[Part] = [ReaskPart(content="x"), answer(3)]
    before = (memory.model_dump(), dict(records), list(current))
    first = memory.messages(mode, records, current, feedback=feedback, history=history, line=lambda r: str(r.number))
    second = memory.messages(mode, records, current, feedback=feedback, history=history, line=lambda r: str(r.number))
    assert first == second
    assert (memory.model_dump(), dict(records), list(current)) == before
    first.append(ChatMessage(role="user", content="appended by the caller"))
    assert (
        memory.messages(mode, records, current, feedback=feedback, history=history, line=lambda r: str(r.number))
        == second
    )


# ---- feedback texts through the agent's templates -----------------------------------------------------


def test_feedback_for_a_failed_fallback_trial_and_a_spent_budget() -> None:
    records = [
        finished(0, -3.0, 12.0),
        TrialRecord(
            number=1,
            config={"x1": 1.0, "x2": 1.0},
            state="fail",
            error="boom",
            proposal=ProposalInfo(source="fallback"),
        ),
        finished(2, 3.0, 2.5),
    ]
    agent = make_agent(ScriptedProvider([]), records)
    agent.restore([Round(trial=n, parts=(answer(n),)) for n in range(3)])
    messages = agent.messages(records, [])
    fail_feedback = messages[5].content
    assert fail_feedback.startswith("trial 1 (a random configuration: your answers were invalid):")
    assert (
        'trial 1 (a random configuration: your answers were invalid): {"x1": 1.0, "x2": 1.0} -> failed: boom'
        in fail_feedback
    )
    assert "1 evaluation left; the best value so far is 0.497911." in fail_feedback
    assert messages[-1].content.endswith("The budget is spent.")


def test_news_feedback_reports_the_current_budget() -> None:
    records = [finished(0, 1.0, 2.0, source="resumed"), finished(1, 3.0, 2.5)]
    agent = make_agent(ScriptedProvider([]), records)
    agent.restore([Round(trial=1, parts=(answer(1),))])
    last = agent.messages(records, [])[-1].content
    best = f"{min(r.value for r in records if r.value is not None):.6g}"
    assert last.endswith(
        f"1 evaluation left; the best value so far is {best}. Call evaluate_toy with the next configuration."
    )
    assert "2 evaluations left" not in last
