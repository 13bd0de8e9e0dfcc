"""Tests for benchmarks/curves/make_tables.py at a tiny size: the tables it writes are what the loader reads, and
a restart trains only what is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.curves.settings import TINY
from evaluators.curves import curve_datasets, load_table

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow  # each test spawns the generator, which trains


def generate(out: Path, work: Path, *datasets: str) -> str:
    """Run the generator as a user would (its own process: it sets torch's threads)."""
    argv = [sys.executable, "-m", "benchmarks.curves.make_tables", "--tiny", "--out", str(out), "--work", str(work)]
    result = subprocess.run(
        [*argv, "--datasets", *datasets], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("tables")
    log = generate(base / "out", base / "work", "digits", "gen-hastie")
    return base / "out", base / "work", log


def test_the_tables_it_writes_are_what_the_loader_reads(made: tuple[Path, Path, str]) -> None:
    out, _, log = made
    assert curve_datasets(out) == ("digits", "gen-hastie")
    digits = load_table("digits", out)
    assert digits.space == TINY.grid
    assert (digits.n_configs, digits.seeds, digits.epochs) == (4, 2, 2)
    meta = digits.metadata
    assert (meta["n_train"], meta["n_val"], meta["classes"], meta["n_features"]) == (300, 540, 10, 64)
    assert meta["split"]["random_state"] == 0 and meta["versions"]["torch"]
    errors = digits.arrays.val_error
    assert ((errors >= 0) & (errors <= 1)).all()
    assert np.allclose(errors * 540, np.round(errors * 540), atol=1e-3)  # counts of 540 validation examples
    assert (errors[:, :, -1] < 0.9).all()  # every configuration learns something in 2 epochs
    assert not digits.arrays.diverged.any()
    # A group (batch size) shares its measured seconds; the two groups were timed separately.
    seconds = digits.arrays.seconds_per_epoch
    assert seconds[0] == seconds[1] > 0 and seconds[2] == seconds[3] > 0
    hastie = load_table("gen-hastie", out)
    assert (hastie.metadata["n_val"], hastie.metadata["classes"]) == (6000, 2)
    assert "wrote" in log and "2/2" in log


def test_a_restart_trains_only_what_is_missing_and_gives_the_same_table(
    made: tuple[Path, Path, str], tmp_path: Path
) -> None:
    out, work, _ = made
    before = dict(np.load(out / "digits.npz"))
    again = tmp_path / "out"
    parts = sorted((work / "digits").glob("*.npz"))
    assert [p.name for p in parts] == [
        "batch_size=32-width=8-depth=1.npz",
        "batch_size=64-width=8-depth=1.npz",
    ]
    parts[1].unlink()  # as if killed while training the second group
    log = generate(again, work, "digits")
    assert "1/2 batch_size=32-width=8-depth=1: done before" in log
    assert "2/2 batch_size=64-width=8-depth=1: done before" not in log
    after = np.load(again / "digits.npz")
    for key in ("val_error", "diverged", "train_loss", "val_index"):
        np.testing.assert_array_equal(after[key], before[key])
    assert "exists: skipped" in generate(again, work, "digits")
