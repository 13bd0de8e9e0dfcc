"""Tests for agent/strategies/opening.py: the sources' best configurations handed out to open a study."""

from __future__ import annotations

import random

import pytest

from agent.records import ProposalInfo, SourceData, TrialRecord
from agent.space import CategoricalParam, Choice, SearchSpace
from agent.strategies.base import ProposeContext
from agent.strategies.baselines import RandomStrategy
from agent.strategies.opening import Opened, Openers
from agent.strategies.transfer import TransferSurrogate

pytestmark = pytest.mark.anyio

GRID = (1, 2, 4, 8, 16, 32)
SPACE = SearchSpace(params={"a": CategoricalParam(choices=GRID), "b": CategoricalParam(choices=GRID)})
SPACE_ALL: list[dict[str, Choice]] = [{"a": a, "b": b} for a in GRID for b in GRID]


def f(config: dict[str, Choice]) -> float:
    return (GRID.index(config["a"]) - 4) ** 2 + (GRID.index(config["b"]) - 1) ** 2  # type: ignore[arg-type]


def source() -> SourceData:
    rng = random.Random(1)
    configs = [SPACE.sample(rng) for _ in range(25)]
    return SourceData("s", tuple(configs), tuple(f(c) for c in configs))


def ctx(records: list[TrialRecord]) -> ProposeContext:
    return ProposeContext(space=SPACE, records=records, rng=random.Random(0))


def record(number: int, config: dict[str, Choice], source: str = "transfer") -> TrialRecord:
    return TrialRecord(
        number=number, config=config, state="complete", value=f(config), proposal=ProposalInfo(source=source)
    )


def test_openers_hand_out_the_sources_best_in_order_and_stop_at_n_open() -> None:
    transfer = TransferSurrogate([source()])
    best = transfer.openers(SPACE, 13)
    openers = Openers(transfer, n_open=3)
    given = [openers.next(ctx([])) for _ in range(4)]
    assert given[3] is None
    assert [p.config for p in given[:3] if p is not None] == best[:3]
    assert all(p is not None and p.source == "transfer" for p in given[:3])
    assert [p.decision for p in given[:3] if p is not None] == [{"opener": 0}, {"opener": 1}, {"opener": 2}]
    assert max(f(c) for c in best[:3]) <= sorted(f(c) for c in SPACE_ALL)[len(SPACE_ALL) // 4]


def test_an_opener_the_study_has_is_skipped_for_the_next() -> None:
    transfer = TransferSurrogate([source()])
    best = transfer.openers(SPACE, 13)
    study = [record(0, best[0], source="llm")]  # tried already, but not as an opener
    first = Openers(transfer, n_open=3).next(ctx(study), also_taken={SPACE.key(best[1])})  # best[1] in flight
    assert first is not None and first.config == best[2] and first.decision == {"opener": 2}


def test_the_study_counts_as_opened_by_its_own_records_of_source_transfer() -> None:
    """A resumed study: the openers recorded by an earlier process count, so no new ones are handed out."""
    transfer = TransferSurrogate([source()])
    best = transfer.openers(SPACE, 13)
    resumed = [record(i, c) for i, c in enumerate(best[:2])]
    openers = Openers(transfer, n_open=3)
    third = openers.next(ctx(resumed))
    assert third is not None and third.config == best[2]
    assert openers.next(ctx(resumed)) is None
    assert Openers(transfer, n_open=2).next(ctx(resumed)) is None


async def test_opened_runs_its_inner_strategy_after_the_openers() -> None:
    opened = Opened(RandomStrategy(), [source()], n_open=2)
    assert opened.name == "random"
    batch = await opened.propose_batch(ctx([]), 3)
    assert [p.source for p in batch] == ["transfer", "transfer", "sampler"]
    assert batch[2].config is None  # the inner strategy's own: its sampler draws it
    assert (await opened.propose(ctx([]))).source == "sampler"
