"""Tests for agent/strategies/bo.py: ``bo`` proposing alone, and learning from sources."""

from __future__ import annotations

import random

import pytest

from agent.records import ProposalInfo, SourceData, TrialRecord
from agent.space import CategoricalParam, Choice, SearchSpace
from agent.strategies.base import ProposeContext
from agent.strategies.bo import BOStrategy
from agent.strategies.transfer import TARGET, TransferSurrogate

pytestmark = pytest.mark.anyio

GRID = (1, 2, 4, 8, 16, 32, 64)
SPACE = SearchSpace(
    params={
        "a": CategoricalParam(choices=GRID),
        "b": CategoricalParam(choices=GRID),
        "c": CategoricalParam(choices=("x", "y")),
    }
)


def f(config: dict[str, Choice]) -> float:
    return (GRID.index(config["a"]) - 4) ** 2 + (GRID.index(config["b"]) - 1) ** 2 + (config["c"] != "y")  # type: ignore[arg-type]


def source(name: str, sign: float = 1.0) -> SourceData:
    rng = random.Random(1)
    configs = [SPACE.sample(rng) for _ in range(30)]
    return SourceData(name, tuple(configs), tuple(sign * f(c) for c in configs))


async def study(strategy: BOStrategy, n: int, values: dict[str, float] | None = None) -> list[TrialRecord]:
    """``n`` proposals, each recorded with its value (``f``, or ``values``' by key) before the next."""
    records: list[TrialRecord] = []
    rng = random.Random(0)
    for i in range(n):
        p = await strategy.propose(ProposeContext(space=SPACE, records=list(records), rng=rng))
        assert p.config is not None
        value = (values or {}).get(SPACE.key(p.config), f(p.config))
        info = ProposalInfo(source=p.source, decision=p.decision)
        records.append(TrialRecord(number=i, config=p.config, state="complete", value=value, proposal=info))
    return records


async def test_bo_alone_proposes_untried_configurations_and_records_no_weights() -> None:
    records = await study(BOStrategy(), 12)
    assert len({SPACE.key(r.config) for r in records}) == 12
    # Issue 25, item 12: its startup draws (fewer than 3 trials for its model) are labelled random, not surrogate.
    assert [(r.source, r.proposal.decision) for r in records] == [("random", {"startup": True})] * 3 + [
        ("surrogate", {})
    ] * 9
    assert all(SPACE.validate_config(r.config) == r.config for r in records)
    assert not BOStrategy().learns


async def test_with_sources_the_openers_come_first_then_each_proposal_records_its_weights() -> None:
    strategy = BOStrategy(experience=[source("good")], budget=10, n_open=3)
    assert strategy.learns
    records = await study(strategy, 8)
    assert [r.source for r in records] == ["transfer"] * 3 + ["surrogate"] * 5
    assert records[0].config == TransferSurrogate([source("good")]).openers(SPACE, 1)[0]
    for r in records[3:]:
        weights = r.proposal.decision["weights"]
        assert set(weights) == {"good", TARGET} and abs(sum(weights.values()) - 1.0) < 0.01
    assert len({SPACE.key(r.config) for r in records}) == 8
    assert BOStrategy(experience=[source("good")], budget=2, n_open=3).n_open == 2  # never more than the budget


async def test_one_opener_per_source_at_most_three() -> None:
    """A single earlier study opens with one trial (a misleading one then costs one trial, not three); several
    open with three of their best, the registry's other strategies likewise."""
    one = BOStrategy(experience=[source("only")], budget=10)
    assert one.n_open == 1
    records = await study(one, 3)
    assert [r.source for r in records] == ["transfer", "surrogate", "surrogate"]
    assert BOStrategy(experience=[source("a"), source("b")], budget=10).n_open == 2
    assert BOStrategy(experience=[source(n) for n in "abcd"], budget=10).n_open == 3
    assert BOStrategy(experience=[source(n) for n in "abcd"], budget=2).n_open == 2


async def test_after_openers_that_all_failed_alike_the_next_trials_are_startup_draws() -> None:
    """A misleading source whose openers all score the same: its weight is gone and the study has nothing of
    its own to go on, so the next trials are random, as ``bo``'s startup, and say so."""
    misleading = source("bad", sign=-1.0)
    openers = TransferSurrogate([misleading]).openers(SPACE, 3)
    records = await study(
        BOStrategy(experience=[misleading], budget=10, n_open=3), 5, {SPACE.key(c): 100.0 for c in openers}
    )
    assert [r.source for r in records] == ["transfer"] * 3 + ["random"] * 2
    for r in records[3:]:
        assert r.proposal.decision["startup"] is True and r.proposal.decision["weights"] == {"bad": 0.0, TARGET: 1.0}


async def test_a_fallback_is_the_optimizers_choice_with_its_reason() -> None:
    strategy = BOStrategy()
    p = await strategy.fallback(ProposeContext(space=SPACE, records=[], rng=random.Random(0)), "the model was silent")
    assert p.source == "fallback" and p.reason == "the model was silent" and p.config is not None
    again = await strategy.fallback(ProposeContext(space=SPACE, records=[], rng=random.Random(0)), "again")
    assert again.config != p.config  # the first is in flight: never handed out twice


def stopped_early(seed: int) -> list[TrialRecord]:
    """10 distinct trials, none run to the end: 6 stopped at step 3 (their value there is ``f``), 4 at step 1."""
    rng = random.Random(100 + seed)
    configs = list({SPACE.key(c): c for c in (SPACE.sample(rng) for _ in range(40))}.values())[:10]
    return [
        TrialRecord(number=i, config=c, state="pruned", curve={1: f(c) + 0.5, 3: f(c)} if i < 6 else {1: f(c) + 0.5})
        for i, c in enumerate(configs)
    ]


async def test_with_rungs_trials_stopped_early_inform_the_next_proposals_and_are_not_repeated() -> None:
    """The option beside the default's model over steps (test_fidelity), which is off here. No trial ran to the
    end: without rungs, the proposal is a startup draw; with them, the GP fits the 6 trials that reached step 3,
    and its proposals are far better on average (8 seeded draws)."""
    mean = {}
    for rungs in (False, True):
        values = []
        for s in range(8):
            stopped = stopped_early(s)
            configs = [r.config for r in stopped]
            ctx = ProposeContext(space=SPACE, records=stopped, rng=random.Random(s))
            p = await BOStrategy(rungs=rungs, fidelity=False).propose(ctx)
            assert p.config is not None and SPACE.key(p.config) not in {SPACE.key(c) for c in configs}
            values.append(f(p.config))
        mean[rungs] = sum(values) / len(values)
    assert mean[True] < mean[False] / 2


async def test_learning_from_a_source_the_studys_stopped_trials_overrule_it_at_their_highest_rung() -> None:
    """A scheduled study has few complete trials: fit on those alone, its own model had nothing and a misleading
    source kept all the weight (measured on the curve tables: learning from the other tables cost the default
    10/28 against not learning, at 30 full trials' compute). Its trials stopped at step 3 now overrule it."""
    for s in range(4):
        stopped = stopped_early(s)
        misleading = BOStrategy(experience=[source("bad", sign=-1.0)], budget=20, n_open=0, fidelity=False)
        p = await misleading.propose(ProposeContext(space=SPACE, records=stopped, rng=random.Random(s)))
        assert p.decision["weights"] == {"bad": 0.0, TARGET: 1.0}
        assert p.config is not None and f(p.config) < 10, "the source's best is this study's worst (41)"
