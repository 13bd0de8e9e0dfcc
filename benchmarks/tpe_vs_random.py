"""Median best error of TPE and random search over seeds on one task, measured now (issue: core done-when).

python benchmarks/tpe_vs_random.py --task hpobench-kc1 --budget 30 --seeds 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import optuna

from agent.session import StudyConfig, run_study
from agent.tasks import build_task


async def best_errors(task_name: str, strategy: str, budget: int, seed: int, root: Path) -> tuple[float, float]:
    """(best observed error, true error of the configuration picked) of one study."""
    task = build_task(task_name, seed=seed)
    config = StudyConfig(
        task=task, strategy=strategy, budget=budget, seed=seed, save_dir=root / f"{strategy}-{seed}", checks=False
    )
    summary = await run_study(config)
    assert summary.best is not None and summary.best.value is not None
    true = task.true_error(summary.best.config) if task.true_error else summary.best.value
    return summary.best.value, true


async def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a script decides what it shows; agent changes nothing
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="hpobench-kc1")
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, list[tuple[float, float]]] = {}
        for strategy in ("random", "tpe"):
            started = time.perf_counter()
            results[strategy] = [
                await best_errors(args.task, strategy, args.budget, seed, Path(tmp)) for seed in range(args.seeds)
            ]
            print(f"{strategy}: {args.seeds} studies in {time.perf_counter() - started:.1f} s")
    print(f"\n{args.task}, budget {args.budget}, {args.seeds} seeds: median over seeds (lower is better)")
    print(f"{'strategy':10} {'best observed':>14} {'true error':>11}")
    medians = {}
    for name, rows in results.items():
        observed = statistics.median(r[0] for r in rows)
        true = statistics.median(r[1] for r in rows)
        medians[name] = (observed, true)
        print(f"{name:10} {observed:14.5f} {true:11.5f}")
    wins = sum(t[1] < r[1] for t, r in zip(results["tpe"], results["random"], strict=True))
    print(f"\ntpe better than random (true error, paired by seed): {wins}/{args.seeds} seeds")
    verdict = "beats" if medians["tpe"][0] < medians["random"][0] else "does not beat"
    print(f"tpe {verdict} random on median best observed error")


if __name__ == "__main__":
    anyio.run(main)
