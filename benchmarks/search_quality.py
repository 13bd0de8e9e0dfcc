"""The search-quality bench: the default strategy against random search and TPE, and the targets it aims at.

    python benchmarks/search_quality.py --out benchmarks/results/search-quality

runs (or resumes: finished studies are kept) ``python -m agent bench`` on the 8 HPOBench tasks, the 3
NAS-Bench-201 tasks and the 4 shifted toy functions with ``llm-bo,bo,random,tpe``, 10 seeds, budgets 10 and
30, writes the bench report (``OUT/report.md``, plots) and ``OUT/targets.md``: per strategy, on the true
error (the table's mean over seeds of the configuration a study picked), median over seeds:

- budget 10: tasks where it beats random search (expected) among the 7 non-trivial HPOBench tasks (car is
  solved by anything), the NAS-Bench-201 tasks and the shifted toys, with a sign test over tasks x seeds
  against the actual random studies (paired by seed);
- budget 30: HPOBench tasks where it is as good as TPE or better, with the same sign test against TPE;
- suggestion latency (median, p95) and the share of proposals reasked or repeated.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import anyio  # noqa: E402
import numpy as np  # noqa: E402

from agent import metrics  # noqa: E402
from agent.bench import BenchConfig, BenchResult, resolve_tasks, run_bench  # noqa: E402
from agent.report import write_bench_report  # noqa: E402

HPOBENCH = [
    "hpobench-australian",
    "hpobench-blood_transfusion",
    "hpobench-credit_g",
    "hpobench-kc1",
    "hpobench-phoneme",
    "hpobench-segment",
    "hpobench-vehicle",
]
NB201 = ["nb201-cifar10", "nb201-cifar100", "nb201-imagenet"]
SHIFTED = ["toy-shifted_rosenbrock", "toy-shifted_branin", "toy-shifted_himmelblau", "toy-shifted_ackley"]
TASKS = "hpobench,nb201," + ",".join(SHIFTED)
STRATEGIES = ("llm-bo", "bo", "random", "tpe")


def _paired(result: BenchResult, tasks: list[str], a: str, b: str, budget: int) -> str:
    wins, losses, ties = result.paired(a, b, budget, tasks)
    return f"{wins}/{losses}/{ties}, p = {metrics.sign_test(wins, losses):.3g}"


def targets(result: BenchResult) -> list[str]:
    budgets = result.config.budgets
    lines = [
        "# Search-quality targets",
        "",
        "True error, median over seeds; `random (expected)` is the bootstrap reference of the bench report. "
        "better/worse/tied: seeds x tasks paired by seed (ties dropped from the sign test).",
        "",
        "| strategy | budget 10: HPOBench (7) beats random | NB201 (3) | shifted toys (4) "
        "| vs random studies, by seed (all 14) | budget 30: HPOBench (7) >= TPE | vs TPE, by seed (7) |",
        "|---|---|---|---|---|---|---|",
    ]
    strategies = [s for s in result.config.strategies if s != "random"]
    for s in strategies:
        cells = [s]
        for group in (HPOBENCH, NB201, SHIFTED):
            medians = {t: result.median(t, s, 10, "true") for t in group}
            wins, n = metrics.win_count(medians, {t: result.references[t].at(10, "true") for t in group})
            cells.append(f"{wins}/{n}")
        cells.append(_paired(result, HPOBENCH + NB201 + SHIFTED, s, "random", 10))
        if 30 in budgets and s != "tpe":
            ge = sum(result.median(t, s, 30, "true") <= result.median(t, "tpe", 30, "true") for t in HPOBENCH)
            cells += [f"{ge}/{len(HPOBENCH)}", _paired(result, HPOBENCH, s, "tpe", 30)]
        else:
            cells += ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| strategy | budget | suggestion median s | p95 s | proposals reasked or repeated |",
        "|---|---|---|---|---|",
    ]
    for s in strategies:
        studies = [r for (_, strategy, _), r in result.studies.items() if strategy == s]
        for budget in budgets:
            seconds = result.propose_seconds(s, budget)
            if not seconds:
                continue
            median, p95 = np.percentile(seconds, [50, 95])
            proposals = sum(min(budget, len(r.values)) for r in studies)
            bad = sum(r.cost.reasks + r.cost.repeated for r in studies) if budget == max(budgets) else None
            share = f"{bad / proposals:.1%}" if bad is not None and proposals else "—"
            lines.append(f"| {s} | {budget} | {median:.3f} | {p95:.3f} | {share} |")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/search-quality")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    config = BenchConfig(
        tasks=resolve_tasks(TASKS),
        strategies=tuple(args.strategies.split(",")),
        budgets=(10, 30),
        seeds=args.seeds,
        out=Path(args.out),
        quiet=args.quiet,
    )
    result = await run_bench(config)
    report = write_bench_report(result)
    path = config.out / "targets.md"
    path.write_text("\n".join(targets(result)) + "\n")
    print(f"report: {report}\ntargets: {path}")


if __name__ == "__main__":
    anyio.run(main)
