"""Tests for agent/strategies/surrogate.py: the ordinal encoding and the surrogate's proposals."""

from __future__ import annotations

import itertools
import math
import random

import optuna.distributions as od
import pytest

from agent.records import Direction, TrialRecord
from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace
from agent.strategies.surrogate import SurrogateModel, decode, encode, ordinal_distributions, untried

GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
SPACE = SearchSpace(
    params={
        "lr": CategoricalParam(choices=GRID),
        "batch": CategoricalParam(choices=(16, 32, 64, 128)),
        "act": CategoricalParam(choices=("relu", "tanh")),
        "dropout": FloatParam(low=0.0, high=0.5),
        "units": IntParam(low=8, high=256, log=True),
    }
)


def test_distributions_and_round_trip() -> None:
    dists = ordinal_distributions(SPACE)
    assert dists["lr"] == od.IntDistribution(0, 4)
    assert dists["batch"] == od.IntDistribution(0, 3)
    assert dists["act"] == od.CategoricalDistribution(("relu", "tanh"))
    assert dists["units"] == od.IntDistribution(8, 256, log=True)
    config = {"lr": 1e-3, "batch": 64, "act": "tanh", "dropout": 0.25, "units": 40}
    assert encode(SPACE, config) == {"lr": 2, "batch": 2, "act": "tanh", "dropout": 0.25, "units": 40}
    assert decode(SPACE, encode(SPACE, config)) == config
    assert encode(SPACE, {**config, "lr": 3.5e-4})["lr"] == 2  # off the grid: nearest in log, 1e-3 (index 2)


def _records(configs: list[dict[str, object]], values: list[float | None]) -> list[TrialRecord]:
    return [
        TrialRecord(number=i, config=c, state="fail" if v is None else "complete", value=v)
        for i, (c, v) in enumerate(zip(configs, values, strict=True))
    ]


def _objective(config: dict[str, object]) -> float:
    """Best at lr 1e-3, batch 32, relu: a smooth bowl over the grid indices."""
    lr = math.log10(float(config["lr"]))  # type: ignore[arg-type]
    batch = math.log2(float(config["batch"]))  # type: ignore[arg-type]
    return (lr + 3) ** 2 + (batch - 5) ** 2 + (config["act"] != "relu") + float(config["dropout"])  # type: ignore[arg-type]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_proposals_are_valid_untried_and_find_the_bowl(direction: Direction) -> None:
    """Maximizing the bowl turned upside down finds the same bottom."""
    sign = -1.0 if direction == "maximize" else 1.0
    model = SurrogateModel(n_startup=3)
    rng = random.Random(0)
    records: list[TrialRecord] = []
    for i in range(20):
        config = model.propose(SPACE, records, rng, direction=direction)
        assert SPACE.validate_config(config) == config
        assert SPACE.key(config) not in {SPACE.key(r.config) for r in records}
        records.append(TrialRecord(number=i, config=config, state="complete", value=sign * _objective(config)))
    best = min(sign * r.value for r in records if r.value is not None)
    # Random search's expected best of 20 on this bowl is about 1.0 (measured over 2000 draws below).
    random_bests = []
    for seed in range(200):
        r = random.Random(seed)
        random_bests.append(min(_objective(SPACE.sample(r)) for _ in range(20)))
    assert best < sorted(random_bests)[100]


def test_failed_trials_count_as_the_worst_and_running_ones_are_not_reproposed() -> None:
    model = SurrogateModel(n_startup=1)
    configs = [SPACE.sample(random.Random(i)) for i in range(4)]
    records = _records(configs[:3], [1.0, None, 2.0])
    running = TrialRecord(number=3, config=configs[3], state="running")
    for seed in range(5):
        config = model.propose(SPACE, [*records, running], random.Random(seed))
        assert SPACE.key(config) not in {SPACE.key(c) for c in configs}


def test_a_small_space_is_covered_without_repeats() -> None:
    space = SearchSpace(params={"a": CategoricalParam(choices=(1, 2, 3)), "b": CategoricalParam(choices=("x", "y"))})
    model = SurrogateModel(n_startup=2)
    rng = random.Random(1)
    records: list[TrialRecord] = []
    for i in range(6):
        config = model.propose(space, records, rng)
        records.append(TrialRecord(number=i, config=config, state="complete", value=float(i)))
    all_keys = {space.key({"a": a, "b": b}) for a, b in itertools.product((1, 2, 3), ("x", "y"))}
    assert {space.key(r.config) for r in records} == all_keys


def test_untried_gives_up_gracefully_on_an_exhausted_space() -> None:
    space = SearchSpace(params={"a": CategoricalParam(choices=(1, 2, 3))})
    taken = {space.key({"a": a}) for a in (1, 2, 3)}
    assert untried(space, taken, random.Random(0))["a"] in (1, 2, 3)


def test_trials_from_another_space_are_ignored() -> None:
    model = SurrogateModel(n_startup=1)
    foreign = TrialRecord(number=0, config={"other": 1}, state="complete", value=0.5)
    config = model.propose(SPACE, [foreign], random.Random(0))
    assert SPACE.validate_config(config) == config
