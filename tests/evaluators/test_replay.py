"""Tests for evaluators/replay.py: a table replayed epoch by epoch, stopped where the reporter says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluators.base import Progress
from evaluators.curves import CurveTable, load_table
from evaluators.replay import CurveReplay
from tests.evaluators.test_curves import EPOCHS, write_table


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> CurveTable:
    folder: Path = tmp_path_factory.mktemp("replay")
    write_table(folder, "toy")
    return load_table("toy", folder)


CONFIG = {"batch_size": 128, "width": 32, "learning_rate": 0.01}


def test_a_full_run_reports_every_epoch_of_one_seed_and_costs_its_recorded_seconds(table: CurveTable) -> None:
    replay = CurveReplay("toy", seed=3, table=table)
    seen: list[tuple[int, float]] = []
    shown: list[Progress] = []
    result = replay.run(CONFIG, lambda step, value: seen.append((step, value)) or False, shown.append)
    seed = int(result.metrics["table_seed"])
    assert [step for step, _ in seen] == list(range(1, EPOCHS + 1))
    assert np.allclose([value for _, value in seen], table.curve(CONFIG, seed))
    assert result.state == "complete"
    assert result.value == pytest.approx(table.val_error(CONFIG, seed, EPOCHS))
    assert result.metrics["epochs_run"] == EPOCHS
    assert result.cost_s == pytest.approx(EPOCHS * table.seconds_per_epoch(CONFIG))
    assert [p.done for p in shown] == list(range(1, EPOCHS + 1))
    assert replay.true_value(CONFIG) == pytest.approx(table.true_value(CONFIG))


def test_a_stop_ends_the_run_pruned_with_the_last_value_and_only_the_epochs_it_ran(table: CurveTable) -> None:
    replay = CurveReplay("toy", seed=0, table=table)
    result = replay.run(CONFIG, lambda step, value: step >= 2)
    seed = int(result.metrics["table_seed"])
    assert result.state == "pruned"
    assert result.value == pytest.approx(table.val_error(CONFIG, seed, 2))
    assert result.metrics["epochs_run"] == result.metrics["step"] == 2
    assert result.cost_s == pytest.approx(2 * table.seconds_per_epoch(CONFIG))


def test_a_stop_at_the_last_epoch_is_a_complete_run(table: CurveTable) -> None:
    result = CurveReplay("toy", seed=0, table=table).run(CONFIG, lambda step, value: True if step == EPOCHS else False)
    assert result.state == "complete"
    assert result.metrics["epochs_run"] == EPOCHS


def test_seeds_are_drawn_from_the_table_and_reproducibly(table: CurveTable) -> None:
    def seeds(seed: int) -> list[int]:
        replay = CurveReplay("toy", seed=seed, table=table)
        return [int(replay.run(CONFIG).metrics["table_seed"]) for _ in range(20)]

    assert seeds(5) == seeds(5)
    assert set(seeds(5)) == set(range(table.seeds))


def test_a_configuration_off_the_grid_names_the_choices(table: CurveTable) -> None:
    with pytest.raises(ValueError, match="valid choices for width"):
        CurveReplay("toy", table=table).run({**CONFIG, "width": 48})
