"""Tests for benchmarks/time_budget.py: the table from hand-built pairs, and one pair run for real."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from agent.study import opened_storage, stored_records
from agent.tasks import build_task
from benchmarks import time_budget as tb

pytestmark = pytest.mark.anyio


def _pair(table: str, seed: int, error: float, reference: float) -> tb.Pair:
    return tb.Pair(
        table=table,
        seed=seed,
        strategy="llm-bo",
        budget_s=1000.0,
        reference_true_error=reference,
        true_error=error,
        true_error_within=reference if seed == 1 else error,
        true_error_at_trials=reference,
        trials=30 + seed,
        compute_s=990.0,
        time_used_s=1010.0,
        proposal_s=10.0,
        stopped_by_time=True,
    )


def test_the_table_counts_pairs_per_table_and_overall_with_the_sign_test(tmp_path: Path) -> None:
    pairs = [
        _pair("kc1", 0, 0.10, 0.20),
        _pair("kc1", 1, 0.10, 0.20),
        _pair("kc1", 2, 0.30, 0.20),
        _pair("car", 0, 0.05, 0.05),
    ]
    path = tmp_path / "pairs.json"
    tb.save_pairs(path, {p.key: p for p in pairs})
    assert tb.load_pairs(path) == {p.key: p for p in pairs}  # what a later run resumes from
    lines = tb.results(pairs)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines if "|" in line}
    assert rows["hpobench-kc1"][:5] == ["3", "2/1/0", "1", "1/1/1", "1"]  # exact two-sided sign test of 2 against 1
    assert rows["hpobench-car"][:3] == ["1", "0/0/1", "1"]
    assert rows["**all**"][:7] == ["4", "2/1/1", "1", "1/1/2", "1", "0/0/4", "1"]
    assert rows["**all**"][9:] == ["30.5", "1.00%", "1.01", "4/4"]  # median trials, proposal share, used, by time
    assert tb._seeds("0-2,5") == [0, 1, 2, 5]


def test_versus_pairs_two_arms_by_table_and_seed_where_both_ran() -> None:
    weighed = [_pair("kc1", 0, 0.10, 0.20), _pair("kc1", 1, 0.10, 0.20), _pair("car", 0, 0.05, 0.05)]
    blind = [dataclasses.replace(p, strategy="llm-bo-ei", true_error=0.15, trials=25) for p in weighed[:2]]
    lines = tb.results(weighed, blind)
    assert "`llm-bo` against `llm-bo-ei` (the other results folder's arm)" in "\n".join(lines)
    row = [c.strip() for c in lines[-1].split("|")[1:-1]]
    assert row[:3] == ["2", "2/0/0", "0.5"] and row[-2:] == ["30.5", "25"], row
    assert tb.versus(weighed, []) == []


def test_other_families_tables_and_study_names() -> None:
    assert "cifar10" in tb.tables_of("nb201") and "kc1" in tb.hpobench_tables()
    assert tb.study_name("cifar10", "llm-bo", 3, "nb201") == "nb201-cifar10/llm-bo/seed3"
    nb = dataclasses.replace(_pair("cifar10", 0, 0.1, 0.2), family="nb201")
    assert any(line.startswith("| nb201-cifar10 |") for line in tb.results([nb]))
    assert tb.PLAIN.name == "llm-bo-ei" and tb.PLAIN.needs_model


@pytest.mark.slow
async def test_a_pair_runs_bo_then_the_arm_until_its_time_is_spent(tmp_path: Path) -> None:
    out, results = tmp_path / "studies", tmp_path / "results"
    argv = ["--out", str(out), "--results", str(results), "--tables", "car", "--seeds", "0"]
    await tb.main([*argv, "--strategy", "random", "--trials", "8"])
    rows = json.loads((results / "pairs.json").read_text())
    assert list(rows) == ["car/seed0"]
    pair = tb.Pair(**rows["car/seed0"])
    assert pair.strategy == "random" and pair.budget_s > 0
    assert 0 < pair.trials < tb.MAX_TRIALS and pair.stopped_by_time
    with opened_storage(f"sqlite:///{(out / 'studies.db').resolve()}") as storage:
        reference = stored_records(storage, tb.study_name("car", "bo", 0))
        arm = stored_records(storage, tb.study_name("car", "random", 0))
    assert len(reference) == 8 and pair.budget_s == pytest.approx(sum(r.cost_s or 0.0 for r in reference))
    assert len(arm) == pair.trials and pair.compute_s == pytest.approx(sum(r.cost_s or 0.0 for r in arm))
    last = arm[-1].cost_s or 0.0
    assert pair.compute_s - last < pair.budget_s <= pair.time_used_s  # the last trial started within C
    assert pair.compute_s <= pair.budget_s + last
    assert 0 < pair.reference_true_error < 1 and 0 < pair.true_error <= pair.true_error_within < 1
    assert pair.true_error_at_trials == pytest.approx(tb.incumbent_true_error(build_task("hpobench-car"), arm[:8]))
    assert "| hpobench-car | 1 |" in (results / "results.md").read_text()
    await tb.main([*argv, "--strategy", "random", "--trials", "8"])  # resumed: the pair is kept, nothing reruns
    assert json.loads((results / "pairs.json").read_text()) == rows


@pytest.mark.slow
async def test_the_control_is_bo_with_other_draws_under_the_time_its_reference_spent(tmp_path: Path) -> None:
    out, results = tmp_path / "studies", tmp_path / "results"
    await tb.main(
        ["--out", str(out), "--results", str(results), "--tables", "kc1", "--seeds", "0"]
        + ["--strategy", "bo", "--trials", "6"]
    )
    pair = tb.Pair(**json.loads((results / "pairs.json").read_text())["kc1/seed0"])
    reference_seed = tb.run_seed("hpobench-kc1", 0)
    assert pair.strategy == tb.CONTROL and pair.stopped_by_time
    with opened_storage(f"sqlite:///{(out / 'studies.db').resolve()}") as storage:
        reference = stored_records(storage, tb.study_name("kc1", "bo", 0))
        control = stored_records(storage, tb.study_name("kc1", tb.CONTROL, 0))
        studies = {s.study_name: s for s in storage.get_all_studies()}
    assert len(reference) == 6 and len(control) == pair.trials >= 1
    assert control[0].config != reference[0].config  # its random startup draws are others
    assert studies[tb.study_name("kc1", tb.CONTROL, 0)].user_attrs["seed"] == reference_seed + 1
    assert studies[tb.study_name("kc1", "bo", 0)].user_attrs["seed"] == reference_seed
    assert tb.incumbent_true_error(build_task("hpobench-kc1"), []) == float("inf")  # nothing within C
