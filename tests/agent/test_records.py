"""Tests for agent/records.py: how a trial reads in a prompt or a report, and usage totals over trials."""

from __future__ import annotations

from agent.messages import Usage
from agent.records import ProposalInfo, TrialRecord, UsageTotals, compact_config, format_trial


def test_format_trial() -> None:
    third = 1 / 3
    complete = TrialRecord(number=7, config={"lr": third, "n": 3, "opt": "sgd"}, state="complete", value=0.123456789)
    assert format_trial(complete) == 'trial 7: {"lr": 0.333333, "n": 3, "opt": "sgd"} -> value 0.123457'
    pruned = TrialRecord(number=1, config={"n": 3}, state="pruned", value=0.5)
    assert format_trial(pruned) == 'trial 1: {"n": 3} -> pruned (stopped early) at 0.5'
    stopped = TrialRecord(number=1, config={"n": 3}, state="pruned", curve={1: 0.9, 3: 0.25})
    assert format_trial(stopped) == 'trial 1: {"n": 3} -> pruned (stopped early) at step 3: 0.25'
    failed = TrialRecord(number=2, config={"n": 3}, state="fail")
    assert format_trial(failed) == 'trial 2: {"n": 3} -> failed: unknown reason'
    assert compact_config({"a": 1e-7 / 3, "b": 64, "c": True}) == {"a": 3.33333e-08, "b": 64, "c": True}
    running = TrialRecord(number=3, config={"n": 3}, state="running")
    assert format_trial(running) == 'trial 3: {"n": 3} -> still running'


def test_a_fallback_says_why_the_model_did_not_choose() -> None:
    fallback = TrialRecord(
        number=4,
        config={"n": 3},
        state="complete",
        value=1.0,
        proposal=ProposalInfo(source="fallback", reason="invalid answers after 3 reasks"),
    )
    assert "fallback" not in format_trial(fallback)
    assert "(a random configuration: your answers were invalid)" in format_trial(fallback)
    outage = fallback.model_copy(
        update={"proposal": ProposalInfo(source="fallback", reason="the model could not be reached: refused")}
    )
    assert format_trial(outage).startswith("trial 4 (chosen without you: you could not be reached): ")


def test_usage_totals_count_calls_tokens_reasks_and_fallbacks() -> None:
    usage = Usage(provider="p", model="m", prompt_tokens=100, completion_tokens=20, latency_s=1.5)
    records = [
        TrialRecord(
            number=0,
            config={},
            state="complete",
            value=1.0,
            proposal=ProposalInfo(source="llm", usage=(usage, usage), reasks=1),
        ),
        TrialRecord(number=1, config={}, state="fail", proposal=ProposalInfo(source="fallback", usage=(usage,))),
        TrialRecord(number=2, config={}, state="complete", value=2.0),
    ]
    totals = UsageTotals.of(records)
    assert totals == UsageTotals(
        llm_calls=3, prompt_tokens=300, completion_tokens=60, llm_seconds=4.5, reasks=1, fallbacks=1
    )
