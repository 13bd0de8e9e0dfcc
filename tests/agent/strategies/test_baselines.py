"""Tests for agent/strategies/baselines.py and the seed rule in agent/strategies/base.py."""

from __future__ import annotations

import math
import random
from typing import Any

import optuna
import pytest

from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace
from agent.strategies.base import Proposal, ProposeContext, Strategy, resumed_seed
from agent.strategies.baselines import RandomStrategy, TPEStrategy
from agent.study.codec import encode_proposal

SPACE = SearchSpace(
    params={
        "lr": FloatParam(low=1e-5, high=0.1, log=True),
        "momentum": FloatParam(low=0.0, high=0.99),
        "units": IntParam(low=8, high=512, log=True),
        "layers": IntParam(low=1, high=4),
        "optimizer": CategoricalParam(choices=("adam", "sgd", "rmsprop")),
        "width": CategoricalParam(choices=(64, 128, 0.5)),
    }
)
STRATEGIES = [RandomStrategy, TPEStrategy]


def objective(params: dict[str, Any]) -> float:
    return (math.log10(params["lr"]) + 3) ** 2 + params["momentum"] + params["layers"] / 10


def run(strategy: Strategy, seed: int, n: int, n_existing: int = 0) -> list[dict[str, Any]]:
    """``n`` ask/tell rounds on an in-memory study; the parameters of each trial."""
    study = optuna.create_study(sampler=strategy.sampler(seed, n_existing))
    out = []
    for _ in range(n):
        trial = study.ask(SPACE.to_optuna())
        out.append(dict(trial.params))
        study.tell(trial, objective(trial.params))
    return out


@pytest.mark.parametrize("cls", STRATEGIES)
def test_samplers_produce_valid_configs(cls: type[Strategy]) -> None:
    configs = run(cls(), seed=0, n=14)  # TPE's own model takes over after 10 random startup trials
    for config in configs:
        assert SPACE.validate_config(config) == config
        assert type(config["units"]) is int and type(config["layers"]) is int
    assert len({SPACE.key(c) for c in configs}) > 10


@pytest.mark.parametrize("cls", STRATEGIES)
def test_seeds_are_reproducible(cls: type[Strategy]) -> None:
    assert run(cls(), seed=3, n=12) == run(cls(), seed=3, n=12)
    assert run(cls(), seed=3, n=3) != run(cls(), seed=4, n=3)


@pytest.mark.parametrize("cls", STRATEGIES)
def test_a_resumed_sampler_does_not_replay(cls: type[Strategy]) -> None:
    fresh = run(cls(), seed=0, n=3)
    assert run(cls(), seed=0, n=3, n_existing=3) != fresh
    assert run(cls(), seed=0, n=3, n_existing=3) == run(cls(), seed=0, n=3, n_existing=3)


def test_resumed_seed() -> None:
    assert resumed_seed(0, 0) == 0
    assert resumed_seed(42, 0) == 42
    seeds = [resumed_seed(42, n) for n in range(1, 50)]
    assert 42 not in seeds
    assert len(set(seeds)) == len(seeds)  # every resume point gets its own seed
    assert seeds == [resumed_seed(42, n) for n in range(1, 50)]
    assert resumed_seed(42, 5) != resumed_seed(43, 5)
    for seed in (0, 1, 2**31 - 2, 2**40):
        for n in (1, 7, 10_000):
            assert 0 <= resumed_seed(seed, n) < 2**31 - 1


@pytest.mark.parametrize(
    ("cls", "sampler", "name"),
    [(RandomStrategy, optuna.samplers.RandomSampler, "random"), (TPEStrategy, optuna.samplers.TPESampler, "tpe")],
)
def test_sampler_kinds(cls: type[Strategy], sampler: type[optuna.samplers.BaseSampler], name: str) -> None:
    assert cls.name == name
    assert isinstance(cls().sampler(0, 0), sampler)


@pytest.mark.anyio
@pytest.mark.parametrize("cls", STRATEGIES)
async def test_propose_leaves_the_draw_to_the_study(cls: type[Strategy]) -> None:
    ctx = ProposeContext(space=SPACE, records=[], rng=random.Random(0))
    proposal = await cls().propose(ctx)
    assert proposal == Proposal(config=None, source="sampler")
    assert encode_proposal(proposal.info()) == {}  # the default source: nothing to store
