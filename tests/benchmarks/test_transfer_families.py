"""Tests for benchmarks/transfer_families.py: each arm learns from the sources it says it does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import transfer_families as tf
from evaluators.tabular import TabularBenchmark, _mean_errors


@pytest.fixture
def short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tf, "HORIZON", 5)


@pytest.mark.slow  # 16 short studies of the tables
def test_the_decoys_sit_in_the_target_bad_region_and_loto_leaves_the_target_out(tmp_path: Path, short: None) -> None:
    made = tf.sources(tmp_path, "hpolib")
    made |= {s.name: s for s in tf.toy_sources(tmp_path, "hpolib")}
    target = "naval_propulsion"
    table = TabularBenchmark("hpolib", target)
    everything = np.array(list(_mean_errors("hpolib", target).values()))

    (negated,) = tf.arm_sources("negated", "hpolib", target, made)
    assert negated.name == f"-hpolib-{target}"
    best = negated.configs[int(np.argmin(negated.values))]
    assert np.mean(everything < table.true_error(best)) > 0.85, "the decoy's best is among the table's worst"

    (reflected,) = tf.arm_sources("reflected", "hpolib", target, made)
    assert reflected.name == "-hpolib-parkinsons_telemonitoring", "a neighbouring table, negated"

    loto = tf.arm_sources("loto", "hpolib", target, made)
    assert sorted(s.name for s in loto) == [f"hpolib-{d}" for d in tf.FAMILIES["hpolib"] if d != target]

    unrelated = tf.arm_sources("unrelated", "hpolib", target, made)
    assert [s.name for s in unrelated] == [f"toy-{t}" for t in tf.TOYS]
    assert all(s.params == tf.TOY_MAP["hpolib"] for s in unrelated)
    assert tf.arm_sources("bo", "hpolib", target, made) == []


def test_results_pair_each_arm_with_bo_by_seed_and_misleading_also_with_bo_at_7(tmp_path: Path) -> None:
    rows = [
        {"family": "hpolib", "dataset": "naval_propulsion", "seed": s, "arm": arm, "true": [v] * 30}
        for s in range(3)
        for arm, v in (("bo", 1.0), ("negated", 0.5 if s else 2.0))
    ]
    (tmp_path / "studies.jsonl").write_text("".join(f"{json.dumps(r)}\n" for r in rows))
    lines = tf.results(tmp_path, 3)
    assert "| negated | HPOLib (4) | 10 | bo | 2/1/0 | 1 | 0.5 | 1 |" in lines
    assert "| negated | HPOLib (4) | 10 | bo@7 | 2/1/0 | 1 | 0.5 | 1 |" in lines
