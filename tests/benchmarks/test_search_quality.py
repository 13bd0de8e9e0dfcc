"""Tests for benchmarks/search_quality.py: one family run on its own, and its table against bo."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import search_quality as sq

pytestmark = pytest.mark.anyio


@pytest.mark.slow  # 16 studies of 30 trials on the toy functions
async def test_one_family_runs_alone_and_each_strategy_meets_bo_there(tmp_path: Path) -> None:
    toys = ",".join(sq.SHIFTED)
    main = await sq.run_part("main", tmp_path, seeds=2, quiet=True, tasks=toys, strategies=["bo", "random"])
    assert sorted(main.config.tasks) == sorted(sq.SHIFTED) and main.config.strategies == ("bo", "random")
    lines = sq.targets(main, {})
    header = next(line for line in lines if line.startswith("| strategy | against |"))
    assert header == "| strategy | against | shifted toys (4) |"  # only the family that ran
    (row,) = [line for line in lines if line.startswith("| random | bo |")]
    at_10, at_30 = row.split("|")[3].split(" / ")
    for cell in (at_10, at_30):
        better, worse, tied = (int(n) for n in cell.split(",")[0].split("/"))
        assert better + worse + tied == 8  # 4 tasks x 2 seeds, paired
    assert not any("hybrid against bo" in line for line in lines)  # hybrid did not run
