"""Tests for agent/conversation.py: one round of the agent against a ScriptedProvider."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.answer import answer_schema, parse_answer
from agent.conversation import Agent, AgentSettings, ask_tool
from agent.errors import ContextOverflow, InvalidSuggestion, ProviderUnavailable, ReaskBudgetExhausted
from agent.memory import HistoryMode
from agent.messages import AnswerPart, ChatMessage
from agent.providers.scripted import ScriptedProvider
from agent.records import ProposalInfo, TrialRecord
from agent.study.codec import encode_proposal
from agent.tasks import build_task
from agent.templates import Templates
from tests.agent.test_answer import BAD_ANSWERS
from tools.read_history import ReadHistory

pytestmark = pytest.mark.anyio

TASK = build_task("toy-branin")
call = ScriptedProvider.call
VALID = call("evaluate_toy", x1=1.5, x2=2.5)
READ = call("read_history", which="best", n=2)
OUT_OF_RANGE = call("evaluate_toy", x1=99.0, x2=2.5)


@pytest.fixture(autouse=True)
def _shipped_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_PROMPTS_DIR", raising=False)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


def make_agent(
    answers: Sequence[str],
    records: Sequence[TrialRecord] = (),
    events: Events | None = None,
    seed: int = 0,
    **settings: Any,
) -> tuple[Agent, ScriptedProvider]:
    provider = ScriptedProvider(answers)
    agent = Agent(
        provider=provider,
        eval_tool=TASK.tool,
        task_description=TASK.description,
        task_template=TASK.template,
        budget=5,
        seed=seed,
        settings=AgentSettings(**settings),
        extra_tools=[ReadHistory(lambda: records)],
        events=events,
    )
    return agent, provider


def done(number: int, x1: float, x2: float, value: float) -> TrialRecord:
    return TrialRecord(
        number=number, config={"x1": x1, "x2": x2}, state="complete", value=value, proposal=ProposalInfo(source="llm")
    )


RECORDS = [done(0, -3.0, 12.0, 0.5), done(1, 3.0, 2.5, 0.4)]


def kinds(parts: Sequence[Any]) -> list[str]:
    return [p.kind for p in parts]


# ---- valid answers ------------------------------------------------------------------------------------


async def test_valid_first_answer_is_an_llm_proposal() -> None:
    agent, provider = make_agent([call("evaluate_toy", x1=2, x2=3)])
    proposal = await agent.propose([])
    assert proposal.config == {"x1": 2.0, "x2": 3.0}
    assert all(isinstance(v, float) for v in proposal.config.values())
    assert proposal.source == "llm"
    assert proposal.reasks == 0
    assert proposal.answer == call("evaluate_toy", x1=2, x2=3)
    assert kinds(proposal.parts) == ["answer"]
    assert len(proposal.usage) == len(provider.calls) == 1
    assert [m.role for m in provider.calls[0].messages] == ["system", "user"]
    attrs = encode_proposal(proposal.info())
    assert set(attrs) == {"source", "answer", "conversation", "usage"}
    json.dumps(attrs)


async def test_propose_does_not_add_a_round() -> None:
    agent, _ = make_agent([VALID])
    await agent.propose([])
    assert agent.memory.rounds == []  # the strategy adds the round once the study accepts the trial


# ---- reasks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["chat", "compressed"])
@pytest.mark.parametrize(("bad", "loc", "fragment"), BAD_ANSWERS)
async def test_each_bad_answer_is_reasked_once(mode: HistoryMode, bad: str, loc: list[Any], fragment: str) -> None:
    with pytest.raises(InvalidSuggestion) as info:
        parse_answer(bad, {"evaluate_toy": TASK.tool, "read_history": ReadHistory(list)})
    agent, provider = make_agent([bad, VALID], history=mode)
    proposal = await agent.propose([])
    assert proposal.config == {"x1": 1.5, "x2": 2.5}
    assert TASK.space.validate_config(proposal.config) == proposal.config
    assert proposal.source == "llm"
    assert proposal.reasks == 1
    assert len(provider.calls) == 2
    assert kinds(proposal.parts) == ["answer", "reask", "answer"]
    reask = provider.calls[1].messages[-1]
    assert reask.role == "user"
    assert reask.content.startswith("Your answer was invalid:")
    for e in info.value.errors:
        shown = ".".join(str(x) for x in e["loc"]) or "answer"
        assert f"- {shown}: {e['msg']}" in reask.content
    assert fragment in reask.content
    assert "Fix the errors and try again." in reask.content
    assert provider.calls[1].messages[-2].role == "assistant"


async def test_reask_shows_the_model_its_answer_and_the_error() -> None:
    agent, provider = make_agent([OUT_OF_RANGE, VALID])
    await agent.propose([])
    messages = provider.calls[1].messages
    assert messages[-2].content == OUT_OF_RANGE
    assert messages[-1].content == (
        "Your answer was invalid:\n"
        "- arguments.x1: out of range: must be in [-5, 10], got 99\n"
        'Fix the errors and try again. Reply with one JSON object {"tool": ..., "arguments": {...}} and nothing else.'
    )


async def test_code_in_an_answer_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    agent, _ = make_agent([f"__import__('os').system('touch {marker}')", VALID])
    proposal = await agent.propose([])
    assert proposal.reasks == 1
    assert not marker.exists()


async def test_huge_integer_is_reasked() -> None:
    agent, _ = make_agent([call("evaluate_toy", x1=10**400, x2=1.0), VALID])
    proposal = await agent.propose([])
    assert proposal.reasks == 1


async def test_an_enormous_answer_is_not_sent_back_whole() -> None:
    agent, provider = make_agent(["a" * 1_000_000, VALID])
    await agent.propose([])
    assert sum(len(m.content) for m in provider.calls[1].messages) < 50_000


# ---- read_history -------------------------------------------------------------------------------------


async def test_read_history_is_run_and_the_round_goes_on() -> None:
    records = list(RECORDS)
    agent, provider = make_agent([READ, VALID], records=records)
    proposal = await agent.propose(records)
    assert proposal.source == "llm" and proposal.reasks == 0
    assert proposal.config == {"x1": 1.5, "x2": 2.5}
    assert len(provider.calls) == 2
    assert kinds(proposal.parts) == ["answer", "tool_return", "answer"]
    assert proposal.parts[1].tool == "read_history"  # type: ignore[union-attr]
    output = provider.calls[1].messages[-1]
    assert output.role == "user"
    assert output.content == (
        "The best 2 of 2 finished trials:\n"
        'trial 1: {"x1": 3.0, "x2": 2.5} -> value 0.4\n'
        'trial 0: {"x1": -3.0, "x2": 12.0} -> value 0.5'
    )


async def test_too_many_history_reads_in_a_row_are_reasked() -> None:
    events = Events()
    agent, provider = make_agent([READ, READ, READ, VALID], records=RECORDS, events=events, max_history_reads=2)
    proposal = await agent.propose(RECORDS)
    assert len(provider.calls) == 4
    assert proposal.reasks == 1
    assert proposal.config == {"x1": 1.5, "x2": 2.5}
    assert kinds(proposal.parts) == ["answer", "tool_return", "answer", "tool_return", "answer", "reask", "answer"]
    reask = provider.calls[3].messages[-1].content
    assert "You have read the history 2 times in a row. Call evaluate_toy now" in reask
    assert events.names().count("reask") == 1


async def test_invalid_read_history_arguments_are_reasked() -> None:
    agent, provider = make_agent([call("read_history", which="best", n=0), VALID], records=RECORDS)
    proposal = await agent.propose(RECORDS)
    assert proposal.reasks == 1
    assert "- arguments.n: Input should be greater than or equal to 1" in provider.calls[1].messages[-1].content


# ---- the reask budget ---------------------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_fallback_after_max_retries(max_retries: int) -> None:
    events = Events()
    answers = [OUT_OF_RANGE] * max_retries + ["still not JSON"]
    agent, provider = make_agent(answers, events=events, max_retries=max_retries, on_invalid="random")
    proposal = await agent.propose([])
    assert proposal.config is None
    assert proposal.source == "fallback"
    assert proposal.reasks == max_retries
    assert proposal.answer == "still not JSON"
    assert len(provider.calls) == max_retries + 1
    assert kinds(proposal.parts) == ["answer", "reask"] * max_retries + ["answer"]
    assert events.names().count("reask") == max_retries
    assert events.names()[-1] == "invalid_proposal"
    assert proposal.info().reasks == max_retries
    assert proposal.info().reason == f"invalid answers after {max_retries} reasks"


async def test_stop_when_the_reasks_run_out() -> None:
    agent, provider = make_agent([OUT_OF_RANGE] * 3, max_retries=2, on_invalid="stop")
    with pytest.raises(ReaskBudgetExhausted, match="after 2 reasks") as info:
        await agent.propose([])
    assert "--max-retries" in str(info.value)
    assert "out of range" in str(info.value)
    assert len(provider.calls) == 3


# ---- what reaches the provider --------------------------------------------------------------------------


async def test_the_provider_gets_the_answer_schema() -> None:
    agent, provider = make_agent([READ, OUT_OF_RANGE, VALID], records=RECORDS)
    await agent.propose(RECORDS)
    expected = answer_schema(agent.tools)
    assert expected == answer_schema({"evaluate_toy": TASK.tool, "read_history": ReadHistory(list)})
    assert [c.json_schema for c in provider.calls] == [expected] * 3
    assert [v["properties"]["tool"]["const"] for v in expected["anyOf"]] == ["evaluate_toy", "read_history"]


async def test_temperature_max_tokens_and_seeds_are_passed_through() -> None:
    agent, provider = make_agent([OUT_OF_RANGE, VALID], temperature=0.15, max_tokens=99, seed=5)
    await agent.propose([])
    assert [(c.temperature, c.max_tokens) for c in provider.calls] == [(0.15, 99), (0.15, 99)]
    again, provider_again = make_agent([OUT_OF_RANGE, VALID], seed=5)
    await again.propose([])
    seeds = [c.seed for c in provider.calls]
    assert seeds == [c.seed for c in provider_again.calls]
    assert all(isinstance(s, int) for s in seeds) and seeds[0] != seeds[1]


async def test_callers_records_are_not_mutated() -> None:
    records = list(RECORDS)
    snapshot = [r.model_copy() for r in records]
    agent, provider = make_agent([READ, OUT_OF_RANGE, VALID], records=records)
    await agent.propose(records)
    assert records == snapshot
    assert len(provider.calls) == 3


async def test_earlier_rounds_are_in_the_next_prompt() -> None:
    records: list[TrialRecord] = []
    agent, provider = make_agent([VALID, call("evaluate_toy", x1=0.0, x2=0.0)], records=records)
    first = await agent.propose(records)
    agent.add_round(0, first.parts)
    records.append(done(0, 1.5, 2.5, 7.0))
    await agent.propose(records)
    messages = provider.calls[1].messages
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2].content == VALID
    assert messages[3].content.startswith('trial 0: {"x1": 1.5, "x2": 2.5} -> value 7\n4 evaluations left')


async def test_a_prompt_too_long_leaves_out_the_oldest_rounds_words_from_then_on() -> None:
    """The server refuses a chat too long for its context: the older half of the rounds' words go (their
    results stay), the call is made again, and later calls keep the cut (a stable prefix for the cache)."""
    records = [done(n, float(n - 4), 1.0, float(n)) for n in range(4)]

    def fits(messages: Sequence[Any]) -> str:
        if len(messages) > 6:
            raise ContextOverflow("the prompt is longer than the model's context window")
        return call("evaluate_toy", x1=0.5, x2=0.5)

    events = Events()
    agent, provider = make_agent([fits, fits, fits], records=records, events=events, history="chat")
    for r in records:
        agent.add_round(r.number, [AnswerPart(content=call("evaluate_toy", x1=r.config["x1"], x2=1.0))])
    proposal = await agent.propose(records)
    assert proposal.config == {"x1": 0.5, "x2": 0.5}
    assert [len(c.messages) for c in provider.calls] == [10, 6]
    sent = "\n".join(m.content for m in provider.calls[-1].messages)
    assert all(f"trial {n}:" in sent for n in range(4))  # every result is still there
    assert '"x1": -4.0' not in sent.split("trial 0:")[0]  # the oldest answers are not
    assert ("context_trimmed", {"rounds_left_out": 2}) in events.seen
    await agent.propose(records)
    assert len(provider.calls) == 3 and len(provider.calls[-1].messages) == 6


@pytest.mark.parametrize("history", ["chat", "ledger"])
async def test_a_prompt_that_cannot_be_cut_to_fit_is_a_round_without_the_model(history: HistoryMode) -> None:
    def never_fits(messages: Sequence[Any]) -> str:
        raise ContextOverflow("the prompt is longer than the model's context window")

    agent, _ = make_agent([never_fits] * 5, records=RECORDS, history=history)
    for r in RECORDS:
        agent.add_round(r.number, [AnswerPart(content=VALID)])
    with pytest.raises(ProviderUnavailable, match="proposed without the model.*longer context.*--history compressed"):
        await agent.propose(RECORDS)


# ---- repeated configurations --------------------------------------------------------------------------


async def test_a_configuration_already_tried_is_reasked() -> None:
    agent, provider = make_agent([call("evaluate_toy", x1=-3.0, x2=12.0), VALID], records=RECORDS)
    proposal = await agent.propose(RECORDS)
    assert proposal.reasks == 1
    assert proposal.config == {"x1": 1.5, "x2": 2.5}
    reask = provider.calls[1].messages[-1].content
    assert "already evaluated in trial 0 (value 0.5)" in reask


async def test_a_pending_configuration_is_reasked_too() -> None:
    running = TrialRecord(number=2, config={"x1": 1.5, "x2": 2.5}, state="running", proposal=ProposalInfo(source="llm"))
    agent, provider = make_agent([VALID, call("evaluate_toy", x1=0.0, x2=1.0)])
    proposal = await agent.propose([*RECORDS, running])
    assert proposal.config == {"x1": 0.0, "x2": 1.0}
    assert "trial 2 (still running)" in provider.calls[1].messages[-1].content


async def test_repeats_are_evaluated_when_allowed() -> None:
    agent, _ = make_agent([call("evaluate_toy", x1=-3.0, x2=12.0)], reject_repeats=False)
    proposal = await agent.propose(RECORDS)
    assert proposal.reasks == 0 and proposal.config == {"x1": -3.0, "x2": 12.0}


async def test_the_example_answer_carries_no_values_to_copy() -> None:
    agent, provider = make_agent([VALID])
    await agent.propose([])
    system = provider.calls[0].messages[0].content
    assert '"arguments": {"x1": <x1>, "x2": <x2>}' in system


# ---- one question outside a study's rounds (ask_tool): the same loop ------------------------------------


async def test_ask_tool_reasks_an_invalid_call_the_way_a_round_does() -> None:
    """One ask-validate-reask loop serves a round and a single question: the same reask text, the same
    events, the reask sampled at its own temperature and seed."""
    events = Events()
    provider = ScriptedProvider([OUT_OF_RANGE, VALID])
    messages = [ChatMessage(role="system", content="s"), ChatMessage(role="user", content="u")]
    answer = await ask_tool(
        provider,
        messages,
        TASK.tool,
        templates=Templates(),
        temperature=0.0,
        reask_temperature=0.7,
        seed=5,
        events=events,
    )
    assert answer.arguments == {"x1": 1.5, "x2": 2.5} and answer.reasks == 1 and answer.errors == []
    assert kinds(answer.parts) == ["answer", "reask", "answer"]
    assert [c.temperature for c in provider.calls] == [0.0, 0.7] and [c.seed for c in provider.calls] == [5, 6]
    sent = provider.calls[1].messages
    assert sent[:2] == messages and [m.role for m in sent[2:]] == ["assistant", "user"]
    assert sent[-1].content.startswith("Your answer was invalid:") and "arguments.x1" in sent[-1].content
    assert events.names() == ["llm_call", "reask", "llm_call"]
    assert all(fields["tool"] == "evaluate_toy" for _, fields in events.seen)
    agent, _ = make_agent([OUT_OF_RANGE, VALID])
    proposal = await agent.propose([])
    assert proposal.parts[1].content == answer.parts[1].content, "the same reask as a study's round"


async def test_ask_tool_gives_the_last_errors_when_the_reasks_run_out() -> None:
    provider = ScriptedProvider([OUT_OF_RANGE] * 3)
    answer = await ask_tool(provider, [], TASK.tool, templates=Templates(), max_retries=2)
    assert answer.arguments is None and answer.reasks == 2 and len(answer.usage) == 3
    assert [".".join(map(str, e["loc"])) for e in answer.errors] == ["arguments.x1"]
