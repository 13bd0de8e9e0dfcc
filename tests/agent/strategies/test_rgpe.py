"""Tests for agent/strategies/_rgpe.py: RGPE's ranking weights, the weighted ensemble, and the configuration of
highest expected improvement under it."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from agent.space import CategoricalParam, Choice, SearchSpace
from agent.strategies._rgpe import Ensemble, Model, fill, fit_model, maximize_ei, rank_weights
from agent.strategies.candidates import expected_improvement

GRID = (1, 2, 4, 8, 16)
SPACE = SearchSpace(
    params={
        "a": CategoricalParam(choices=GRID),
        "b": CategoricalParam(choices=GRID),
        "d": CategoricalParam(choices=("x", "y")),
    }
)
ALL = [dict(zip(SPACE.params, v, strict=True)) for v in itertools.product(GRID, GRID, ("x", "y"))]


def f(config: dict[str, Choice]) -> float:
    """A bowl over the grid indices, best at a=8, b=2, d=y."""
    return (GRID.index(config["a"]) - 3) ** 2 + (GRID.index(config["b"]) - 1) ** 2 + 2.0 * (config["d"] != "y")  # type: ignore[arg-type]


def standardized(values: list[float]) -> np.ndarray:
    v = np.asarray(values)
    return (v - v.mean()) / v.std()


def model(name: str, configs: list[dict[str, Choice]], sign: float = 1.0) -> Model:
    return fit_model(SPACE, name, configs, standardized([sign * f(c) for c in configs]))


def sample(n: int, seed: int) -> list[dict[str, Choice]]:
    return random.Random(seed).sample(ALL, n)


def test_a_source_that_orders_the_results_right_wins_weight_and_a_reversed_one_loses_it() -> None:
    target = model("target", sample(8, seed=1))
    faithful, reversed_ = model("faithful", sample(30, seed=2)), model("reversed", sample(30, seed=2), sign=-1.0)
    w = rank_weights([faithful, reversed_], target, np.random.default_rng(0), 256)
    assert w.shape == (3,) and np.isclose(w.sum(), 1.0)
    assert w[0] > 0.5, "a source that knows the function beats this study's model of 8 results"
    assert w[1] == 0.0, "a source that orders every pair wrong never wins a draw"
    alone = rank_weights([reversed_], target, np.random.default_rng(0), 256)
    assert alone.tolist() == [0.0, 1.0]


def test_results_all_alike_give_the_sources_nothing_and_before_two_they_share_it() -> None:
    configs = sample(5, seed=3)
    flat = fit_model(SPACE, "target", configs, np.full(5, 0.5))
    faithful = model("faithful", sample(30, seed=2))
    assert rank_weights([faithful], flat, np.random.default_rng(0), 64).tolist() == [0.0, 1.0]
    one = fit_model(SPACE, "target", configs[:1], np.zeros(1))
    two_sources = rank_weights([faithful, model("other", sample(30, seed=4))], one, np.random.default_rng(0), 64)
    assert two_sources.tolist() == [0.5, 0.5, 0.0]
    assert rank_weights([faithful], None, np.random.default_rng(0), 64).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_a_source_blind_to_what_the_results_differ_in_gets_no_weight(n: int) -> None:
    """Sources over ``a`` alone, the results all at the same ``a``: the sources cannot order them (ties, a coin's
    loss), and lose every draw, however poorly this study's model of a few results orders them (before the fix
    the sampler's jitter ordered the ties at random, and four such sources took up to 0.6 of the weight)."""
    alike = [c for c in ALL if c["a"] == 8]
    blind = [
        fit_model(SPACE, f"blind-{k}", [{"a": a} for a in GRID], standardized([(i - k) ** 2 for i in range(5)]))
        for k in range(4)
    ]
    for seed in range(4):
        results = random.Random(seed).sample(alike, n)
        target = fit_model(SPACE, "target", results, standardized([f(c) for c in results]))
        assert rank_weights(blind, target, np.random.default_rng(seed), 256).tolist() == [0.0] * 4 + [1.0]


def test_the_ensemble_mixes_means_by_weight_and_variances_by_its_square() -> None:
    a, b = model("a", sample(12, seed=5)), model("b", sample(12, seed=6), sign=-1.0)
    ensemble = Ensemble([(a, 0.25), (b, 0.75)], a)
    points = sample(6, seed=7)
    (ma, va), (mb, vb) = a.predict(points), b.predict(points)
    mean, var = ensemble.predict(points)
    assert np.allclose(mean, 0.25 * ma + 0.75 * mb) and np.allclose(var, 0.0625 * va + 0.5625 * vb)
    assert ensemble.incumbent == a.scores.min()
    assert np.isnan(ensemble.values(mean, np.sqrt(var))[0]).all()  # no units to return to: unknown


def test_maximize_ei_picks_the_untried_configuration_of_highest_expected_improvement() -> None:
    """The space's 50 configurations all enter the pool (512 random draws): the choice is the best of them."""
    target = model("target", sample(10, seed=8))
    source = model("source", sample(30, seed=9))
    ensemble: list[tuple[Model, float]] = [(source, 0.6), (target, 0.4)]
    taken = {SPACE.key(c) for c in target.configs}
    chosen = maximize_ei(SPACE, ensemble, target, random.Random(0), taken)
    untried = [c for c in ALL if SPACE.key(c) not in taken]
    ei = expected_improvement(*Ensemble(ensemble, target).predict(untried), float(target.scores.min()))
    assert SPACE.key(chosen) not in taken
    assert chosen == untried[int(np.argmax(ei))]
    everything = {SPACE.key(c) for c in ALL}
    assert SPACE.key(maximize_ei(SPACE, ensemble, target, random.Random(0), everything)) in everything  # none left


def test_fill_completes_a_configuration_with_the_middle_of_what_it_lacks() -> None:
    filled = fill(SPACE, {"a": 16}, random.Random(0))
    assert filled["a"] == 16 and filled["b"] == 4 and filled["d"] in ("x", "y")
    assert SPACE.validate_config(filled) == filled
