"""Tests for agent/strategies/transfer.py: openers, rank weights, proposals and ``bo`` learning from sources."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from agent.optimize import optimize
from agent.records import ProposalInfo, SourceData, Transform, TrialRecord
from agent.space import CategoricalParam, Choice, SearchSpace
from agent.strategies.bo import BOStrategy
from agent.strategies.transfer import (
    TARGET,
    TransferSurrogate,
    normal_scores,
    openers,
)
from agent.study import StudyStore
from agent.tasks import build_task
from evaluators.toy import TOY_FUNCTIONS

GRID = (1, 2, 4, 8, 16, 32, 64, 128)
SPACE = SearchSpace(
    params={
        "a": CategoricalParam(choices=GRID),
        "b": CategoricalParam(choices=GRID),
        "c": CategoricalParam(choices=GRID),
        "d": CategoricalParam(choices=("x", "y", "z")),
    }
)
ALL = [dict(zip(SPACE.params, v, strict=True)) for v in itertools.product(GRID, GRID, GRID, ("x", "y", "z"))]


def f(config: dict[str, Choice]) -> float:
    """A bowl over the grid indices, best at a=32, b=4, c=64, d=y."""
    i = {k: GRID.index(config[k]) for k in "abc"}  # type: ignore[arg-type]
    return (i["a"] - 5) ** 2 + (i["b"] - 2) ** 2 + (i["c"] - 6) ** 2 + 3.0 * (config["d"] != "y")


RANKED = sorted(f(c) for c in ALL)


def percentile(config: dict[str, Choice]) -> float:
    """The share of the space strictly better than ``config``."""
    return float(np.searchsorted(RANKED, f(config))) / len(RANKED)


def source(name: str, sign: float = 1.0, n: int = 40, seed: int = 1, keys: str = "abcd") -> SourceData:
    rng = random.Random(seed)
    configs = [SPACE.sample(rng) for _ in range(n)]
    return SourceData(
        name=name,
        configs=tuple({k: c[k] for k in keys} for c in configs),
        values=tuple(sign * f(c) for c in configs),
    )


def study(surrogate: TransferSurrogate, n: int, seed: int = 0, noise: float = 0.5) -> list[TrialRecord]:
    """``n`` proposals of ``surrogate``, each evaluated (``f`` plus noise) before the next."""
    rng, noisy = random.Random(seed), random.Random(seed + 1)
    records: list[TrialRecord] = []
    for i in range(n):
        config = surrogate.propose(SPACE, records, rng)
        records.append(TrialRecord(number=i, config=config, state="complete", value=f(config) + noisy.gauss(0, noise)))
    return records


def test_normal_scores_rank_after_the_direction() -> None:
    z = normal_scores([3.0, 1.0, 2.0, float("nan")], "minimize")
    assert list(np.argsort(z)) == [1, 2, 0, 3]  # nan ranks worst
    assert np.allclose(normal_scores([3.0, 1.0, 2.0], "maximize"), normal_scores([-3.0, -1.0, -2.0], "minimize"))
    assert np.allclose(normal_scores([5.0, 5.0], "minimize"), [0.0, 0.0])  # ties share their rank
    assert np.allclose(normal_scores([1e9, 0.0, 1e-9], "minimize"), normal_scores([3.0, 1.0, 2.0], "minimize"))


def test_source_data_is_checked() -> None:
    with pytest.raises(ValueError, match="one value for each"):
        SourceData("s", ({"a": 1},), (1.0, 2.0))
    with pytest.raises(ValueError, match="same parameters"):
        SourceData("s", ({"a": 1}, {"b": 1}), (1.0, 2.0))
    with pytest.raises(ValueError, match="distinct names"):
        TransferSurrogate([source("s"), source("s", seed=2)])
    with pytest.raises(ValueError, match="not in the search space"):
        openers(SPACE, [SourceData("s", ({"zzz": 1},), (1.0,))], 2, random.Random(0))


def test_a_faithful_source_opens_with_good_distinct_configurations() -> None:
    chosen = openers(SPACE, [source("same")], 3, random.Random(0))
    assert len(chosen) == 3 and len({SPACE.key(c) for c in chosen}) == 3
    assert all(SPACE.validate_config(c) == c for c in chosen)
    assert max(percentile(c) for c in chosen) < 0.1  # the source's best 3 of 40; a random one sits at 0.5
    misleading = openers(SPACE, [source("negated", sign=-1.0)], 3, random.Random(0))
    assert min(percentile(c) for c in misleading) > 0.5


def test_a_maximize_source_is_its_minimize_mirror() -> None:
    low = source("s")
    high = SourceData("s", low.configs, tuple(-v for v in low.values), "maximize")
    assert openers(SPACE, [low], 4, random.Random(0)) == openers(SPACE, [high], 4, random.Random(0))
    records = study(TransferSurrogate([low]), 6)
    a, b = TransferSurrogate([low]), TransferSurrogate([high])
    assert a.weights(SPACE, records, "minimize", random.Random(3)) == b.weights(
        SPACE, records, "minimize", random.Random(3)
    )
    assert a.propose(SPACE, records, random.Random(4)) == b.propose(SPACE, records, random.Random(4))


def test_a_source_covering_some_parameters_completes_its_configurations() -> None:
    partial = source("ab", keys="ab")
    chosen = openers(SPACE, [partial], 3, random.Random(0))
    assert all(SPACE.validate_config(c) == c for c in chosen)
    assert {c["c"] for c in chosen} == {GRID[3]}  # the grid's middle value for a parameter it lacks
    best = {k: GRID.index(c[k]) for c in chosen[:1] for k in "ab"}  # type: ignore[arg-type]
    assert abs(best["a"] - 5) <= 1 and abs(best["b"] - 2) <= 1
    records = study(TransferSurrogate([partial]), 8)
    assert len({SPACE.key(r.config) for r in records}) == 8


def test_the_weights_trust_a_faithful_source_and_drop_a_misleading_one() -> None:
    surrogate = TransferSurrogate([source("same"), source("negated", sign=-1.0, seed=2)])
    records = study(surrogate, 10)
    early = surrogate.weights(SPACE, records[:5], "minimize", random.Random(0))
    weights = surrogate.weights(SPACE, records, "minimize", random.Random(0))
    assert set(weights) == {"same", "negated", TARGET} and abs(sum(weights.values()) - 1.0) < 1e-9
    assert early["negated"] == weights["negated"] == 0.0
    assert early["same"] > 0.5 and weights["same"] > 0.2  # this study's own model learns too
    assert min(percentile(r.config) for r in records) < 0.01  # near the optimum of 1536 configurations


def test_a_misleading_source_alone_fades_below_the_study_own_model() -> None:
    surrogate = TransferSurrogate([source("negated", sign=-1.0)])
    records = study(surrogate, 10)
    early = surrogate.weights(SPACE, records[:2], "minimize", random.Random(0))
    late = surrogate.weights(SPACE, records, "minimize", random.Random(0))
    assert late["negated"] < late[TARGET] and late["negated"] <= early["negated"]


def test_results_all_alike_give_the_sources_no_weight() -> None:
    """A misleading source's openers that all failed alike order nothing: the study's own model keeps the
    weight (ties are its), and the next trial is drawn at random rather than at a flat model's corners."""
    misleading = source("negated", sign=-1.0)
    worst = openers(SPACE, [misleading], 3, random.Random(0))
    records = [TrialRecord(number=i, config=c, state="complete", value=0.5) for i, c in enumerate(worst)]
    surrogate = TransferSurrogate([misleading])
    assert surrogate.weights(SPACE, records, "minimize", random.Random(0)) == {"negated": 0.0, TARGET: 1.0}
    proposal = surrogate.propose_weighted(SPACE, records, random.Random(1))
    assert proposal.weights[TARGET] == 1.0 and proposal.startup
    assert SPACE.key(proposal.config) not in {SPACE.key(c) for c in worst}


def test_after_misleading_openers_the_study_starts_as_bo_would() -> None:
    """Openers that the results contradict cost only themselves: the study's own model does not take over from
    a few failed openers and one result; three random trials of its own come first (``bo``'s startup)."""
    misleading = source("negated", sign=-1.0)
    opened = [
        TrialRecord(number=i, config=c, state="complete", value=f(c), proposal=ProposalInfo(source="transfer"))
        for i, c in enumerate(openers(SPACE, [misleading], 3, random.Random(0)))
    ]
    surrogate, rng = TransferSurrogate([misleading]), random.Random(2)
    records, startups = list(opened), []
    for i in range(3, 9):
        p = surrogate.propose_weighted(SPACE, records, rng)
        startups.append(p.startup)
        records.append(TrialRecord(number=i, config=p.config, state="complete", value=f(p.config)))
    assert startups == [True] * 3 + [False] * 3
    assert surrogate.weights(SPACE, records, "minimize", random.Random(0))["negated"] == 0.0
    faithful = TransferSurrogate([source("same")])
    good = [
        TrialRecord(number=i, config=c, state="complete", value=f(c), proposal=ProposalInfo(source="transfer"))
        for i, c in enumerate(openers(SPACE, [source("same")], 3, random.Random(0)))
    ]
    assert not faithful.propose_weighted(SPACE, good, random.Random(3)).startup


def test_unrelated_sources_blind_to_what_their_openers_differ_in_leave_the_study_to_its_startup() -> None:
    """Four unrelated studies laid onto ``a`` and ``b`` open the study at the same ``a`` and ``b`` (as the toy
    functions' studies opened NAS-Bench-201's): they cannot order what the openers differ in, so they get no
    weight and the next trial is random, the study's own startup as in ``bo`` (before, they held weight by luck
    and steered the study around their openers, with no exploration of its own: docs/warp.md)."""
    rng = random.Random(5)
    unrelated = [
        SourceData(
            name=f"toy-{k}",
            configs=tuple({"a": rng.choice(GRID), "b": rng.choice(GRID)} for _ in range(30)),
            values=tuple(rng.random() for _ in range(30)),
        )
        for k in range(4)
    ]
    alike = [c for c in ALL if c["a"] == 8 and c["b"] == 2]
    opened = [
        TrialRecord(number=i, config=c, state="complete", value=f(c), proposal=ProposalInfo(source="transfer"))
        for i, c in enumerate(random.Random(6).sample(alike, 3))
    ]
    first = TransferSurrogate(unrelated).propose_weighted(SPACE, opened, random.Random(7))
    assert first.weights == {**{s.name: 0.0 for s in unrelated}, TARGET: 1.0}
    assert first.startup


def test_openers_extreme_values_do_not_flatten_the_study_own_model() -> None:
    """Three decoy openers scoring 1000 times the rest (a diverged regression): standardized, the study's own
    model could not tell its other results apart; warped (the default), their spread survives."""
    misleading = source("negated", sign=-1.0)
    opened = [
        TrialRecord(
            number=i, config=c, state="complete", value=1000.0 * (i + 1), proposal=ProposalInfo(source="transfer")
        )
        for i, c in enumerate(openers(SPACE, [misleading], 3, random.Random(0)))
    ]
    rng = random.Random(4)
    own = [SPACE.sample(rng) for _ in range(6)]
    records = opened + [TrialRecord(number=3 + i, config=c, state="complete", value=f(c)) for i, c in enumerate(own)]

    def spread(transform: Transform | None) -> float:
        _, target = TransferSurrogate([misleading], transform=transform)._fit(SPACE, records, "minimize")
        assert target is not None
        return float(np.ptp(target.scores[3:]))  # the study's own results, after the openers

    flat = spread("none")
    assert flat < 0.05, flat
    for transform in ("yeo-johnson", None):  # None: the default, a log of these positive values
        assert spread(transform) > 15 * flat, (transform, spread(transform), flat)


def test_proposals_are_untried_and_avoid_configurations_in_flight() -> None:
    surrogate = TransferSurrogate([source("same")])
    records = study(surrogate, 12)
    assert len({SPACE.key(r.config) for r in records}) == 12
    taken = {SPACE.key(c) for c in openers(SPACE, [source("same")], 20, random.Random(0))}
    for seed in range(3):
        config = surrogate.propose(SPACE, records, random.Random(seed), also_taken=taken)
        assert SPACE.key(config) not in taken | {SPACE.key(r.config) for r in records}
        assert SPACE.validate_config(config) == config


def test_without_sources_the_surrogate_is_bo() -> None:
    records = study(TransferSurrogate([source("same")]), 5)
    plain, empty = TransferSurrogate([]), BOStrategy().surrogate
    assert plain.propose(SPACE, records, random.Random(7)) == empty.propose(SPACE, records, random.Random(7))
    assert plain.weights(SPACE, records, "minimize", random.Random(0)) == {}


# ---- the strategy in whole studies --------------------------------------------------------------------


def branin_source(n: int = 30) -> SourceData:
    """The toy's own values at random points: a source that knows the task."""
    task = build_task("toy-branin")
    rng = random.Random(5)
    configs = [task.space.sample(rng) for _ in range(n)]
    fn = TOY_FUNCTIONS["branin"]
    return SourceData("branin", tuple(configs), tuple(fn(float(c["x1"]), float(c["x2"])) for c in configs))


def open_store(path: Path, task: str) -> StudyStore:
    return StudyStore.open(
        save_dir=path, study_name="s", space=build_task(task).space, meta={"task": task}, storage=str(path / "s.log")
    )


@pytest.mark.anyio
async def test_transfer_bo_opens_with_the_sources_then_weighs_them_and_resumes(tmp_path: Path) -> None:
    task = build_task("toy-branin", seed=0)
    store = open_store(tmp_path, task.name)
    strategy = BOStrategy(experience=[branin_source()], budget=7, n_open=3)
    await optimize(tool=task.tool, strategy=strategy, store=store, budget=7, seed=0)
    store.close()
    store = open_store(tmp_path, task.name)
    again = BOStrategy(experience=[branin_source()], budget=10, n_open=3)  # a new process: state from storage
    await optimize(tool=task.tool, strategy=again, store=store, budget=10, seed=1)
    records = store.records()
    store.close()
    assert [r.source for r in records] == ["transfer"] * 3 + ["surrogate"] * 7
    assert len({task.space.key(r.config) for r in records}) == 10
    assert all(r.value is not None and r.value < 10.0 for r in records[:3])  # the source's median is 43
    for r in records[3:]:
        weights = r.proposal.decision["weights"]
        assert set(weights) == {"branin", TARGET} and abs(sum(weights.values()) - 1.0) < 0.01


@pytest.mark.anyio
async def test_transfer_bo_without_sources_is_bo(tmp_path: Path) -> None:
    task = build_task("toy-branin", seed=0)
    configs = []
    for name, strategy in (("bo", BOStrategy()), ("transfer", BOStrategy(experience=[], budget=6))):
        store = open_store(tmp_path / name, task.name)
        await optimize(tool=build_task("toy-branin", seed=0).tool, strategy=strategy, store=store, budget=6, seed=2)
        configs.append([r.config for r in store.records()])
        assert {r.source for r in store.records()} == {"random", "surrogate"}
        store.close()
    assert configs[0] == configs[1]
