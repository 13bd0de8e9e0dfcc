"""The GPU script that measures CIFAR time to accuracy with and without early stopping, run tiny on the CPU so
that it is known to work before a GPU is lent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cifar_time_to_accuracy import main


@pytest.mark.slow
def test_both_arms_run_as_the_main_command_and_the_times_to_the_target_are_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tta"
    argv = ["--out", str(out), "--tiny", "--budget", "2", "--seeds", "0", "--strategy", "random", "--target", "0.0"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert {(r["arm"], r["seed"]) for r in results} == {("scheduled", 0), ("full", 0)}
    for r in results:
        assert r["trials"] == 2 and r["epochs"] >= 2 and r["seconds"] > 0
        assert r["to_target_s"] is not None and 0 < r["to_target_s"]  # accuracy 0 is reached by the first trial
    full = next(r for r in results if r["arm"] == "full")
    assert full["full_trials"] == 2 and full["pruned"] == 0  # --pruner none: every trial runs to its end
    printed = capsys.readouterr().out
    assert "seed 0: full / scheduled time to target = " in printed
    assert (out / "results.md").read_text().count("\n") >= 4


def test_an_unreached_target_gives_no_ratio() -> None:
    from benchmarks.cifar_time_to_accuracy import ArmResult, table

    lines = table([ArmResult("full", 0, 3, 3, 0, 9.0, 9, None), ArmResult("scheduled", 0, 3, 1, 2, 4.0, 5, 2.0)])
    assert lines[-1] == "seed 0: the target was not reached by both arms; no ratio"
    assert "not reached" in lines[1]
