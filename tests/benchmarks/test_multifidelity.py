"""Tests for benchmarks/multifidelity.py: scoring at equal compute, and two arms run for real on one table."""

from __future__ import annotations

import gzip
import json
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


def test_who_reaches_bos_error_with_less_compute_paired_by_table_and_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(reach_at: float | None, full: int = mf.FULL) -> mf.Run:
        """A run whose incumbent's true error falls from 0.5 to 0.1 at ``reach_at`` epochs (never: None)."""
        epochs = np.arange(1.0, full + 1.0) * 10
        error = np.where(epochs >= (reach_at or math.inf), 0.1, 0.5)
        return mf.Run(epochs=epochs, seconds=epochs, true_error=error, pruned=0)

    runs = {
        ("bo", "digits", 0): run(300.0),
        ("bo", "digits", 1): run(300.0),
        ("bo", "digits", 2): run(300.0),
        ("default-asha", "digits", 0): run(50.0),
        ("default-asha-complete", "digits", 0): run(100.0),  # later: the default is sooner
        ("default-asha", "digits", 1): run(None),
        ("default-asha-complete", "digits", 1): run(None),  # neither reached it: tied
        ("default-asha", "digits", 2): run(200.0),
        ("default-asha-complete", "digits", 2): run(100.0),  # sooner than the default
    }
    monkeypatch.setattr(mf, "read_run", lambda out, arm, target, seed: runs.get((arm, target, seed)))
    assert mf.paired_reach(Path("."), "default-asha", "default-asha-complete", ["digits"], 3) == (1, 1, 1)
    assert mf.paired_reach(Path("."), "default-asha", "tpe-hyperband", ["digits"], 3) is None
    lines = mf.results(Path("."), ["bo", "default-asha", "default-asha-complete"], ["digits"], 3)
    assert "| default-asha | default-asha-complete | 1/1/1 | 1 |" in lines
    assert "; seeds 0..2. True error" in lines[2]  # the seeds that ran
    runs = {(arm, target, seed + 10): run for (arm, target, seed), run in runs.items()}
    assert "; seeds 10..12. True error" in mf.results(Path("."), ["bo"], ["digits"], 20)[2]


def test_how_dear_the_chosen_configurations_were_per_epoch_paired_by_table_and_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    epochs = np.arange(1.0, mf.FULL + 1.0) * 27

    def run(rate: float) -> mf.Run:
        return mf.Run(epochs=epochs, seconds=epochs * rate, true_error=np.full(mf.FULL, 0.1), pruned=0)

    runs = {("bo", "digits", s): run(1.0) for s in range(3)} | {
        ("default-asha", "digits", 0): run(1.5),
        ("default-asha-complete", "digits", 0): run(1.0),
        ("default-asha", "digits", 1): run(1.2),
        ("default-asha-complete", "digits", 1): run(1.1),
        ("default-asha", "digits", 2): run(0.9),
        ("default-asha-complete", "digits", 2): run(0.9),
    }
    monkeypatch.setattr(mf, "read_run", lambda out, arm, target, seed: runs.get((arm, target, seed)))
    assert mf.paired_pace(Path("."), "default-asha", "default-asha-complete", ["digits"], 3) == (2, 0, 1)
    assert mf.paired_pace(Path("."), "default-asha", "tpe-hyperband", ["digits"], 3) is None
    lines = mf.results(Path("."), ["bo", "default-asha", "default-asha-complete"], ["digits"], 3)
    assert "| default-asha | default-asha-complete | 2/0/1 | 0.5 |" in lines
    assert "| default-asha | bo | 2/1/0 | 1 |" in lines
    row = next(line for line in lines if line.startswith("| default-asha | ") and line.count("|") == 7)
    assert row.endswith("| 1.20 |"), row  # the median of 1.5, 1.2 and 0.9 against bo's 1.0


def test_an_arm_is_paired_with_an_earlier_measurements_recorded_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    epochs = np.arange(1.0, mf.FULL + 1.0) * 27
    bo = mf.Run(epochs=epochs, seconds=epochs / 10, true_error=np.linspace(0.5, 0.2, mf.FULL), pruned=0)
    now = mf.Run(epochs=epochs, seconds=epochs / 10, true_error=np.full(mf.FULL, 0.1), pruned=0)
    monkeypatch.setattr(mf, "read_run", lambda out, arm, target, seed: {"bo": bo, "default-asha": now}.get(arm))
    before = {"epochs": epochs.tolist(), "seconds": (epochs / 10).tolist(), "true_error": [None] + [0.3] * 29}
    path = tmp_path / "runs.json.gz"
    path.write_bytes(gzip.compress(json.dumps({mf.study_name("default-asha", "digits", 0): before}).encode()))
    lines = mf.versus(tmp_path, "default-asha", path, "default-asha", ["digits", "segment"], 1)
    assert "| epochs | 10 | 1/0/0 | 1 |" in lines  # only the pair the recording holds
    assert "| seconds | 30 | 1/0/0 | 1 |" in lines
    assert "| epochs | reach | 1/0/0 | 1 |" in lines  # 0.1 from the first trial; 0.3 never reaches bo's 0.2


def test_seeds_measured_in_other_folders_are_pooled_into_one_report(tmp_path: Path) -> None:
    """Two earlier measurements' runs.json.gz (seeds 0 and 1), scored with a folder's studies as one report; the
    pruned trials a recording lacks (exports before it held them) are not counted as none."""
    epochs = np.arange(1.0, mf.FULL + 1.0) * 27

    def recorded(error: float, pruned: int | None = None) -> dict[str, object]:
        run: dict[str, object] = {"epochs": epochs.tolist(), "seconds": (epochs / 10).tolist()}
        run["true_error"] = np.linspace(0.5, error, mf.FULL).tolist()
        return run if pruned is None else {**run, "pruned": pruned}

    for seed, pruned in ((0, None), (1, 40)):
        runs = {
            mf.study_name("bo", "digits", seed): recorded(0.2, 0),
            mf.study_name("default-asha", "digits", seed): recorded(0.1, pruned),
        }
        (tmp_path / f"s{seed}").mkdir()
        (tmp_path / f"s{seed}" / "runs.json.gz").write_bytes(gzip.compress(json.dumps(runs).encode()))
    try:
        mf.pool([tmp_path / "s0" / "runs.json.gz", tmp_path / "s1" / "runs.json.gz"])
        assert mf.has_studies(tmp_path, "default-asha") and not mf.has_studies(tmp_path, "tpe-hyperband")
        lines = mf.results(tmp_path, ["bo", "default-asha"], ["digits"], 2)
        assert "; seeds 0..1. True error" in lines[2]
        assert "| default-asha | bo | epochs | 30 | 2/0/0 | 0.5 | 0.1000 | 0.2000 |" in lines
        row = next(line for line in lines if line.startswith("| default-asha | 0.") and "/2 |" in line)
        assert row.endswith("| 2/2 | 40 (1 recorded) | 1.00 |"), row  # one recording says how many were pruned
    finally:
        mf._POOLED.clear()
        mf.read_run.cache_clear()
