"""Can earlier studies' learning curves decide a rung better than the values there? (issue 28, item 4)

    python benchmarks/curve_prediction.py --out benchmarks/results/curve-prediction --sources runs/multifidelity

Successive halving keeps a trial past rung ``s`` when its value at step ``s`` is among the best third of the
values there. Earlier studies' curves could instead predict each trial's FINAL value from its value at ``s``:
``v_s * r``, where ``r`` is the ratio ``final / value at s`` of source trials with similar configurations
(slow starters, such as small learning rates, would then be kept). This script measures, on the replayed
learning-curve tables (:mod:`evaluators.curves`, the table's mean over its seeds), whether that ordering keeps
the best configurations better than the raw values do, at the rungs 3 and 9 of the default scheduler:

- ``raw``: the value at step ``s`` (what ASHA compares);
- ``sources``: ``v_s`` times the mean ratio of the 5 nearest trials (in the unit cube of the study's own
  models, :class:`~agent.space.UnitEncoder`) of the leave-one-table-out source studies: one 30-trial
  full-fidelity ``bo`` study of each other table (:func:`benchmarks.multifidelity.make_sources`, run by the
  agent under ``--sources``, or the multifidelity bench's own when given its folder; what ``--learn-from``
  would read);
- ``oracle``: ``v_s`` times the mean ratio of the SAME configuration on the other tables (an upper bound no
  study has: every configuration's curve on every other table).

Per target and rung: Spearman's rank correlation with the final value, over every configuration and over the
best 10% by final value (the region a guided search visits); and the share of the best 1% and 3% of
configurations that each ordering keeps when it keeps a third (ASHA's cut) or a ninth (two rungs at once).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from agent.space import UnitEncoder  # noqa: E402
from agent.study import opened_storage, read_records  # noqa: E402
from agent.tasks import build_task  # noqa: E402
from benchmarks.multifidelity import TARGETS, make_sources, source_folder  # noqa: E402
from evaluators.curves import CurveTable, curve_datasets, load_table  # noqa: E402

RUNGS = (3, 9)
NEIGHBOURS = 5
ORDERINGS = ("raw", "sources", "oracle")


def mean_curves(table: CurveTable) -> np.ndarray:
    """[config, epoch]: the table's mean over its seeds."""
    return np.asarray(table.arrays.val_error.mean(axis=1))


def positions(table: CurveTable, configs: Sequence[Mapping[str, object]]) -> np.ndarray:
    """Each configuration in the unit cube the study's own models see (:class:`~agent.space.UnitEncoder` over the
    ``curves-<dataset>`` task's space: a grid's choice index, centred in its cell)."""
    return UnitEncoder(build_task(f"curves-{table.dataset}").space)(configs)


def grid_positions(table: CurveTable) -> np.ndarray:
    return positions(table, [table.config(i) for i in range(table.n_configs)])


def source_ratios(out: Path, target: str, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, final / value at ``step``) of every curve the other tables' source studies recorded."""
    where: list[dict[str, object]] = []
    ratios: list[float] = []
    for dataset in curve_datasets():
        if dataset == target:
            continue
        url = f"sqlite:///{(source_folder(out, dataset) / 'study.db').resolve()}"
        with opened_storage(url) as storage:
            (study,) = storage.get_all_studies()
            records = read_records(storage.get_all_trials(study._study_id))
        for r in records:
            top = max(r.curve, default=0)
            if r.state == "complete" and step in r.curve and r.curve[step] > 0 and top > step:
                where.append(r.config)
                ratios.append(r.curve[top] / r.curve[step])
    return positions(load_table(target), where), np.array(ratios)


def predicted(table: CurveTable, step: int, source_at: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """``v_step`` times the mean ratio of the ``NEIGHBOURS`` nearest source trials, per configuration."""
    grid = grid_positions(table)
    distances = ((grid[:, None, :] - source_at[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(distances, axis=1)[:, :NEIGHBOURS]
    return mean_curves(table)[:, step - 1] * ratios[nearest].mean(axis=1)


def oracle(target: str, step: int) -> np.ndarray:
    curves = mean_curves(load_table(target))
    others = [mean_curves(load_table(d)) for d in curve_datasets() if d != target]
    ratio = np.mean([o[:, -1] / np.maximum(o[:, step - 1], 1e-12) for o in others], axis=0)
    return np.asarray(curves[:, step - 1] * ratio)


def kept(order: np.ndarray, final: np.ndarray, best: float, cut: float) -> float:
    """The share of the best ``best`` fraction by final value that the lowest ``cut`` of ``order`` keeps."""
    top = final <= np.quantile(final, best)
    return float((order <= np.quantile(order, cut))[top].mean())


def measure(out: Path, targets: Sequence[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for target in targets:
        table = load_table(target)
        curves = mean_curves(table)
        final = curves[:, -1]
        good = final <= np.quantile(final, 0.1)
        for step in RUNGS:
            source_at, ratios = source_ratios(out, target, step)
            orders = {
                "raw": curves[:, step - 1],
                "sources": predicted(table, step, source_at, ratios),
                "oracle": oracle(target, step),
            }
            for name in ORDERINGS:
                order = orders[name]
                rows.append(
                    {
                        "target": target,
                        "rung": step,
                        "ordering": name,
                        "spearman": float(spearmanr(order, final).statistic),
                        "spearman_best10": float(spearmanr(order[good], final[good]).statistic),
                        **{f"kept{b}@{c}": kept(order, final, b, 1 / c) for b in (0.01, 0.03) for c in (3, 9)},
                    }
                )
    return rows


def table_lines(rows: Sequence[dict[str, object]]) -> list[str]:
    keys = ("spearman", "spearman_best10", "kept0.01@3", "kept0.03@3", "kept0.01@9", "kept0.03@9")
    lines = [
        "# Earlier studies' curves at the rungs: ordering by predicted final value against the value there",
        "",
        "Spearman with the final value (all configurations / the best 10%); the share of the best 1% and 3% kept by",
        "the best third (`@3`, ASHA's cut) or ninth (`@9`) of each ordering. Per target and rung; `mean` rows",
        "average the targets.",
        "",
        "| target | rung | ordering | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    targets = sorted({str(r["target"]) for r in rows}, key=lambda t: [*TARGETS, t].index(t))
    for target in [*targets, "mean"]:
        for step in RUNGS:
            for name in ORDERINGS:
                chosen = [
                    r for r in rows if r["rung"] == step and r["ordering"] == name and target in ("mean", r["target"])
                ]
                cells = [f"{np.mean([float(r[k]) for r in chosen]):.3f}" for k in keys]  # type: ignore[arg-type]
                lines.append(f"| {target} | {step} | {name} | " + " | ".join(cells) + " |")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/curve-prediction"), help="where results.md goes")
    parser.add_argument("--sources", type=Path, default=Path("runs/multifidelity"), help="the source studies' bench")
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parser.parse_args()
    await make_sources(args.sources)
    rows = measure(args.sources, [t.strip() for t in args.targets.split(",") if t.strip()])
    text = "\n".join(table_lines(rows)) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    anyio.run(main)
