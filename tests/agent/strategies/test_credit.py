"""Tests for agent/strategies/credit.py: rewards by rank, each source's credit, the model's share."""

from __future__ import annotations

import random

import pytest

from agent.metrics import rank_rewards
from agent.records import Direction, ProposalInfo, ProposalSource, TrialRecord
from agent.strategies.credit import ArmCredit, arm_of, signed_values


def trial(number: int, value: float | None, source: ProposalSource = "surrogate") -> TrialRecord:
    state = "complete" if value is not None else "fail"
    return TrialRecord(number=number, config={}, state=state, value=value, proposal=ProposalInfo(source=source))


def test_a_trial_earns_the_share_of_earlier_trials_it_beats() -> None:
    earlier = [trial(0, 3.0), trial(1, 1.0), trial(2, None), trial(3, 2.0)]

    def last_reward(value: float | None, direction: Direction = "minimize") -> float | None:
        return rank_rewards(signed_values([*earlier, trial(4, value)], direction))[-1]

    assert last_reward(1.5) == pytest.approx(3 / 4)  # 3.0, the failure, 2.0
    assert last_reward(1.0) == pytest.approx(3.5 / 4)  # a tie counts half
    assert last_reward(2.5, "maximize") == pytest.approx(3 / 4)  # 1.0, the failure, 2.0
    assert last_reward(None) == 0.0
    assert rank_rewards(signed_values([trial(0, 1.0)], "minimize")) == [None]


def test_each_source_is_credited_with_its_own_trials() -> None:
    assert [arm_of(trial(0, 1.0, s)) for s in ("llm", "surrogate", "fallback", "sampler", "resumed")] == [
        "model",
        "optimizer",
        "optimizer",
        None,
        None,
    ]
    records = [trial(0, 5.0, "llm"), trial(1, 4.0), trial(2, 1.0, "llm"), trial(3, 6.0)]
    credit = ArmCredit(model_prior=(1.0, 1.0), optimizer_prior=(1.0, 1.0)).credit(records, "minimize")
    # trial 0 has nothing to beat; 1 beats 0 (1.0); 2 beats both (1.0); 3 beats nothing (0.0).
    assert (credit["model"].alpha, credit["model"].beta, credit["model"].trials) == (2.0, 1.0, 1)
    assert (credit["optimizer"].alpha, credit["optimizer"].beta, credit["optimizer"].trials) == (2.0, 2.0, 2)


def test_the_share_starts_near_a_third_and_follows_the_credit_within_its_bounds() -> None:
    bandit = ArmCredit()
    rng = random.Random(0)
    assert 0.25 < bandit.share(bandit.credit([], "minimize"), rng) < 0.4
    # A model whose every trial beats all before it, against an optimizer whose trials beat none.
    strong = [trial(0, 10.0)]
    for i in range(1, 9):
        strong.append(trial(i, 10.0 - i, "llm") if i % 2 else trial(i, 100.0 + i))
    assert bandit.share(bandit.credit(strong, "minimize"), rng) == bandit.cap
    weak = [trial(0, 10.0)]
    for i in range(1, 9):
        weak.append(trial(i, 100.0 + i, "llm") if i % 2 else trial(i, 10.0 - i))
    assert bandit.share(bandit.credit(weak, "minimize"), rng) == bandit.floor


def test_a_model_round_that_takes_the_optimizers_own_trial_is_the_optimizers() -> None:
    def took(choice: str) -> TrialRecord:
        info = ProposalInfo(source="llm", decision={"round": "model", "choice": choice})
        return TrialRecord(number=1, config={}, state="complete", value=1.0, proposal=info)

    assert arm_of(took("candidate 1")) == "optimizer"
    assert arm_of(took("candidate 2")) == "model"
    assert arm_of(took("own")) == "model"


def test_the_share_shrinks_as_the_budget_runs_out() -> None:
    bandit = ArmCredit()
    credit = bandit.credit([], "minimize")
    full = bandit.share(credit, random.Random(3))
    assert bandit.share(credit, random.Random(3), left=0.5) == pytest.approx(full / 2)
    assert bandit.share(credit, random.Random(3), left=0.0) == 0.0
