"""Tests for agent/strategies/warp.py: the monotone warp of a study's values before a Gaussian process."""

from __future__ import annotations

import random

import numpy as np
import pytest

from agent.records import TRANSFORMS, TrialRecord
from agent.space import FloatParam, SearchSpace
from agent.strategies.surrogate import SurrogateModel, scores
from agent.strategies.warp import warp, yeo_johnson

# The table: typical validation MSE 0.3-0.4, the best 0.22, three openers from a decoy at 8-13.
TYPICAL = [0.31, 0.33, 0.35, 0.36, 0.38, 0.40, 0.34, 0.37]
HEAVY = [*TYPICAL, 0.22, 13.3, 10.1, 8.2]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_every_warp_keeps_the_order_and_is_standardized(transform: str) -> None:
    values = np.array(HEAVY)
    z = warp(values, transform).scores  # type: ignore[arg-type]
    order = np.argsort(values)
    assert np.all(np.diff(z[order]) > 0), "strictly increasing with the values"
    assert z.mean() == pytest.approx(0.0, abs=1e-9) and z.std() == pytest.approx(1.0)


@pytest.mark.parametrize("transform", ["yeo-johnson", "log", "rank"])
def test_a_few_outliers_no_longer_flatten_the_rest(transform: str) -> None:
    """Standardized, 0.22 and 0.31 are 0.02 sd apart (the model cannot tell them); warped, ten times more."""
    plain = warp(HEAVY, "none").scores
    warped = warp(HEAVY, transform).scores  # type: ignore[arg-type]
    best, next_best = HEAVY.index(0.22), HEAVY.index(0.31)
    assert plain[next_best] - plain[best] < 0.02
    assert warped[next_best] - warped[best] > 10 * (plain[next_best] - plain[best])


def test_yeo_johnson_leaves_normal_values_nearly_as_they_are() -> None:
    values = np.random.default_rng(0).normal(size=200)
    assert np.corrcoef(warp(values, "yeo-johnson").scores, values)[0, 1] > 0.999
    assert yeo_johnson(np.array([-1.0, 0.0, 2.0]), 1.0) == pytest.approx([-1.0, 0.0, 2.0]), "lambda 1: identity"


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_prediction_returns_to_the_values_units(transform: str) -> None:
    w = warp(HEAVY, transform)  # type: ignore[arg-type]
    mean, sd = w.values(w.scores, np.full(len(HEAVY), 0.1))
    assert mean == pytest.approx(HEAVY, rel=1e-6), "the inverse at the training points gives the values back"
    assert np.all(sd >= 0)
    beyond, _ = w.values(np.array([w.scores.min() - 1.0, w.scores.max() + 1.0]), np.ones(2))
    assert beyond[0] < min(HEAVY) and beyond[1] > max(HEAVY), "extrapolated past the ends, still monotone"


def test_log_shifts_values_that_are_not_all_positive_and_scores_follow_the_direction() -> None:
    z = warp([-2.0, 0.0, 5.0, 100.0], "log").scores
    assert np.all(np.diff(z) > 0)
    maximized = scores([0.9, 0.8, 0.5], "maximize", "yeo-johnson").scores
    assert maximized[0] < maximized[1] < maximized[2], "lower is better: the highest accuracy scores lowest"


def test_without_a_name_the_warp_is_log_for_positive_values_else_yeo_johnson() -> None:
    assert warp(HEAVY).transform == "log" and np.allclose(warp(HEAVY).scores, warp(HEAVY, "log").scores)
    accuracy = scores([0.9, 0.8, 0.5], "maximize")  # seen as -0.9, -0.8, -0.5: not all positive
    assert accuracy.transform == "yeo-johnson"
    assert warp([0.0, 0.1, 3.0]).transform == "yeo-johnson", "a zero error: no log of it"


def test_an_unknown_transform_says_which_exist() -> None:
    with pytest.raises(ValueError, match="unknown transform 'box-cox'; choose from yeo-johnson, log, rank, none"):
        warp([1.0, 2.0], "box-cox")  # type: ignore[arg-type]


def test_bo_predicts_in_the_study_units_through_the_warp() -> None:
    """``bo``'s model learns warped scores; what it predicts at a tried configuration is near its value."""
    space = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})
    rng = random.Random(0)
    xs = [i / 11 for i in range(12)]
    values = [0.3 + (x - 0.4) ** 2 + (12.0 if x > 0.9 else 0.0) for x in xs]  # two outliers at the edge
    records = [
        TrialRecord(number=i, config={"x": x}, state="complete", value=v)
        for i, (x, v) in enumerate(zip(xs, values, strict=True))
    ]
    config, surface = SurrogateModel().proposal(space, records, rng)
    assert surface is not None
    assert 0.0 <= float(config["x"]) <= 1.0
    mean, var = surface.predict([{"x": 0.4}, {"x": 1.0}])
    m, _ = surface.values(mean, np.sqrt(var))
    assert m[0] == pytest.approx(0.3, abs=0.1)
    assert m[1] > 5.0
