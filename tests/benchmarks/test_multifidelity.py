"""Tests for benchmarks/multifidelity.py: scoring at equal compute, and two arms run for real on one table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import multifidelity as mf
from evaluators.curves import load_table

pytestmark = pytest.mark.anyio


def test_the_incumbent_at_a_compute_is_the_last_one_within_it() -> None:
    run = mf.Run(
        epochs=np.array([3.0, 6.0, 33.0, 36.0]),
        seconds=np.array([0.3, 0.6, 3.3, 3.6]),
        true_error=np.array([math.inf, 0.5, 0.2, 0.2]),
        pruned=2,
    )
    assert run.at(2.0) == math.inf  # nothing complete yet
    assert run.at(6.0) == 0.5
    assert run.at(32.9) == 0.5
    assert run.at(33.0) == 0.2
    assert run.at(1000.0) == 0.2  # a run that spent less keeps its last incumbent
    assert run.at(0.6, by="seconds") == 0.5
    assert run.reach(0.3) == 33.0
    assert run.reach(0.5, by="seconds") == 0.6
    assert run.reach(0.1) == math.inf


@pytest.mark.slow
async def test_bo_and_random_with_asha_run_to_the_same_compute_and_are_compared(tmp_path: Path) -> None:
    epochs = load_table("segment").epochs
    for arm in ("bo", "random-asha"):
        await mf.run_arm(tmp_path, mf.ARM[arm], ["segment"], range(1), provider=None)
    bo, asha = mf.read_run(tmp_path, "bo", "segment", 0), mf.read_run(tmp_path, "random-asha", "segment", 0)
    assert bo is not None and asha is not None
    assert bo.epochs[-1] == mf.FULL * epochs and bo.pruned == 0
    assert asha.epochs[-1] >= mf.FULL * epochs and asha.pruned > 0
    assert mf.reference_budget(tmp_path, "segment", 0, 10, "epochs") == 10 * epochs
    table = mf.results(tmp_path, ["bo", "random-asha"], ["segment"], 1)
    rows = [line for line in table if line.startswith("| random-asha | bo | epochs | 10 |")]
    assert len(rows) == 1 and rows[0].split("|")[5].strip() in ("1/0/0", "0/1/0", "0/0/1")
