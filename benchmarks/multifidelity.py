"""Multi-fidelity scheduling, measured as compute to a quality on the replayed learning-curve tables (issue 28).

    python benchmarks/multifidelity.py --out runs/multifidelity                   # every arm, 10 seeds
    python benchmarks/multifidelity.py --out runs/multifidelity --arms bo,default-asha --seeds 3
    python benchmarks/multifidelity.py --out runs/more --seeds 30 --report-only --pool A/runs.json.gz B/runs.json.gz

Each target is a ``curves-<dataset>`` task (:mod:`evaluators.replay`): a trial replays one recorded training
run epoch by epoch and a pruner may stop it at a rung; it costs the epochs it ran (and their recorded
seconds). Arms, each a study per target and seed:

- ``bo``: the GP at full fidelity, 30 trials (the reference: "the compute of N full trials" is, per target and
  seed, what its first N trials cost);
- ``default-asha``: the default strategy (``llm-bo``) with asynchronous successive halving (Optuna's
  ``SuccessiveHalvingPruner``, minimum 3 epochs, reduction factor 3: rungs at 3, 9, 27 epochs); its GP models
  (configuration, step), every stopped trial's values at the rungs (:mod:`agent.strategies.fidelity`);
- ``default-hyperband``: the same with Optuna's ``HyperbandPruner`` (3..27 epochs, factor 3: three brackets);
- ``tpe-hyperband``: Optuna's TPE with ``HyperbandPruner`` (what BOHB is in Optuna);
- ``random-asha``: random search with successive halving;
- ``default-asha-rungs``: ``default-asha-complete`` whose GP, while few trials ran to the end, fits the highest
  rung enough trials reached (BOHB-style: :mod:`agent.strategies.rungs`);
- ``default-loto``: ``default-asha`` learning from one 30-trial ``bo`` study of each OTHER table (:func:`make_sources`)
  (``--learn-from``, leave one dataset out; same space, so no model call maps them), its own model fitted on the
  final values the GP over (configuration, step) predicts for its stopped trials;
- ``default-asha-complete`` and ``default-loto-complete``: the two above as the default was before the GP over
  (configuration, step): its model fit on the complete trials alone (with sources, on the highest rung).

A scheduled arm runs, in chunks of trials, until it has spent the epochs of 30 full trials. Scores are TRUE
errors (the table's mean over its seeds after the last epoch) of the incumbent, the best COMPLETE trial (a
stopped one's value is at a lower fidelity), against the compute spent so far. Studies live in
``OUT/<arm>.db`` (one file per arm, so arms may run in parallel processes; resumable: finished studies are
skipped); ``OUT/results.md`` holds the tables, ``OUT/anytime.png`` the anytime plot, ``OUT/runs.json.gz``
the per-trial numbers they are made of.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from _variants import default_with  # noqa: E402

from agent import metrics  # noqa: E402
from agent.bench import run_seed  # noqa: E402
from agent.providers.base import Provider  # noqa: E402
from agent.records import TrialRecord  # noqa: E402
from agent.session import ModelSettings, StudyConfig, open_model, run_study  # noqa: E402
from agent.strategies.base import StrategySpec  # noqa: E402
from agent.strategies.bo import SPEC as BO  # noqa: E402
from agent.study import opened_storage, read_records  # noqa: E402
from agent.study.scheduler import PrunerName  # noqa: E402
from agent.tasks import build_task  # noqa: E402
from evaluators.curves import curve_datasets, load_table  # noqa: E402

TARGETS = ("digits", "segment", "mnist", "gen-4class")
ARMS = (
    "bo",
    "default-asha",
    "default-hyperband",
    "tpe-hyperband",
    "random-asha",
    "default-loto",
    "default-asha-rungs",
    "default-asha-complete",
    "default-loto-complete",
)
FULL = 30  # the reference's trials, and the compute (in full trials) every scheduled arm spends
REPORTED = (10, 30)  # equal compute, in full trials' worth
CHUNK = 60  # trials a scheduled arm adds per run until it has spent its compute
SOURCE_SEED = 1000


@dataclass(frozen=True)
class Arm:
    name: str
    strategy: str
    #: ``--pruner`` as a user names it: the curves tasks start their rungs at 3 epochs
    #: (:data:`tools.train_replayed.FIRST_RUNG`), so ``asha`` is Optuna's SuccessiveHalvingPruner(3, 3) and
    #: ``hyperband`` its HyperbandPruner(3, 27, 3).
    pruner: PrunerName
    learns: bool = False


ARM = {
    "bo": Arm("bo", "bo", "none"),
    "default-asha": Arm("default-asha", "llm-bo", "asha"),
    "default-hyperband": Arm("default-hyperband", "llm-bo", "hyperband"),
    "tpe-hyperband": Arm("tpe-hyperband", "tpe", "hyperband"),
    "random-asha": Arm("random-asha", "random", "asha"),
    "default-loto": Arm("default-loto", "llm-bo", "asha", learns=True),
    "default-asha-rungs": Arm("default-asha-rungs", "llm-bo-rungs", "asha"),
    "default-asha-complete": Arm("default-asha-complete", "llm-bo-complete", "asha"),
    "default-loto-complete": Arm("default-loto-complete", "llm-bo-complete", "asha", learns=True),
}


#: The default strategy fitting its GP on the highest rung enough trials reached (BOHB-style) while few ran
#: to the end: a variant measured here before it may become the default.
RUNGS = default_with("llm-bo-rungs", rungs=True, fidelity=False)
#: The default before the Gaussian process over (configuration, step): its model fit on the complete trials
#: alone (with sources, on the highest rung), the stopped ones unused.
COMPLETE = default_with("llm-bo-complete", fidelity=False)
VARIANTS = {v.name: v for v in (RUNGS, COMPLETE)}
#: ``bo`` fitting its GP on the complete trials alone: what made the source studies (:func:`make_sources`).
SOURCE_BO = default_with("bo-complete", base=BO, fidelity=False)


def spec(name: str) -> str | StrategySpec:
    return VARIANTS.get(name, name)


def storage_url(out: Path, arm: str) -> str:
    return f"sqlite:///{(out / f'{arm}.db').resolve()}"


#: Earlier measurements' runs (``--pool``, :func:`pool`), by study name: scored as if their studies were in OUT.
_POOLED: dict[str, Run] = {}


def has_studies(out: Path, arm: str) -> bool:
    return (out / f"{arm}.db").is_file() or any(name.split("/")[1] == arm for name in _POOLED)


def pool(paths: Sequence[Path]) -> None:
    """Score the runs these ``runs.json.gz`` recorded (:func:`export`) beside OUT's studies: seeds measured in
    other folders, reported as one (a study of OUT's is read in place of a recorded one of the same name)."""
    for path in paths:
        _POOLED.update(recorded_runs(path))
    read_run.cache_clear()


def study_name(arm: str, target: str, seed: int) -> str:
    return f"curves-{target}/{arm}/seed{seed}"


def source_folder(out: Path, dataset: str) -> Path:
    return out / "sources" / dataset


def _silent(line: str) -> None:
    return None


def spent(url: str, name: str) -> tuple[int, int]:
    """(finished trials, epochs they ran) of a study; (0, 0) before it exists."""
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        return 0, 0
    with opened_storage(url) as storage:
        if name not in {s.study_name for s in storage.get_all_studies()}:
            return 0, 0
        trials = storage.get_all_trials(storage.get_study_id_from_name(name))
    finished = [r for r in read_records(trials) if r.finished]
    return len(finished), sum(_epochs(r) for r in finished)


def _epochs(record: TrialRecord) -> int:
    """The epochs a finished trial ran (the replay's ``epochs_run``; none for a failure)."""
    return int(record.metrics.get("epochs_run", 0))


async def make_sources(out: Path) -> None:
    """One 30-trial ``bo`` study of every table, each in a folder of its own: the earlier studies the learning arms
    learn from. Each is scheduled as a user's study of the task is by default (ASHA: most of its trials stop at
    rung 3 or 9), with ``bo`` as it was when the learning arms were first measured (its GP on the complete trials
    alone, :data:`SOURCE_BO`), so that every measurement learns from the same sources."""
    for dataset in curve_datasets():
        folder = source_folder(out, dataset)
        url = f"sqlite:///{(folder / 'study.db').resolve()}"
        task = build_task(f"curves-{dataset}", seed=SOURCE_SEED)
        config = StudyConfig(
            task=task,
            strategy=SOURCE_BO,
            budget=FULL,
            seed=SOURCE_SEED,
            save_dir=folder,
            study_name=f"curves-{dataset}-bo-seed{SOURCE_SEED}",
            pruner="asha",
            checks=False,
        )
        if spent(url, config.name)[0] < FULL:
            await run_study(config, say=_silent)


async def run_arm(out: Path, arm: Arm, targets: Sequence[str], seeds: range, provider: Provider | None) -> None:
    url = storage_url(out, arm.name)
    started = time.perf_counter()
    for s in seeds:
        for target in targets:
            name = study_name(arm.name, target, s)
            task_name = f"curves-{target}"
            seed = run_seed(task_name, s)
            epochs = load_table(target).epochs
            goal = FULL * epochs  # the compute of 30 full trials, in epochs
            began = time.perf_counter()
            while True:
                n, used = spent(url, name)
                if (arm.pruner == "none" and n >= FULL) or (arm.pruner != "none" and used >= goal):
                    break
                budget = FULL if arm.pruner == "none" else n + CHUNK
                learn = tuple(str(source_folder(out, d)) for d in curve_datasets() if d != target) if arm.learns else ()
                config = StudyConfig(
                    task=build_task(task_name, seed=seed),
                    strategy=spec(arm.strategy),
                    budget=budget,
                    seed=seed,
                    save_dir=out / "studies" / arm.name / target / f"seed{s}",
                    study_name=name,
                    storage=url,
                    pruner=arm.pruner,
                    learn_from=learn,
                    checks=False,
                )
                await run_study(config, provider=provider, say=_silent)
            n, used = spent(url, name)
            print(
                f"{name}: {n} trials, {used} epochs, {time.perf_counter() - began:.0f} s "
                f"(arm: {time.perf_counter() - started:.0f} s)",
                flush=True,
            )


# ---- what the studies measured ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One study, trial by trial in order: cumulative epochs and recorded seconds, and the incumbent's true error
    after each trial (``inf`` before the first complete trial)."""

    epochs: np.ndarray
    seconds: np.ndarray
    true_error: np.ndarray
    pruned: int

    def at(self, budget: float, by: str = "epochs") -> float:
        """The incumbent's true error once no more than ``budget`` compute was spent. A run that ended having
        spent less (a scheduled arm's cheap trials, counted in seconds) keeps its last incumbent: the arm is
        scored with less compute than its rival, never more."""
        spent_ = self.epochs if by == "epochs" else self.seconds
        k = int(np.searchsorted(spent_, budget * (1 + 1e-9), side="right"))
        return float(self.true_error[k - 1]) if k else math.inf

    @property
    def pace(self) -> float:
        """Recorded seconds per epoch over the whole run: how dear the configurations it chose were."""
        return float(self.seconds[-1] / self.epochs[-1])

    def reach(self, target: float, by: str = "epochs") -> float:
        """The compute after which the incumbent's true error is at most ``target`` (inf: never in this run)."""
        spent_ = self.epochs if by == "epochs" else self.seconds
        hits = np.flatnonzero(self.true_error <= target + 1e-12)
        return float(spent_[hits[0]]) if hits.size else math.inf


@functools.cache
def read_run(out: Path, arm: str, target: str, seed: int) -> Run | None:
    url = storage_url(out, arm)
    pooled = _POOLED.get(study_name(arm, target, seed))
    if not Path(url.removeprefix("sqlite:///")).is_file():
        return pooled
    with opened_storage(url) as storage:
        try:
            trials = storage.get_all_trials(storage.get_study_id_from_name(study_name(arm, target, seed)))
        except KeyError:
            return pooled
    records = [r for r in read_records(trials) if r.finished]
    table = load_table(target)
    if sum(_epochs(r) for r in records) < FULL * table.epochs:
        return None  # not finished (a run stopped part way): scored only once it spent its compute
    epochs = np.array([_epochs(r) for r in records], dtype=np.float64)
    seconds = np.array([e * table.seconds_per_epoch(r.config) for e, r in zip(epochs, records, strict=True)])
    values = [r.value if r.state == "complete" else None for r in records]
    scores = [table.true_value(r.config) if r.state == "complete" else None for r in records]
    return Run(
        epochs=np.cumsum(epochs),
        seconds=np.cumsum(seconds),
        true_error=metrics.incumbent_scores(values, scores),
        pruned=sum(r.state == "pruned" for r in records),
    )


def reference_budget(out: Path, target: str, seed: int, n: int, by: str) -> float:
    """The compute of ``n`` full trials: what ``bo``'s first ``n`` trials spent on this target and seed."""
    ref = read_run(out, "bo", target, seed)
    if ref is None or ref.epochs.size < n:
        return math.nan
    return float((ref.epochs if by == "epochs" else ref.seconds)[n - 1])


def compare(out: Path, arm: str, other: str, targets: Sequence[str], seeds: int, n: int, by: str) -> list[float]:
    """Paired true errors at the compute of ``n`` full trials: [arm..., other...] (pairs where both ran)."""
    xs, ys = [], []
    for target in targets:
        for s in range(seeds):
            a, b = read_run(out, arm, target, s), read_run(out, other, target, s)
            budget = reference_budget(out, target, s, n, by)
            if a is None or b is None or math.isnan(budget):
                continue
            x, y = a.at(budget, by), b.at(budget, by)
            if math.isnan(x) or math.isnan(y):
                continue
            xs.append(x)
            ys.append(y)
    return xs + ys


def results(out: Path, arms: Sequence[str], targets: Sequence[str], seeds: int) -> list[str]:
    """The tables of the studies in ``out`` of seeds below ``seeds`` (those that ran: the header names them)."""
    ran = [s for s in range(seeds) if any(read_run(out, "bo", t, s) is not None for t in targets)]
    named = f"{ran[0]}..{ran[-1]}" if ran else "none"
    lines = [
        "# Multi-fidelity scheduling on replayed learning curves",
        "",
        f"Targets: {', '.join(f'curves-{t}' for t in targets)}; seeds {named}. True error of the incumbent (the",
        "best complete trial) at equal compute: the compute `bo` at full fidelity spent on its first N trials of the",
        "same target and seed (epochs, or recorded seconds). Pairs by (target, seed): better/worse/tied, exact",
        "two-sided sign test (ties dropped); medians over targets x seeds.",
        "",
        "## At equal compute",
        "",
        "| arm | against | compute | N full trials | better/worse/tied | p | median (arm) | median (against) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        for other in ("bo", "tpe-hyperband", "default-asha", f"{arm}-complete"):
            if arm == other or other not in ARM or (other != "bo" and not arm.startswith("default")):
                continue
            for by in ("epochs", "seconds"):
                for n in REPORTED:
                    paired = compare(out, arm, other, targets, seeds, n, by)
                    if not paired:
                        continue
                    k = len(paired) // 2
                    x, y = np.array(paired[:k]), np.array(paired[k:])
                    better, worse, tied = metrics.paired_outcomes(x, y)
                    p = metrics.sign_test(better, worse)
                    lines.append(
                        f"| {arm} | {other} | {by} | {n} | {better}/{worse}/{tied} | {p:.2g} | "
                        f"{np.median(x):.4f} | {np.median(y):.4f} |"
                    )
    lines += [
        "",
        f"## Compute to reach `bo`'s true error after {FULL} full trials",
        "",
        f"Per target and seed: the compute after which the arm's incumbent is at least as good as `bo`'s after {FULL}",
        f"trials, as a share of what `bo` spent on those {FULL} trials (inf: not reached within the arm's run, which",
        f"spends {FULL} full trials' epochs). Median over targets x seeds, and how many pairs reached it.",
        "",
        "| arm | median share (epochs) | median share (seconds) | reached | pruned trials (median per study) | "
        "seconds per epoch / `bo`'s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for arm in arms:
        shares: dict[str, list[float]] = {"epochs": [], "seconds": []}
        pruned: list[int] = []
        pace: list[float] = []
        for target in targets:
            for s in range(seeds):
                a, ref = read_run(out, arm, target, s), read_run(out, "bo", target, s)
                if a is None or ref is None or ref.epochs.size < FULL:
                    continue
                goal = float(ref.true_error[FULL - 1])
                pruned.append(a.pruned)
                pace.append(a.pace / ref.pace)
                for by in shares:
                    total = reference_budget(out, target, s, FULL, by)
                    shares[by].append(a.reach(goal, by) / total)
        if not pruned:
            continue
        reached = sum(math.isfinite(v) for v in shares["epochs"])
        known = [n for n in pruned if n >= 0]
        median = str(int(np.median(known))) if known else "-"
        if len(known) < len(pruned):
            median += f" ({len(known)} recorded)"
        lines.append(
            f"| {arm} | {_share(shares['epochs'])} | {_share(shares['seconds'])} | {reached}/{len(pruned)} | "
            f"{median} | {np.median(pace):.2f} |"
        )
    lines += [
        "",
        "Paired by (target, seed), who reaches it with less compute (epochs; never reached counts as never):",
        "",
        "| arm | against | sooner/later/tied | p |",
        "|---|---|---|---|",
    ]
    for arm in arms:
        for other in ("tpe-hyperband", f"{arm}-complete"):
            if other == arm or other not in arms or not arm.startswith("default"):
                continue
            sooner = paired_reach(out, arm, other, targets, seeds)
            if sooner is not None:
                p = metrics.sign_test(sooner[0], sooner[1])
                lines.append(f"| {arm} | {other} | {'/'.join(map(str, sooner))} | {p:.2g} |")
    paced = [
        (arm, other, counts)
        for arm in arms
        for other in ("bo", f"{arm}-complete")
        if other != arm and other in arms and arm.startswith("default")
        if (counts := paired_pace(out, arm, other, targets, seeds)) is not None
    ]
    if paced:
        lines += [
            "",
            "Paired by (target, seed), the seconds per epoch of the whole run (how dear the configurations chosen):",
            "",
            "| arm | against | dearer/cheaper/tied | p |",
            "|---|---|---|---|",
        ]
        for arm, other, (dearer, cheaper, tied) in paced:
            lines.append(f"| {arm} | {other} | {dearer}/{cheaper}/{tied} | {metrics.sign_test(dearer, cheaper):.2g} |")
    return lines


def paired_pace(out: Path, arm: str, other: str, targets: Sequence[str], seeds: int) -> tuple[int, int, int] | None:
    """(dearer, cheaper, tied): pairs where ``arm``'s run paid more, fewer or the same seconds per epoch than
    ``other``'s; None where no pair ran."""
    xs, ys = [], []
    for target in targets:
        for s in range(seeds):
            a, b = read_run(out, arm, target, s), read_run(out, other, target, s)
            if a is not None and b is not None:
                xs.append(a.pace)
                ys.append(b.pace)
    if not xs:
        return None
    cheaper, dearer, tied = metrics.paired_outcomes(np.array(xs), np.array(ys))  # "better" is lower
    return dearer, cheaper, tied


def paired_reach(out: Path, arm: str, other: str, targets: Sequence[str], seeds: int) -> tuple[int, int, int] | None:
    """(sooner, later, tied): pairs where ``arm`` reaches ``bo``'s true error after FULL trials with less, more or
    the same compute (epochs) than ``other``; None where no pair ran."""
    xs, ys = [], []
    for target in targets:
        for s in range(seeds):
            a, b, ref = read_run(out, arm, target, s), read_run(out, other, target, s), read_run(out, "bo", target, s)
            if a is None or b is None or ref is None or ref.epochs.size < FULL:
                continue
            goal = float(ref.true_error[FULL - 1])
            xs.append(a.reach(goal))
            ys.append(b.reach(goal))
    return metrics.paired_outcomes(np.array(xs), np.array(ys)) if xs else None


def recorded_runs(path: Path) -> dict[str, Run]:
    """The runs a ``runs.json.gz`` (:func:`export`) holds, by study name: an earlier measurement, read back."""
    data = json.loads(gzip.decompress(path.read_bytes()))
    return {
        name: Run(
            epochs=np.array(run["epochs"], dtype=np.float64),
            seconds=np.array(run["seconds"], dtype=np.float64),
            true_error=np.array([math.inf if x is None else x for x in run["true_error"]], dtype=np.float64),
            pruned=run.get("pruned", -1),  # -1: not recorded (exports made before --pool)
        )
        for name, run in data.items()
    }


def versus(out: Path, arm: str, path: Path, other: str, targets: Sequence[str], seeds: int) -> list[str]:
    """``arm`` of ``out`` against ``other`` as an earlier measurement recorded it (``path``, a ``runs.json.gz``):
    at 10 and 30 full trials' compute (this folder's ``bo``) and who reaches ``bo``@30's error sooner."""
    recorded = recorded_runs(path)
    rows: dict[str, list[tuple[float, float]]] = {}
    for target in targets:
        for s in range(seeds):
            a, b, ref = (
                read_run(out, arm, target, s),
                recorded.get(study_name(other, target, s)),
                read_run(out, "bo", target, s),
            )
            if a is None or b is None or ref is None or ref.epochs.size < FULL:
                continue
            for by in ("epochs", "seconds"):
                for n in REPORTED:
                    budget = reference_budget(out, target, s, n, by)
                    rows.setdefault(f"{by} | {n}", []).append((a.at(budget, by), b.at(budget, by)))
            goal = float(ref.true_error[FULL - 1])
            rows.setdefault("epochs | reach", []).append((a.reach(goal), b.reach(goal)))
    lines = [
        "",
        f"## `{arm}` against `{other}` as recorded in {path}",
        "",
        "| compute | N full trials (reach: who reaches `bo`@30 sooner) | better/worse/tied | p |",
        "|---|---|---|---|",
    ]
    for key, pairs in rows.items():
        x, y = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        better, worse, tied = metrics.paired_outcomes(x, y)
        lines.append(f"| {key} | {better}/{worse}/{tied} | {metrics.sign_test(better, worse):.2g} |")
    return lines


def _share(values: Sequence[float]) -> str:
    median = float(np.median(np.array(values)))
    return "inf" if math.isinf(median) else f"{median:.2f}"


def plot(out: Path, arms: Sequence[str], targets: Sequence[str], seeds: int, path: Path) -> None:
    """Median true error (over seeds) against compute in full trials' worth of epochs, a panel per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(1, FULL, 59)
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        for arm in arms:
            rows = []
            for s in range(seeds):
                run = read_run(out, arm, target, s)
                if run is None:
                    continue
                epochs = load_table(target).epochs
                rows.append([run.at(n * epochs) for n in grid])
            if not rows:
                continue
            values = np.array(rows)
            values[np.isinf(values)] = np.nan
            with np.errstate(all="ignore"):
                median = np.nanmedian(values, axis=0)
            ax.plot(grid, median, label=arm)
        ax.set_title(f"curves-{target}")
        ax.set_xlabel("compute (full trials' epochs)")
        ax.set_yscale("log")
    axes[0][0].set_ylabel(f"true error, median of {seeds} seeds")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def export(out: Path, arms: Sequence[str], targets: Sequence[str], seeds: int) -> Path:
    runs = {}
    for arm in arms:
        for target in targets:
            for s in range(seeds):
                run = read_run(out, arm, target, s)
                if run is not None:
                    runs[study_name(arm, target, s)] = {
                        "epochs": run.epochs.tolist(),
                        "seconds": [round(x, 5) for x in run.seconds.tolist()],
                        "true_error": [None if math.isinf(x) else x for x in run.true_error.tolist()],
                        "pruned": run.pruned,
                    }
    path = out / "runs.json.gz"
    path.write_bytes(gzip.compress(json.dumps(runs, sort_keys=True).encode(), mtime=0))
    return path


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/multifidelity"))
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"of {', '.join(curve_datasets())}")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--from-seed", type=int, default=0, help="run seeds FROM..SEEDS-1 only (processes may split the seeds)"
    )
    parser.add_argument("--report-only", action="store_true", help="write the results of the studies in OUT")
    parser.add_argument(
        "--versus",
        nargs=3,
        metavar=("ARM", "RUNS", "OTHER"),
        help="also pair ARM of OUT with OTHER as an earlier measurement's runs.json.gz (RUNS) recorded it",
    )
    parser.add_argument(
        "--pool",
        nargs="+",
        type=Path,
        default=[],
        metavar="RUNS",
        help="also score the runs these runs.json.gz recorded (seeds measured in other folders), as one report",
    )
    parser.add_argument("--provider", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := sorted(set(arms) - set(ARMS)):
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    if unknown := sorted(set(targets) - set(curve_datasets())):
        parser.error(f"unknown targets {unknown}; choose from {', '.join(curve_datasets())}")
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pool(args.pool)
    if not args.report_only:
        if "bo" not in arms and not (args.out / "bo.db").is_file():
            arms.insert(0, "bo")  # every arm is measured against it
        if any(ARM[a].learns for a in arms):
            await make_sources(args.out)
        async with open_model(ModelSettings(provider=args.provider, model=args.model)) as provider:
            for arm in arms:
                await run_arm(args.out, ARM[arm], targets, range(args.from_seed, args.seeds), provider)
    done = [a for a in ARMS if has_studies(args.out, a)]
    lines = results(args.out, done, targets, args.seeds)
    if args.versus:
        arm, runs, other = args.versus
        lines += versus(args.out, arm, Path(runs), other, targets, args.seeds)
    text = "\n".join(lines) + "\n"
    (args.out / "results.md").write_text(text)
    plot(args.out, done, targets, args.seeds, args.out / "anytime.png")
    export(args.out, done, targets, args.seeds)
    print(text)


if __name__ == "__main__":
    anyio.run(main)
