"""Transfer from earlier studies (``bo`` learning from sources) against ``bo`` alone, paired by seed, on true error.

Targets: HPOBench tables (car left out: it reaches 0 error at once) and NAS-Bench-201, seeds 0..N-1 with the
bench's study seeds (``agent.bench.run_seed``), so each arm's study s pairs with ``bo``'s study s. Every study
is assembled by the session (``agent.session.run_study``, the arm's strategy given as a spec of its own) on a
journal file; budget 10 reads budget 30's prefix.

Sources (built once, cached under OUT/sources/):
- ``loto``: one 30-trial ``bo`` study of every OTHER table of the family (leave one task out), read from a
  bench storage (``python -m agent bench --tasks hpobench,nb201 --strategies bo --budget 30 --seeds 1``);
- ``negated``: one 30-trial ``bo`` study of the same table with the objective negated (it finds the table's
  worst configurations and calls them best): a misleading source;
- ``toys``: 30-trial ``bo`` studies of 2D toy functions, x1 -> learning_rate_init and x2 -> width (linearly
  onto their grid indices): unrelated sources a model should not have mapped.

Resumable: each finished study appends one JSON line to OUT/results.jsonl and is skipped on the next run.

    python benchmarks/transfer_sim.py run --arms bo,loto --out runs/transfer --seeds 10
    python benchmarks/transfer_sim.py report --out runs/transfer
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import itertools
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from agent import metrics
from agent.bench import run_seed
from agent.records import Direction, SourceData, TrialRecord
from agent.session import StudyConfig
from agent.session import run_study as session_run_study
from agent.space import CategoricalParam, Choice, SearchSpace
from agent.strategies._rgpe import fill, fit_model, maximize_ei, one_thread
from agent.strategies.base import Strategy, StrategySpec
from agent.strategies.bo import BOStrategy
from agent.strategies.surrogate import SurrogateModel, untried
from agent.strategies.transfer import TransferProposal, TransferSurrogate
from agent.study import open_storage, opened_storage, read_records, stored_records
from agent.tasks import build_task
from evaluators.tabular import TABULAR_DATASETS, _mean_errors

HPOBENCH = [f"hpobench-{d}" for d in TABULAR_DATASETS["hpobench"] if d != "car"]
NB201 = [f"nb201-{d}" for d in TABULAR_DATASETS["nb201"]]
TOYS = ["toy-branin", "toy-himmelblau", "toy-ackley", "toy-rosenbrock"]
TOY_MAP = {"x1": "learning_rate_init", "x2": "width"}
SOURCE_BUDGET = 30
_SOURCE_SEED = 900  # bench seed of the sources this script makes (negated tables, toys): apart from targets'


# ---- running one study ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    records: list[TrialRecord]
    seconds: float


async def run_study(
    task_name: str, strategy: Strategy, budget: int, seed: int, direction: Direction = "minimize"
) -> Study:
    """One study through the session, in a temporary folder; ``direction=maximize`` negates the objective."""
    task = dataclasses.replace(build_task(task_name, seed=seed), direction=direction)
    spec = StrategySpec(name=strategy.name, summary="an arm of this benchmark", build=lambda ctx: strategy)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "study.log")
        config = StudyConfig(
            task=task, strategy=spec, budget=budget, seed=seed, save_dir=Path(tmp), study_name="s", storage=url
        )
        await session_run_study(config, say=lambda line: None)
        with opened_storage(url) as storage:
            records = stored_records(storage, "s")
    return Study(records, time.perf_counter() - started)


def as_source(name: str, records: Sequence[TrialRecord], sign: float = 1.0) -> SourceData:
    done = [r for r in records if r.state == "complete" and r.value is not None]
    return SourceData(
        name=name,
        configs=tuple(dict(r.config) for r in done),
        values=tuple(sign * float(r.value) for r in done if r.value is not None),
        direction="minimize",
    )


# ---- sources ----------------------------------------------------------------------------------------------


def loto_sources(storage_url: str, tasks: Sequence[str]) -> dict[str, SourceData]:
    """Each task's 30-trial ``bo`` study (bench seed 0) from a bench storage."""
    storage = open_storage(storage_url)
    out = {}
    for task in tasks:
        sid = storage.get_study_id_from_name(f"{task}/bo/seed0")
        out[task] = as_source(task, read_records(storage.get_all_trials(sid, deepcopy=False)))
    return out


def _cached(path: Path, make: Callable[[], SourceData]) -> SourceData:
    if path.exists():
        d = json.loads(path.read_text())
        return SourceData(d["name"], tuple(d["configs"]), tuple(d["values"]), d["direction"])
    source = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vars(source)))
    return source


def negated_source(task: str, out: Path) -> SourceData:
    """A 30-trial ``bo`` study of ``-error`` (maximizing the error), its values negated: its best are the worst."""

    def make() -> SourceData:
        study = anyio.run(run_study, task, BOStrategy(), SOURCE_BUDGET, run_seed(task, _SOURCE_SEED), "maximize")
        return as_source(f"negated-{task}", study.records, sign=-1.0)

    return _cached(out / "sources" / f"negated-{task}.json", make)


def toy_source(toy: str, target_space: SearchSpace, out: Path) -> SourceData:
    """A 30-trial ``bo`` study of a 2D toy, mapped x1 -> learning_rate_init, x2 -> width (linear in the grid index)."""

    def make() -> SourceData:
        study = anyio.run(run_study, toy, BOStrategy(), SOURCE_BUDGET, run_seed(toy, _SOURCE_SEED))
        return as_source(toy, study.records)

    raw = _cached(out / "sources" / f"{toy}.json", make)
    bounds = build_task(toy).space.params
    configs = []
    for c in raw.configs:
        mapped: dict[str, Choice] = {}
        for x, name in TOY_MAP.items():
            p, grid = bounds[x], target_space.params[name]
            assert isinstance(grid, CategoricalParam) and not isinstance(p, CategoricalParam)
            t = (float(c[x]) - p.low) / (p.high - p.low)
            mapped[name] = grid.choices[round(t * (len(grid.choices) - 1))]
        configs.append(mapped)
    return SourceData(f"{toy}-mapped", tuple(configs), raw.values, raw.direction)


# ---- arms -------------------------------------------------------------------------------------------------


class OpenersOnly(TransferSurrogate):
    """Openers, then ``bo`` on this study's results alone (what the openers are worth by themselves)."""

    def propose_weighted(  # type: ignore[override]
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Any = (),
        direction: Direction = "minimize",
    ) -> TransferProposal:
        return TransferProposal(SurrogateModel().propose(space, records, rng, also_taken, direction), {})


class OwnEngine(TransferSurrogate):
    """No sources: 3 random trials, then this module's Gaussian process and expected improvement on this study's
    results alone (how the engine compares with ``bo``'s, apart from any transfer)."""

    def propose_weighted(  # type: ignore[override]
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Any = (),
        direction: Direction = "minimize",
    ) -> TransferProposal:
        taken = {space.key(r.config) for r in records} | set(also_taken)
        if len(records) < 3:
            return TransferProposal(untried(space, taken, rng), {"target": 1.0})
        _, target = self._fit(space, records, direction)
        assert target is not None
        with one_thread():
            return TransferProposal(maximize_ei(space, [(target, 1.0)], target, rng, taken), {"target": 1.0})


class RoundRobin(TransferSurrogate):
    """Openers taken in turn from each source's best (by its model's mean), instead of by average rank."""

    def openers(self, space: SearchSpace, k: int) -> list[dict[str, Choice]]:
        rng = random.Random(0)
        ranked = []
        for m in self.models(space):
            mean, _ = m.predict(m.configs)
            ranked.append([fill(space, m.configs[int(i)], rng) for i in np.argsort(mean, kind="stable")])
        out: dict[str, dict[str, Choice]] = {}
        for row in itertools.zip_longest(*ranked):
            for config in row:
                if config is not None and len(out) < k:
                    out.setdefault(space.key(config), config)
        return list(out.values())


class _Stack:
    """A source prior (the sources' mean prediction, equally weighted) plus a GP on this study's residuals."""

    def __init__(self, space: SearchSpace, sources: Sequence[Any], target: Any) -> None:
        self.sources, self.configs = sources, target.configs
        prior = self._prior(target.configs)
        self.residual = fit_model(space, "residual", list(target.configs), target.scores - prior)
        self.scores = target.scores

    def _prior(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.mean([m.predict(configs)[0] for m in self.sources], axis=0)

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self.residual.predict(configs)
        return self._prior(configs) + mean, var


class Stacked(TransferSurrogate):
    """Vizier-style stacking instead of RGPE: this study's GP models what the sources' mean gets wrong."""

    def propose_weighted(  # type: ignore[override]
        self,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        rng: random.Random,
        also_taken: Any = (),
        direction: Direction = "minimize",
    ) -> TransferProposal:
        taken = {space.key(r.config) for r in records} | set(also_taken)
        with one_thread():
            models, target = self._fit(space, records, direction)
            if target is None or len(target.scores) < 2:
                return super().propose_weighted(space, records, rng, also_taken, direction)
            stack = _Stack(space, models, target)
            config = maximize_ei(space, [(stack, 1.0)], stack, rng, taken)  # type: ignore[list-item,arg-type]
            return TransferProposal(config, {"target": 1.0})


@dataclass(frozen=True)
class Arm:
    """A strategy for a target: which sources, how many openers, which surrogate and its options."""

    sources: str  # "" (bo itself), "none" (no sources), "loto", "negated", "negated+loto", "toys"
    n_open: int = 3
    surrogate: type[TransferSurrogate] = TransferSurrogate
    options: Mapping[str, Any] = field(default_factory=dict)


RANK = {"rank_target": True}
NO_STARTUP = {"startup": 0, "trust": 0.0}  # before the startup rule
ARMS: dict[str, Arm] = {
    "bo": Arm(""),
    "engine": Arm("none", n_open=0, surrogate=OwnEngine),
    "engine-rank": Arm("none", n_open=0, surrogate=OwnEngine, options=RANK),
    "loto": Arm("loto"),
    "loto-rank": Arm("loto", options=RANK),
    "loto-open0": Arm("loto", n_open=0),
    "loto-open2": Arm("loto", n_open=2),
    "loto-open5": Arm("loto", n_open=5),
    "loto-roundrobin": Arm("loto", surrogate=RoundRobin),
    "loto-openers-only": Arm("loto", surrogate=OpenersOnly),
    "loto-stacked": Arm("loto", surrogate=Stacked, options=RANK),
    "negated": Arm("negated"),
    "negated+loto": Arm("negated+loto"),
    "negated-stacked": Arm("negated", surrogate=Stacked, options=RANK),
    "toys": Arm("toys"),
    "negated-open5": Arm("negated", n_open=5),
    "loto-nostartup": Arm("loto", options=NO_STARTUP),
    "negated-nostartup": Arm("negated", options=NO_STARTUP),
    "negated+loto-open5": Arm("negated+loto", n_open=5),
    "toys-open5": Arm("toys", n_open=5),
}


def sources_for(arm: Arm, task: str, loto: Mapping[str, SourceData], out: Path) -> list[SourceData]:
    family = [t for t in loto if t != task and t.split("-")[0] == task.split("-")[0]]
    chosen: list[SourceData] = []
    for kind in filter(None, arm.sources.split("+")):
        if kind == "none":
            continue
        if kind == "loto":
            chosen += [loto[t] for t in family]
        elif kind == "negated":
            chosen.append(negated_source(task, out))
        elif kind == "toys":
            chosen += [toy_source(toy, build_task(task).space, out) for toy in TOYS]
    return chosen


def strategy_for(arm: Arm, sources: list[SourceData], budget: int) -> Strategy:
    if not arm.sources:
        return BOStrategy()
    if arm.sources == "none":
        return BOStrategy(surrogate=arm.surrogate((), **arm.options))  # type: ignore[arg-type]
    surrogate = arm.surrogate(tuple(sources), **arm.options)
    return BOStrategy(experience=sources, budget=budget, n_open=arm.n_open, transfer=surrogate)


# ---- the run ----------------------------------------------------------------------------------------------


def done_keys(path: Path) -> set[tuple[str, str, int]]:
    if not path.exists():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["arm"], r["task"], r["seed"]) for r in rows}


def run(args: argparse.Namespace) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    tasks = [t for t in args.tasks.split(",") if t] if args.tasks else HPOBENCH
    every = sorted(
        {
            t
            for group in (HPOBENCH + ["hpobench-car"], NB201)
            for t in group
            if t.split("-")[0] in {x.split("-")[0] for x in tasks}
        }
    )
    loto = loto_sources(f"sqlite:///{args.sources}", every)
    done = done_keys(results)
    for arm_name in args.arms.split(","):
        arm = ARMS[arm_name]
        for task in tasks:
            sources = sources_for(arm, task, loto, out)
            for s in range(args.seeds):
                if (arm_name, task, s) in done:
                    continue
                seed = run_seed(task, s)
                strategy = strategy_for(arm, sources, args.budget)
                study = anyio.run(run_study, task, strategy, args.budget, seed)
                true = build_task(task).true_error
                assert true is not None
                row = {
                    "arm": arm_name,
                    "task": task,
                    "seed": s,
                    "values": [r.value for r in study.records],
                    "true": [true(r.config) if r.value is not None else None for r in study.records],
                    "sources": [r.source for r in study.records],
                    "weights": [r.proposal.decision.get("weights") for r in study.records],
                    "propose_s": [r.proposal.seconds for r in study.records],
                    "seconds": round(study.seconds, 2),
                }
                with open(results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                final = metrics.incumbent_scores(row["values"], row["true"])
                print(
                    f"{arm_name:20} {task:28} seed {s}: b10 {final[9]:.4f} b30 {final[-1]:.4f} ({study.seconds:.0f} s)",
                    flush=True,
                )


# ---- the report -------------------------------------------------------------------------------------------


def read_rows(out: Path) -> list[dict[str, Any]]:
    """OUT/results.jsonl, or the committed OUT/results.jsonl.gz."""
    plain = out / "results.jsonl"
    text = plain.read_text() if plain.exists() else gzip.decompress((out / "results.jsonl.gz").read_bytes()).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def finals(rows: Sequence[Mapping[str, Any]], budget: int) -> dict[tuple[str, str, int], float]:
    """(arm, task, seed) -> the true error of the configuration the study picked after ``budget`` trials."""
    out = {}
    for r in rows:
        curve = metrics.incumbent_scores(r["values"], r["true"])
        out[(r["arm"], r["task"], r["seed"])] = float(curve[budget - 1]) if 1 <= budget <= len(curve) else math.nan
    return out


def compare(
    rows: Sequence[Mapping[str, Any]], arm: str, budget: int, versus: str, versus_budget: int, tasks: Sequence[str]
) -> tuple[str, str, str]:
    """W/L/T of ``arm`` at ``budget`` against ``versus`` at ``versus_budget``, paired by (task, seed); the sign
    test's p; the two medians."""
    f, g = finals(rows, budget), finals(rows, versus_budget)
    keys = sorted((t, s) for (a, t, s) in f if a == arm and t in tasks and (versus, t, s) in g)
    x = np.array([f[(arm, t, s)] for t, s in keys])
    y = np.array([g[(versus, t, s)] for t, s in keys])
    if not keys:
        return "-", "-", "-"
    wins, losses, ties = metrics.paired_outcomes(x, y)
    return (
        f"{wins}/{losses}/{ties}",
        f"{metrics.sign_test(wins, losses):.2g}",
        f"{np.median(x):.4f} ({np.median(y):.4f})",
    )


def percentile(task: str, true_error: float) -> float:
    """The share (%) of the table's configurations with a lower true error."""
    family, dataset = task.split("-", 1)
    errors = _sorted_errors(family, dataset)
    return 100.0 * float(np.searchsorted(errors, true_error)) / len(errors)


@functools.cache
def _sorted_errors(family: str, dataset: str) -> np.ndarray:
    return np.sort(np.fromiter(_mean_errors(family, dataset).values(), dtype=np.float64))


def report(args: argparse.Namespace) -> None:
    rows = read_rows(args.out)
    arms = [a for a in dict.fromkeys(r["arm"] for r in rows) if a != args.versus]
    if args.arms:
        arms = [a for a in args.arms.split(",") if a in arms]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    groups = {g: [t for t in tasks if t.startswith(g)] for g in ("hpobench", "nb201")}
    if args.per_task:
        groups = {t: [t] for t in tasks}
    v = args.versus
    print(f"| arm | tasks | budget 10: W/L/T vs {v} | p | median ({v}) | budget 30: W/L/T vs {v} | p | median ({v}) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, group in groups.items():
        for arm in arms:
            n = sum(1 for r in rows if r["arm"] == arm and r["task"] in group)
            if n:
                cells = [*compare(rows, arm, 10, v, 10, group), *compare(rows, arm, 30, v, 30, group)]
                print(f"| {arm} | {name} ({n}) | " + " | ".join(cells) + " |")
    shifted = [a for a in arms if a in ARMS and "negated" in ARMS[a].sources]
    if shifted:
        print(f"\nmisleading sources against {v} with the opening trials taken off its budget (b - n_open):")
        for arm in shifted:
            k = ARMS[arm].n_open
            for name, group in groups.items():
                a, b = compare(rows, arm, 10, v, 10 - k, group), compare(rows, arm, 30, v, 30 - k, group)
                print(f"  {arm} {name}: at 10 vs {v}@{10 - k}: {a[0]} p={a[1]}; at 30 vs {v}@{30 - k}: {b[0]} p={b[1]}")
    print("\nopeners (trials of source 'transfer'): percentile of their true error in the whole table")
    for arm in arms:
        pct = [
            percentile(r["task"], t)
            for r in rows
            if r["arm"] == arm and r["seed"] == 0  # the same openers for every seed of a task
            for t, src in zip(r["true"], r["sources"], strict=True)
            if src == "transfer" and t is not None
        ]
        if pct:
            print(
                f"  {arm}: median {np.median(pct):.1f}, best {min(pct):.1f}, worst {max(pct):.1f} ({len(pct)} openers)"
            )
    print("\nmedian weight of this study's own model (target) at trials 4 / 10 / 20 / 29:")
    for arm in arms:
        ws = [r["weights"] for r in rows if r["arm"] == arm and any(r["weights"])]
        if ws:
            at = [[w[i]["target"] for w in ws if i < len(w) and w[i]] for i in (3, 9, 19, 28)]
            print(f"  {arm}: " + " / ".join(f"{np.median(x):.2f}" if x else "(opener)" for x in at))
    print("\nproposal seconds (surrogate rounds):")
    for arm in [*arms, v]:
        secs = [
            s
            for r in rows
            if r["arm"] == arm
            for s, src in zip(r["propose_s"], r["sources"], strict=True)
            if s is not None and src == "surrogate"
        ]
        if secs:
            print(f"  {arm}: median {np.median(secs):.3f} s, p95 {np.quantile(secs, 0.95):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--arms", default="bo,loto")
    r.add_argument("--tasks", default="")
    r.add_argument("--seeds", type=int, default=10)
    r.add_argument("--budget", type=int, default=30)
    r.add_argument(
        "--sources", type=Path, default=Path("runs/transfer-sources/bench.db"), help="the loto sources' bench"
    )
    r.add_argument("--out", type=Path, default=Path("runs/transfer"))
    p = sub.add_parser("report")
    p.add_argument("--out", type=Path, default=Path("runs/transfer"))
    p.add_argument("--versus", default="bo", help="the arm every other is paired with")
    p.add_argument("--arms", default="", help="only these arms (default: all)")
    p.add_argument("--per-task", action="store_true")
    args = parser.parse_args()
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
