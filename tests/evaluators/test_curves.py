"""Tests for evaluators/curves.py on small tables written here in the generator's format."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from evaluators.curves import CurveParam, CurveTable, curve_datasets, load_table

GRID = {"batch_size": (32, 128), "width": (16, 32, 64), "learning_rate": (0.001, 0.01, 0.1)}
CONFIGS, SEEDS, EPOCHS = 18, 2, 4


def write_table(folder: Path, name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """A table of random curves over GRID; the last learning rate diverges at epoch 3 for seed 1."""
    rng = np.random.default_rng(seed)
    val_error = rng.uniform(0.05, 0.9, size=(CONFIGS, SEEDS, EPOCHS)).astype(np.float32)
    diverged = np.zeros((CONFIGS, SEEDS, EPOCHS), dtype=bool)
    diverged[2::3, 1, 2:] = True
    train_loss = rng.uniform(0.1, 2.0, size=(CONFIGS, SEEDS, EPOCHS)).astype(np.float32)
    seconds = np.repeat(rng.uniform(0.1, 1.0, size=6), 3).astype(np.float32)
    arrays = {
        "param_names": np.asarray(list(GRID)),
        **{f"choices_{k}": np.asarray(v) for k, v in GRID.items()},
        "val_error": val_error,
        "diverged": diverged,
        "train_loss": train_loss,
        "seconds_per_epoch": seconds,
        "val_index": np.arange(10, dtype=np.int32),
        "metadata": np.array(json.dumps({"dataset": name, "n_val": 540})),
    }
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"{name}.npz", **arrays)
    return arrays


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("curves")


@pytest.fixture(scope="module")
def raw(folder: Path) -> dict[str, np.ndarray]:
    write_table(folder, "other", seed=1)
    return write_table(folder, "toy")


@pytest.fixture(scope="module")
def table(folder: Path, raw: dict[str, np.ndarray]) -> CurveTable:
    return load_table("toy", folder)


def test_datasets_are_the_tables_in_the_folder(folder: Path, raw: dict[str, np.ndarray], tmp_path: Path) -> None:
    assert curve_datasets(folder) == ("other", "toy")
    assert curve_datasets(tmp_path) == ()
    assert curve_datasets(tmp_path / "missing") == ()


def test_an_unknown_dataset_names_those_that_exist(folder: Path, raw: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"no curve table for 'nope'.*tables exist for: other, toy"):
        load_table("nope", folder)


def test_shape_space_and_metadata(table: CurveTable) -> None:
    assert (table.n_configs, table.seeds, table.epochs) == (CONFIGS, SEEDS, EPOCHS)
    assert table.space == GRID
    assert table.params[1] == CurveParam("width", (16, 32, 64))
    assert all(isinstance(v, int) for v in table.space["batch_size"])
    assert table.metadata["n_val"] == 540
    assert "18 configs x 2 seeds x 4 epochs" in repr(table)


def test_index_is_row_major_over_the_grid_and_config_inverts_it(table: CurveTable) -> None:
    cells = list(itertools.product(*GRID.values()))
    for index, cell in enumerate(cells):
        config = dict(zip(GRID, cell, strict=True))
        assert table.index(config) == index
        assert table.config(index) == config
    assert table.index({"width": 64, "learning_rate": 0.01, "batch_size": 128}) == 16  # key order is free


def test_lookups_read_the_recorded_arrays(table: CurveTable, raw: dict[str, np.ndarray]) -> None:
    config = {"batch_size": 128, "width": 32, "learning_rate": 0.1}
    i = table.index(config)
    for seed, epoch in itertools.product(range(SEEDS), range(1, EPOCHS + 1)):
        assert table.val_error(config, seed, epoch) == float(raw["val_error"][i, seed, epoch - 1])
        assert table.diverged(i, seed, epoch) == bool(raw["diverged"][i, seed, epoch - 1])
        assert table.train_loss(config, seed, epoch) == float(raw["train_loss"][i, seed, epoch - 1])
    assert table.diverged(config, 1, 3) and not table.diverged(config, 1, 2) and not table.diverged(config, 0, 4)
    np.testing.assert_array_equal(table.curve(config, 1), raw["val_error"][i, 1])
    assert table.seconds_per_epoch(config) == float(raw["seconds_per_epoch"][i])


def test_true_value_is_the_mean_over_seeds_of_the_final_error(table: CurveTable, raw: dict[str, np.ndarray]) -> None:
    finals = raw["val_error"][:, :, -1].astype(np.float64)
    for index in range(CONFIGS):
        assert table.true_value(index) == pytest.approx((finals[index, 0] + finals[index, 1]) / 2, abs=1e-12)
    assert table.best_true_value() == pytest.approx(finals.mean(axis=1).min(), abs=1e-12)
    assert min(table.true_value(i) for i in range(CONFIGS)) == table.best_true_value()


def test_values_match_the_grid_within_a_tolerance(table: CurveTable) -> None:
    near = {"batch_size": 32.0, "width": np.int64(64), "learning_rate": 0.01 * (1 + 1e-9)}
    assert table.index(near) == table.index({"batch_size": 32, "width": 64, "learning_rate": 0.01})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"batch_size": 32, "width": 48, "learning_rate": 0.01}, r"width=48 is not on the grid.*\[16, 32, 64\]"),
        ({"batch_size": 32, "width": 16, "learning_rate": 0.0011}, r"learning_rate=0.0011 is not on the grid"),
        ({"batch_size": 32, "width": 16, "learning_rate": "0.01"}, r"learning_rate='0.01' is not on the grid"),
        ({"batch_size": True, "width": 16, "learning_rate": 0.01}, r"batch_size=True is not on the grid"),
        ({"batch_size": 32, "width": 16}, r"missing parameters \['learning_rate'\]"),
        ({"batch_size": 32, "width": 16, "learning_rate": 0.01, "depth": 2}, r"unexpected parameters \['depth'\]"),
        (18, r"configuration index 18 is out of range 0..17"),
        (-1, r"out of range"),
    ],
)
def test_a_configuration_off_the_table_is_refused(table: CurveTable, config: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table.index(config)  # type: ignore[arg-type]


def test_epochs_are_one_based_and_seeds_bounded(table: CurveTable) -> None:
    with pytest.raises(ValueError, match=r"epoch 0 is out of range: the table has epochs 1..4"):
        table.val_error(0, 0, 0)
    with pytest.raises(ValueError, match=r"epoch 5 is out of range"):
        table.diverged(0, 0, EPOCHS + 1)
    with pytest.raises(ValueError, match=r"seed 2 is out of range: the table has seeds 0..1"):
        table.val_error(0, 2, 1)


def test_a_table_is_loaded_once_and_cannot_be_changed(folder: Path, table: CurveTable) -> None:
    assert load_table("toy", folder) is table
    assert load_table("toy", folder / ".") is table
    with pytest.raises(ValueError, match="read-only"):
        table.arrays.val_error[0, 0, 0] = 0.0


# The committed tables (evaluators/data/curves/), made by benchmarks/curves/make_tables.py.
PACKAGED = curve_datasets()
NAMES = ["batch_size", "width", "depth", "learning_rate", "weight_decay"]


def test_the_package_ships_tables_for_at_least_four_datasets() -> None:
    assert len(PACKAGED) >= 4, PACKAGED
    folder = Path(__file__).resolve().parents[2] / "evaluators" / "data" / "curves"
    assert sum(path.stat().st_size for path in folder.glob("*.npz")) < 8_000_000  # a few MB in the repository


@pytest.mark.parametrize("dataset", PACKAGED)
def test_a_packaged_table_is_real_training_on_the_grid(dataset: str) -> None:
    table = load_table(dataset)
    assert [p.name for p in table.params] == NAMES
    assert all(list(p.choices) == sorted(set(p.choices)) for p in table.params)  # increasing grids
    assert (table.n_configs, table.seeds, table.epochs) == (1008, 3, 27)
    meta = table.metadata
    assert meta["dataset"] == dataset and meta["n_val"] >= 500 and len(meta["versions"]) >= 4
    errors, diverged = table.arrays.val_error, table.arrays.diverged
    chance = 1 - 1 / meta["classes"]
    assert ((errors >= 0) & (errors <= 1)).all()
    # Errors count validation examples (float32 in the file), and a diverged run stays diverged at chance.
    counts = errors[~diverged] * meta["n_val"]
    assert np.abs(counts - np.round(counts)).max() < 0.01
    assert (np.diff(diverged.astype(int), axis=2) >= 0).all()
    np.testing.assert_allclose(errors[diverged], chance, atol=1e-6)
    # The cost depends on the architecture and batch size only: one value per (batch_size, width, depth).
    seconds = table.arrays.seconds_per_epoch.reshape(36, 28)
    assert (seconds > 0).all() and (seconds == seconds[:, :1]).all()
    assert seconds[0, 0] > seconds[24, 0]  # batch 32 costs more per epoch than batch 512 (same architecture)
    # Models learn, and the highest learning rate fails (diverges or stalls near chance) far more often.
    truth = errors[:, :, -1].mean(axis=1).reshape(36, 7, 4)
    assert table.best_true_value() < chance / 2
    assert (truth[:, -1] > chance - 0.05).mean() > (truth[:, 2] > chance - 0.05).mean() + 0.2
