"""The warp of a study's own values (issue 27), measured: ``bo`` with each transform against ``bo`` without one
(``none``: standardized values, the old ``bo``), on the HPOBench, HPOLib and NAS-Bench-201 tables.

    python benchmarks/warp.py --out benchmarks/results/warp --seeds 10
    python benchmarks/warp.py --out runs/warp --seeds 3 --transforms none,yeo-johnson --families hpolib

Each study is ``bo``'s proposer (:class:`~agent.strategies.surrogate.SurrogateModel`, Optuna's ``GPSampler``
on the warped values) driven in this process for 30 trials on one table, its noise drawn with the bench's seed
``agent.bench.run_seed(task, s)``, so study s of every transform sees the same draws for the same
configurations and pairs with the others. No storage, no session: the proposer is the only thing compared.
Scores are TRUE errors (the table's mean over its seeds of the incumbent's configuration) at budgets 10 and
30, each transform against ``none`` paired by seed, exact sign test. Finished studies are kept as JSON lines
in OUT/studies.jsonl (resumable); OUT/results.md has the table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import optuna  # noqa: E402
from _families import BUDGETS, FAMILIES, HORIZON, LABELS, paired_cells  # noqa: E402

from agent import metrics  # noqa: E402
from agent.bench import run_seed  # noqa: E402
from agent.records import TRANSFORMS, ProposalInfo, Transform, TrialRecord  # noqa: E402
from agent.strategies.surrogate import SurrogateModel  # noqa: E402
from agent.tasks import build_task  # noqa: E402
from evaluators.tabular import TabularBenchmark  # noqa: E402


def study(family: str, dataset: str, seed: int, transform: Transform) -> list[float]:
    """The true error of the incumbent after each of ``HORIZON`` trials of ``bo`` warping with ``transform``."""
    name = f"{family}-{dataset}"
    task = build_task(name)
    table = TabularBenchmark(family, dataset, seed=run_seed(name, seed))
    rng = random.Random(run_seed(name, seed))
    model = SurrogateModel(transform=transform)
    records: list[TrialRecord] = []
    for number in range(HORIZON):
        config = model.propose(task.space, records, rng)
        result = table.evaluate(config)
        records.append(
            TrialRecord(number=number, config=config, state="complete", value=result.value, proposal=ProposalInfo())
        )
    values = [r.value for r in records]
    return list(metrics.incumbent_scores(values, [table.true_error(r.config) for r in records]))


def run(out: Path, families: Sequence[str], transforms: Sequence[str], seeds: int) -> None:
    path = out / "studies.jsonl"
    done = {(r["family"], r["dataset"], r["seed"], r["transform"]) for r in _rows(path)}
    began = time.perf_counter()
    for seed in range(seeds):
        for family in families:
            for dataset in FAMILIES[family]:
                for transform in transforms:
                    if (family, dataset, seed, transform) in done:
                        continue
                    errors = study(family, dataset, seed, transform)  # type: ignore[arg-type]
                    row = {"family": family, "dataset": dataset, "seed": seed, "transform": transform, "true": errors}
                    with path.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(
                        f"{family}-{dataset} seed {seed} {transform}: {errors[-1]:.4g} "
                        f"({time.perf_counter() - began:.0f} s)",
                        flush=True,
                    )


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def results(out: Path, seeds: int) -> list[str]:
    rows = _rows(out / "studies.jsonl")
    runs = {(r["family"], r["dataset"], r["seed"], r["transform"]): r["true"] for r in rows}
    transforms = [t for t in TRANSFORMS if any(k[3] == t for k in runs)]
    lines = [
        "# The warp of a study's own values: `bo` with each transform against `bo` without (`none`)",
        "",
        "True error of the incumbent, paired by seed with `none` on the same table (the same noise draws);",
        "better/worse/tied and the exact two-sided sign test (ties dropped); median over tables x seeds.",
        "",
        "| transform | family | budget | better/worse/tied | p | median (transform) | median (none) |",
        "|---|---|---|---|---|---|---|",
    ]
    for transform in transforms:
        if transform == "none":
            continue
        for family in FAMILIES:
            for budget in BUDGETS:
                cells = paired_cells(runs, family, seeds, transform, "none", budget)
                if cells is not None:
                    lines.append(f"| {transform} | {LABELS[family]} | {budget} | {cells} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/warp"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--transforms", default=",".join(TRANSFORMS))
    args = parser.parse_args()
    families = [f for f in args.families.split(",") if f]
    transforms = [t for t in args.transforms.split(",") if t]
    bad = sorted(set(families) - set(FAMILIES)) + sorted(set(transforms) - set(TRANSFORMS))
    if bad:
        parser.error(f"unknown {bad}; families: {', '.join(FAMILIES)}; transforms: {', '.join(TRANSFORMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(args.out, families, transforms, args.seeds)
    text = "\n".join(results(args.out, args.seeds)) + "\n"
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
