"""The sanity report of the curve tables: is multi-fidelity meaningful on them?

    python -m benchmarks.curves.report            # writes benchmarks/curves/results.md from the committed tables

Per dataset: the final error's quantiles over configurations (a configuration's final error is its true value:
the mean over seeds of the last epoch's validation error), the best, how many configurations diverge or end no
better than chance, the seconds per epoch, and how well an early epoch ranks the configurations: Spearman's rank
correlation between one seed's error after epoch 1, 3, 9 (and the last: the ceiling that seed noise alone
leaves) and the true value, averaged over the seeds, among all configurations and among the best quarter. Ties
are counted: ranks of equal errors are averaged (as scipy's ``spearmanr``), and the share of configuration pairs
an epoch's errors cannot order is shown beside.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from evaluators.curves import CurveTable, curve_datasets, load_table

HERE = Path(__file__).resolve().parent
EARLY = (1, 3, 9)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
_BEST = 0.25  # the rank agreement among the best quarter: where a scheduler's decisions matter most
_CHANCE_MARGIN = 0.02  # a final error within this of chance is "no better than chance"


def tied_pairs(values: np.ndarray) -> float:
    """The share of pairs of values that are equal."""
    _, counts = np.unique(values, return_counts=True)
    n = len(values)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def rank_agreement(table: CurveTable, epoch: int, best: float = 1.0) -> tuple[float, float]:
    """(Spearman's rho between one seed's error at ``epoch`` and the true value, averaged over seeds; the share
    of tied pairs at that epoch, averaged likewise), over the ``best`` fraction of configurations by true value
    (all of them by default)."""
    errors = table.arrays.val_error
    truth = errors[:, :, -1].mean(axis=1)
    keep = truth <= np.quantile(truth, best)
    truth = truth[keep]
    rhos, ties = [], []
    for seed in range(table.seeds):
        early = errors[keep, seed, epoch - 1]
        rhos.append(float(spearmanr(early, truth).statistic))
        ties.append(tied_pairs(early))
    return float(np.mean(rhos)), float(np.mean(ties))


def _epochs(last: int) -> list[int]:
    return [k for k in EARLY if k < last] + [last]


def summary(table: CurveTable) -> dict[str, object]:
    meta = table.metadata
    arrays = table.arrays
    truth = arrays.val_error[:, :, -1].mean(axis=1)
    chance = 1.0 - 1.0 / int(meta["classes"])
    seconds = arrays.seconds_per_epoch
    return {
        "dataset": table.dataset,
        "sizes": f"{meta['n_train']:,} / {meta['n_val']:,}",
        "classes": meta["classes"],
        "best": float(truth.min()),
        "quantiles": [float(q) for q in np.quantile(truth, QUANTILES)],
        "chance": chance,
        "diverged_configs": float(arrays.diverged[:, :, -1].any(axis=1).mean()),
        "diverged_runs": float(arrays.diverged[:, :, -1].mean()),
        "at_chance": float((truth >= chance - _CHANCE_MARGIN).mean()),
        "true_ties": tied_pairs(truth),
        "rank": {epoch: rank_agreement(table, epoch) for epoch in _epochs(table.epochs)},
        "rank_best": {epoch: rank_agreement(table, epoch, _BEST) for epoch in _epochs(table.epochs)},
        "seconds": (float(seconds.min()), float(np.median(seconds)), float(seconds.max())),
        "table_hours": float(seconds.sum() * table.seeds * table.epochs / 3600),
        "cpu_minutes": float(meta.get("generation_cpu_seconds", 0.0)) / 60,
    }


def render(rows: list[dict[str, object]], epochs: int) -> str:
    quantile_head = " | ".join(f"q{int(q * 100)}" for q in QUANTILES)
    lines = [
        "# Curve tables: sanity report",
        "",
        "Written by `python -m benchmarks.curves.report` from the committed tables (`evaluators/data/curves/`).",
        "",
        "## Final error (true value: mean over seeds of the last epoch's validation error)",
        "",
        f"| dataset | train / val | classes | best | {quantile_head} | chance | no better than chance | "
        "diverged configs (runs) | tied pairs |",
        "|---|---|---|---|" + "---|" * len(QUANTILES) + "---|---|---|---|",
    ]
    for row in rows:
        quantiles = " | ".join(f"{q:.3f}" for q in row["quantiles"])
        lines.append(
            f"| {row['dataset']} | {row['sizes']} | {row['classes']} | {row['best']:.4f} | {quantiles} | "
            f"{row['chance']:.3f} | {row['at_chance']:.1%} | {row['diverged_configs']:.1%} "
            f"({row['diverged_runs']:.1%}) | {row['true_ties']:.2%} |"
        )
    lines += [
        "",
        "A configuration is diverged when any of its seeds had a non-finite loss or weights by the last epoch;",
        f"'no better than chance': a true value within {_CHANCE_MARGIN} of chance (1 - 1/classes), diverged or",
        "stuck (high learning rates mostly stall at chance with a finite loss). Tied pairs: the share of pairs",
        "of configurations whose true values are equal.",
        "",
        "## Does an early epoch rank configurations? (Spearman's rho with the true value; tied pairs)",
        "",
        "One seed's error after epoch k against the true value, averaged over the seeds; ties get average",
        f"ranks. Epoch {epochs} is the ceiling: one seed's final error, whose only disagreement with the true",
        "value is seed noise. In brackets: the share of pairs of configurations that the epoch's errors tie.",
        "",
    ]
    head = "| dataset | " + " | ".join(f"epoch {k}" for k in _epochs(epochs)) + " |"
    for key, title in (("rank", "all configurations"), ("rank_best", f"the best {_BEST:.0%} by true value")):
        lines += [f"Among {title}:", "", head, "|---|" + "---|" * len(_epochs(epochs))]
        for row in rows:
            cells = [f"{rho:.3f} ({tie:.1%})" for rho, tie in row[key].values()]
            lines.append(f"| {row['dataset']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Cost (recorded seconds per epoch: one model alone, one thread, CPU seconds)",
        "",
        "| dataset | min | median | max | whole table (configs x seeds x epochs), hours | "
        "generation, CPU minutes (stacked) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, mid, high = row["seconds"]
        lines.append(
            f"| {row['dataset']} | {low:.3f} | {mid:.3f} | {high:.3f} | {row['table_hours']:.1f} | "
            f"{row['cpu_minutes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=Path, default=None, help="a folder of tables (default: the package's)")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    names = curve_datasets(args.tables)
    if not names:
        raise SystemExit(f"no tables in {args.tables or 'evaluators/data/curves'}: run make_tables first")
    tables = [load_table(name, args.tables) for name in names]
    text = render([summary(table) for table in tables], tables[0].epochs)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
