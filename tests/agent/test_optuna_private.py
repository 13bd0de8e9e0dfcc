"""Tests for agent/_optuna.py: the Optuna internals it relies on, pinned (an Optuna upgrade that changes one
fails here), its Gaussian process among them."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna._gp import gp as optuna_gp
from optuna._gp import search_space as gp_search_space

from agent._optuna import GaussianProcess, sampler_columns, storage_of, study_id_of, trial_id_of, trial_number
from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace, UnitEncoder
from agent.strategies.surrogate import encode, ordinal_distributions
from agent.study import open_storage


def test_trial_and_study_ids_are_the_storages(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    trial = study.ask()
    frozen = study.get_trials()[0]
    assert trial_id_of(trial) == trial_id_of(frozen)
    storage = storage_of(study)
    assert storage.get_trial(trial_id_of(frozen)).number == frozen.number
    assert storage.get_study_id_from_name(study.study_name) == study_id_of(study)


def test_the_number_of_a_new_trial_is_known_without_a_read(tmp_path: Path) -> None:
    """Optuna caches every trial created through the storage in front of an RDB: its number is known."""
    for url in (f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "s.log")):
        study = optuna.create_study(storage=open_storage(url))
        storage = storage_of(study)
        ids = [storage.create_new_trial(study_id_of(study)) for _ in range(3)]
        assert [trial_number(storage, i) for i in ids] == [0, 1, 2]
        assert [storage.get_trial_number_from_id(i) for i in ids] == [0, 1, 2]
    cache = getattr(
        storage_of(optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'c.db'}"))),
        "_trial_id_to_study_id_and_number",
        None,
    )
    assert isinstance(cache, dict), "the RDB cache's id -> (study, number) map moved: trial_number reads instead"


# ---- the Gaussian process (optuna._gp) ---------------------------------------------------------------------

SPACE = SearchSpace(
    params={
        "lr": CategoricalParam(choices=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
        "units": IntParam(low=8, high=256, log=True),
        "depth": IntParam(low=1, high=4),
        "dropout": FloatParam(low=0.0, high=0.5),
        "act": CategoricalParam(choices=("relu", "tanh", "gelu")),
        "fixed": CategoricalParam(choices=("same",)),
    }
)


def _value(c: dict[str, Any]) -> float:
    lr = math.log10(float(c["lr"]))
    return (lr + 3) ** 2 + 10 * (float(c["dropout"]) - 0.2) ** 2 + (c["act"] != "gelu") + math.log(c["units"]) / 5


def _data(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], np.ndarray]:
    rng = random.Random(seed)
    configs: list[dict[str, Any]] = [dict(SPACE.sample(rng)) for _ in range(n)]
    return configs, np.array([_value(c) + rng.gauss(0, 0.1) for c in configs])


def _sampler_study(configs: list[dict[str, Any]], y: np.ndarray) -> tuple[optuna.Study, optuna.samplers.GPSampler]:
    """A study of ``configs`` in the surrogate's coordinates (grid indices), its GPSampler asked once."""
    dists = ordinal_distributions(SPACE)
    sampler = optuna.samplers.GPSampler(seed=0, n_startup_trials=3, deterministic_objective=False)
    study = optuna.create_study(sampler=sampler)
    for c, v in zip(configs, y, strict=True):
        study.add_trial(optuna.trial.create_trial(params=encode(SPACE, c), distributions=dict(dists), value=float(v)))
    study.ask(dists)
    return study, sampler


def test_the_unit_encoder_reads_points_as_gpsampler_normalizes_them() -> None:
    """The columns GPSampler models (not the single-valued, sorted by name) and its normalization of them are
    the encoder's: a model fitted here and the sampler's read the same points."""
    configs, y = _data(12)
    study, sampler = _sampler_study(configs, y)
    dists = ordinal_distributions(SPACE)
    columns = sampler_columns(dists)
    assert list(sampler.infer_relative_search_space(study, study.trials[-1])) == columns
    assert "fixed" not in columns
    normalized = gp_search_space.SearchSpace({n: dists[n] for n in columns}).get_normalized_params(
        [None] * len(configs),  # type: ignore[list-item]
        [encode(SPACE, c) for c in configs],
    )
    assert np.allclose(UnitEncoder(SPACE, columns)(configs), normalized)
    gp = GaussianProcess.of_sampler(sampler, y, maximize=False)
    assert gp is not None and np.allclose(gp._gpr._X_train.numpy(), normalized)


def test_a_fit_is_the_model_gpsampler_fits_and_of_sampler_reads_it_in_the_values_units() -> None:
    configs, y = _data(15)
    _, sampler = _sampler_study(configs, y)
    theirs = GaussianProcess.of_sampler(sampler, y, maximize=False)
    encoder = UnitEncoder(SPACE, sampler_columns(ordinal_distributions(SPACE)))
    ours = GaussianProcess.fit(encoder(configs), y, encoder.is_categorical)
    assert theirs is not None
    for name in ("inverse_squared_lengthscales", "kernel_scale", "noise_var"):
        assert np.allclose(getattr(ours._gpr, name).numpy(), getattr(theirs._gpr, name).numpy(), rtol=1e-3)
    test = encoder(_data(6, seed=1)[0])
    (m1, v1), (m2, v2) = ours.predict(test), theirs.predict(test)
    assert np.allclose(m1, m2, rtol=1e-3, atol=1e-3) and np.allclose(v1, v2, rtol=1e-2, atol=1e-6)
    assert np.all(np.abs(m1 - np.median(y)) < 3 * y.std())  # in the values' units, not standardized ones
    fewer = optuna.samplers.GPSampler(seed=0, n_startup_trials=30)
    study = optuna.create_study(sampler=fewer)
    study.ask()
    assert GaussianProcess.of_sampler(fewer, [], maximize=False) is None  # its random startup fits nothing


def test_leave_one_out_is_the_model_without_that_point_at_the_same_kernel_parameters() -> None:
    configs, y = _data(12)
    encoder = UnitEncoder(SPACE)
    x = encoder(configs)
    gp = GaussianProcess.fit(x, y, encoder.is_categorical)
    mean, var = gp.loo()
    fitted = gp._gpr
    ys = (y - y.mean()) / y.std()
    for j in range(len(y)):
        rest = [i for i in range(len(y)) if i != j]
        without = optuna_gp.GPRegressor(
            is_categorical=torch.from_numpy(encoder.is_categorical),
            X_train=torch.from_numpy(x[rest]),
            y_train=torch.from_numpy(ys[rest]),
            inverse_squared_lengthscales=fitted.inverse_squared_lengthscales,
            kernel_scale=fitted.kernel_scale,
            noise_var=fitted.noise_var,
        )
        without._cache_matrix()
        with torch.no_grad():
            m, v = without.posterior(torch.from_numpy(x[j : j + 1]))
        assert np.isclose(mean[j], float(m[0]) * y.std() + y.mean(), rtol=1e-6)
        assert np.isclose(var[j], (float(v[0]) + float(fitted.noise_var)) * y.var(), rtol=1e-6)


def test_joint_samples_follow_the_joint_posterior() -> None:
    configs, y = _data(15)
    encoder = UnitEncoder(SPACE)
    gp = GaussianProcess.fit(encoder(configs), y, encoder.is_categorical)
    points = encoder(_data(4, seed=2)[0] + configs[:1])
    draws = gp.sample(points, 20000, np.random.default_rng(0))
    with torch.no_grad():
        mean, cov = gp._gpr.posterior(torch.from_numpy(points), joint=True)
    mean, cov = mean.numpy() * y.std() + y.mean(), cov.numpy() * y.var()
    assert draws.shape == (20000, 5)
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.allclose(draws.mean(axis=0), mean, atol=0.05 * np.sqrt(np.diag(cov)).max())
    assert np.allclose(np.cov(draws.T), cov, atol=0.05 * scale.max())
    assert np.allclose(gp.predict(points)[1], np.diag(cov))
