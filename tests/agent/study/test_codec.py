"""Tests for agent/study/codec.py: the stored format of a trial, pinned, and its round trip through Optuna."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from agent.messages import AnswerPart, ReaskPart, ToolReturnPart, Usage, UserPart
from agent.records import ProposalInfo, TrialRecord
from agent.study import codec

USAGE = Usage(
    provider="embedded", model="qwen", prompt_tokens=412, completion_tokens=31, cached_tokens=380, latency_s=1.25
)
INFO = ProposalInfo(
    source="llm",
    answer='{"tool": "evaluate_toy", "arguments": {"x1": 1.5, "x2": 2.5}}',
    reasks=1,
    conversation=(
        AnswerPart(content="not json", usage=USAGE),
        ReaskPart(content="Your answer was invalid", errors=[{"loc": [], "msg": "not valid JSON", "input": None}]),
        UserPart(content="The optimizer's state"),
        ToolReturnPart(tool="read_history", content="trial 0: ..."),
        AnswerPart(content='{"tool": "evaluate_toy", "arguments": {"x1": 1.5, "x2": 2.5}}', usage=USAGE),
    ),
    usage=(USAGE, USAGE),
    seconds=2.5,
    reason=None,
    decision={"share": 0.4, "credit": {"llm": 1.5, "surrogate": 2.0}},
)

#: The stored format, written out: change it only with a reader for what studies already hold.
PINNED_PROPOSAL: dict[str, Any] = {
    "source": "llm",
    "answer": '{"tool": "evaluate_toy", "arguments": {"x1": 1.5, "x2": 2.5}}',
    "reasks": 1,
    "conversation": [
        {
            "kind": "answer",
            "content": "not json",
            "usage": {
                "provider": "embedded",
                "model": "qwen",
                "prompt_tokens": 412,
                "completion_tokens": 31,
                "cached_tokens": 380,
                "latency_s": 1.25,
            },
        },
        {
            "kind": "reask",
            "content": "Your answer was invalid",
            "errors": [{"loc": [], "msg": "not valid JSON", "input": None}],
        },
        {"kind": "user", "content": "The optimizer's state"},
        {"kind": "tool_return", "tool": "read_history", "content": "trial 0: ..."},
        {
            "kind": "answer",
            "content": '{"tool": "evaluate_toy", "arguments": {"x1": 1.5, "x2": 2.5}}',
            "usage": {
                "provider": "embedded",
                "model": "qwen",
                "prompt_tokens": 412,
                "completion_tokens": 31,
                "cached_tokens": 380,
                "latency_s": 1.25,
            },
        },
    ],
    "usage": [
        {
            "provider": "embedded",
            "model": "qwen",
            "prompt_tokens": 412,
            "completion_tokens": 31,
            "cached_tokens": 380,
            "latency_s": 1.25,
        }
    ]
    * 2,
    "propose_s": 2.5,
    "decision": {"share": 0.4, "credit": {"llm": 1.5, "surrogate": 2.0}},
}


def test_the_proposal_is_stored_in_the_pinned_format() -> None:
    attrs = codec.encode_proposal(INFO)
    assert attrs == PINNED_PROPOSAL
    json.dumps(attrs)  # storable as JSON by every Optuna storage


def test_a_sampler_drawn_trial_stores_nothing_about_its_proposal() -> None:
    assert codec.encode_proposal(ProposalInfo()) == {}


def test_the_result_is_one_attribute() -> None:
    assert codec.encode_result({"val_error": 0.25, "epochs_run": 3}, None, 12.345678) == {
        "metrics": {"val_error": 0.25, "epochs_run": 3},
        "error": None,
        "seconds": 12.3457,
    }


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.RUNNING])
def test_a_record_round_trips_through_an_optuna_storage(state: TrialState) -> None:
    study = optuna.create_study()
    params = {"x1": 1.5, "opt": "adam"}
    distributions = {"x1": FloatDistribution(-5.0, 10.0), "opt": CategoricalDistribution(["adam", "sgd"])}
    attrs = {**codec.encode_proposal(INFO), codec.WORKER: {"host": "h", "pid": 1, "started": 2, "token": "t"}}
    if state != TrialState.RUNNING:
        attrs[codec.RESULT] = codec.encode_result(
            {"val_error": 0.25}, "boom" if state == TrialState.FAIL else None, 3.0
        )
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=0.25 if state == TrialState.COMPLETE else None,
            params=params,
            distributions=distributions,
            user_attrs=attrs,
        )
    )
    (trial,) = study.get_trials()
    record = codec.decode(trial)
    assert record is not None
    assert record.proposal == INFO
    assert record.config == params
    assert (
        record.state == {"COMPLETE": "complete", "FAIL": "fail", "PRUNED": "pruned", "RUNNING": "running"}[state.name]
    )
    assert record.value == (0.25 if state == TrialState.COMPLETE else None)
    if state != TrialState.RUNNING:
        assert record.metrics == {"val_error": 0.25} and record.seconds == 3.0
        assert record.error == ("boom" if state == TrialState.FAIL else None)


def test_studies_written_before_the_result_attribute_are_read() -> None:
    """Flat metrics/error/seconds, and a failure reason Optuna itself recorded."""
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"x": 1.0},
            distributions={"x": FloatDistribution(0.0, 2.0)},
            user_attrs={"source": "fallback", "metrics": {"seed": 3}, "error": "NaN loss", "seconds": 1.5},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"x": 1.0},
            distributions={"x": FloatDistribution(0.0, 2.0)},
            system_attrs={"fail_reason": "ValueError: raised by the objective"},
        )
    )
    old, optunas = (codec.decode(t) for t in study.get_trials())
    assert old == TrialRecord(
        number=0,
        config={"x": 1.0},
        state="fail",
        metrics={"seed": 3},
        error="NaN loss",
        proposal=ProposalInfo(source="fallback"),
        seconds=1.5,
    )
    assert optunas is not None and optunas.error == "ValueError: raised by the objective"


def test_waiting_and_surplus_trials_are_not_records() -> None:
    study = optuna.create_study()
    study.enqueue_trial({})
    surplus = optuna.trial.create_trial(
        state=TrialState.FAIL, params={}, distributions={}, user_attrs={"surplus": True}
    )
    study.add_trial(surplus)
    assert [codec.decode(t) for t in study.get_trials()] == [None, None]


def test_the_study_lists_its_setup_failures_and_only_failed_trials_are_marked() -> None:
    study = optuna.create_study()
    for state in (TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE):
        value = 1.0 if state == TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(state=state, value=value, params={}, distributions={}))
    study.set_user_attr(codec.SETUP_FAILURES, [0, 2, "x"])  # 2 completed: no setup failure; "x": ignored
    listed = codec.setup_failures(study.user_attrs)
    assert listed == {0, 2}
    records = [codec.decode(t, listed) for t in study.get_trials()]
    assert [r.setup_failure for r in records if r is not None] == [True, False, False]
    assert codec.setup_failures({}) == frozenset() and codec.setup_failures({codec.SETUP_FAILURES: 3}) == frozenset()


def test_an_unreadable_proposal_keeps_what_is_sure() -> None:
    trial = optuna.trial.create_trial(
        state=TrialState.COMPLETE,
        value=1.0,
        params={},
        distributions={},
        user_attrs={"source": "llm", "conversation": [{"kind": "martian"}], "reasks": 2},
    )
    record = codec.decode(trial)
    assert record is not None and record.proposal == ProposalInfo(source="llm")


def test_enormous_texts_are_cut_with_their_length() -> None:
    info = ProposalInfo(source="llm", answer="x" * 50_000)
    stored = codec.encode_proposal(info)["answer"]
    assert len(stored) < 21_000 and stored.endswith("[cut: 50000 characters in all]")


def test_datetimes_are_optunas_own() -> None:
    """Start and end times are not ours to store: Optuna records them on every trial."""
    assert not {"started_at", "finished_at"} & set(codec.encode_proposal(INFO))
    assert isinstance(optuna.trial.create_trial(value=1.0).datetime_start, datetime)
