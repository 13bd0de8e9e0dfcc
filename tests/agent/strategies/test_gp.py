"""Tests for agent/strategies/_gp.py: the numpy Gaussian process matches Optuna's and its closed forms hold."""

from __future__ import annotations

import random

import numpy as np

from agent._optuna import GaussianProcess as OptunaGP
from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace
from agent.strategies._gp import Encoder, GaussianProcess
from agent.strategies.surrogate import encode, ordinal_distributions

SPACE = SearchSpace(
    params={
        "lr": CategoricalParam(choices=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
        "units": IntParam(low=8, high=256, log=True),
        "dropout": FloatParam(low=0.0, high=0.5),
        "act": CategoricalParam(choices=("relu", "tanh", "gelu")),
    }
)


def value(c: dict[str, object]) -> float:
    lr = float(np.log10(float(c["lr"])))  # type: ignore[arg-type]
    return (lr + 3) ** 2 + (float(c["dropout"]) - 0.2) ** 2 * 10 + (c["act"] != "gelu") + np.log(float(c["units"])) / 5  # type: ignore[arg-type]


def data(n: int = 25, seed: int = 0) -> tuple[list[dict[str, object]], np.ndarray]:
    rng = random.Random(seed)
    configs: list[dict[str, object]] = [dict(SPACE.sample(rng)) for _ in range(n)]
    return configs, np.array([value(c) for c in configs])


def test_encoder_maps_into_the_unit_cube_and_can_cover_a_subset() -> None:
    enc = Encoder(SPACE)
    x = enc(
        [
            {"lr": 1e-5, "units": 8, "dropout": 0.5, "act": "tanh"},
            {"lr": 1e-1, "units": 256, "dropout": 0.0, "act": "relu"},
        ]
    )
    assert np.allclose(x[:, 0], [0.1, 0.9])  # grid index, centred in its cell as Optuna does
    assert np.allclose(x[:, 1], [0.0, 1.0]) and np.allclose(x[:, 2], [1.0, 0.0])
    assert list(x[:, 3]) == [1.0, 0.0] and list(enc.is_categorical) == [False, False, False, True]
    part = Encoder(SPACE, ["dropout"])
    assert part([{"dropout": 0.25}]).tolist() == [[0.5]]


def test_fit_and_predictions_match_optunas_gaussian_process() -> None:
    configs, y = data()
    enc = Encoder(SPACE)
    mine = GaussianProcess(enc(configs), y, enc.is_categorical)
    theirs = OptunaGP(ordinal_distributions(SPACE), [encode(SPACE, c) for c in configs], list(y), maximize=False)
    test, _ = data(10, seed=1)
    mean, var = mine.predict(enc(test))
    their_mean, their_sd = theirs.predict([encode(SPACE, c) for c in test])
    assert np.allclose(mean, their_mean, atol=0.02 * y.std())
    assert np.allclose(np.sqrt(var), their_sd, rtol=0.1, atol=0.01 * y.std())


def test_leave_one_out_is_the_model_refitted_without_each_point_at_the_same_kernel() -> None:
    configs, y = data(12)
    enc = Encoder(SPACE)
    gp = GaussianProcess(enc(configs), y, enc.is_categorical)
    mean, var = gp.loo()
    x = enc(configs)
    k = gp._kernel(gp._sq_diff(x, x)) + (gp.noise + 1e-9) * np.eye(len(y))
    ys = (y - gp._shift) / gp._scale
    for j in range(len(y)):
        rest = [i for i in range(len(y)) if i != j]
        kj = k[np.ix_(rest, rest)]
        kx = k[j, rest]
        m = kx @ np.linalg.solve(kj, ys[rest])
        v = k[j, j] - kx @ np.linalg.solve(kj, kx)
        assert np.isclose(mean[j], m * gp._scale + gp._shift)
        assert np.isclose(var[j], v * gp._scale**2)


def test_joint_samples_follow_the_posterior() -> None:
    configs, y = data(15)
    enc = Encoder(SPACE)
    gp = GaussianProcess(enc(configs), y, enc.is_categorical)
    points = enc(data(4, seed=2)[0])
    draws = gp.sample(points, 4000, np.random.default_rng(0))
    mean, var = gp.predict(points)
    assert draws.shape == (4000, 4)
    assert np.allclose(draws.mean(axis=0), mean, atol=0.1 * np.sqrt(var.max()) + 1e-6)
    assert np.allclose(draws.var(axis=0), var, rtol=0.15, atol=1e-9)
