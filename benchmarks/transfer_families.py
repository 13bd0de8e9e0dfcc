"""Learning from earlier studies on every table family the package ships (issue 27): HPOBench (classification
error), HPOLib (regression MSE, heavy-tailed), NAS-Bench-201 (error), each arm against ``bo`` paired by seed.

    python benchmarks/transfer_families.py --out benchmarks/results/transfer-families --seeds 10
    python benchmarks/transfer_families.py --out runs/tf --seeds 3 --families hpolib --arms bo,negated

Every study is ``bo`` (:class:`~agent.strategies.bo.BOStrategy`, the same class ``--learn-from`` builds, with
its default warp) driven in this process for 30 trials on one table, its noise drawn with the bench's seed
``agent.bench.run_seed(task, s)`` (no model, no storage: the optimizer is what is compared). Arms:

- ``bo``: no sources (the reference every arm is paired with);
- ``loto``: one 30-trial ``bo`` study of each OTHER table of the family (leave one task out, same space);
- ``negated``: a decoy, a 30-trial ``bo`` study of the target's own table negated (its best are the table's
  worst);
- ``reflected``: a decoy that is not the exact mirror, a neighbouring table's study negated (its best sit in
  the target's bad region where the tables agree);
- ``unrelated``: 30-trial ``bo`` studies of the 2D toy functions, x1 and x2 laid linearly onto the choice
  indices of two of the target's parameters (a mapping a model should not have made);
- ``*-none`` (``bo-none``, ``negated-none``): the same with the study's own values unwarped (before issue 27).

Sources are made once per family (seed 1000) and cached in OUT/sources.json. Scores are TRUE errors (the
table's mean over its seeds of the incumbent's configuration) at budgets 7, 10 and 30; each arm against ``bo``
(``*-none`` arms against ``bo-none``) by seed, exact sign test; misleading arms at 10 also against ``bo`` at 7
(the promise: a misleading source costs at most its 3 openers). OUT/studies.jsonl holds every study (resumable),
OUT/results.md the table.
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

import anyio  # noqa: E402
import optuna  # noqa: E402
from _families import BUDGETS, FAMILIES, HORIZON, LABELS, paired_cells  # noqa: E402

from agent import metrics  # noqa: E402
from agent.bench import run_seed  # noqa: E402
from agent.records import ProposalInfo, SourceData, Transform, TrialRecord  # noqa: E402
from agent.space import CategoricalParam, Choice  # noqa: E402
from agent.strategies.base import ProposeContext  # noqa: E402
from agent.strategies.bo import BOStrategy  # noqa: E402
from agent.strategies.surrogate import SurrogateModel  # noqa: E402
from agent.strategies.warp import DEFAULT  # noqa: E402
from agent.tasks import build_task  # noqa: E402
from evaluators.tabular import TABULAR_DATASETS, TabularBenchmark  # noqa: E402
from evaluators.toy import evaluate_toy  # noqa: E402

ALL = {**FAMILIES, "hpobench": list(TABULAR_DATASETS["hpobench"])}  # car is a source, not a target
ARMS = ("bo", "loto", "negated", "reflected", "unrelated", "bo-none", "negated-none")
TOYS = ("branin", "himmelblau", "ackley", "rosenbrock")
#: The parameters a toy's x1 and x2 are laid onto, per family.
TOY_MAP = {"hpobench": ("learning_rate_init", "width"), "hpolib": ("init_lr", "n_units_1"), "nb201": ("Op0", "Op1")}
MISLEADING = ("negated", "reflected", "negated-none")
SOURCE_SEED = 1000


async def drive(
    family: str, dataset: str, seed: int, sources: Sequence[SourceData], transform: Transform | None, sign: float = 1.0
) -> list[TrialRecord]:
    """``HORIZON`` trials of ``bo`` (learning from ``sources``) on the table, its values times ``sign``."""
    name = f"{family}-{dataset}"
    space = build_task(name).space
    table = TabularBenchmark(family, dataset, seed=run_seed(name, seed))
    rng = random.Random(run_seed(name, seed))
    strategy = BOStrategy(SurrogateModel(transform=transform), experience=tuple(sources), budget=HORIZON)
    records: list[TrialRecord] = []
    for number in range(HORIZON):
        proposal = await strategy.propose(ProposeContext(space, records, rng))
        assert proposal.config is not None
        value = sign * float(table.evaluate(proposal.config).value or 0.0)
        info = ProposalInfo(source=proposal.source)
        records.append(TrialRecord(number=number, config=proposal.config, state="complete", value=value, proposal=info))
    return records


def sources(out: Path, family: str) -> dict[str, SourceData]:
    """Each table's 30-trial ``bo`` study (``name``) and its negated study (``-name``: best = the table's worst)."""
    path = out / "sources.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    for dataset in ALL[family]:
        for sign in (1.0, -1.0):
            key = f"{'-' if sign < 0 else ''}{family}-{dataset}"
            if key not in cached:
                records = anyio.run(drive, family, dataset, SOURCE_SEED, (), DEFAULT, sign)
                cached[key] = {"configs": [r.config for r in records], "values": [r.value for r in records]}
                path.write_text(json.dumps(cached))
    return {
        k: SourceData(k, tuple(v["configs"]), tuple(v["values"]))
        for k, v in cached.items()
        if k.lstrip("-").startswith(f"{family}-")
    }


def toy_sources(out: Path, family: str) -> list[SourceData]:
    """Each toy's 30-trial ``bo`` study, (x1, x2) laid onto the choice indices of two of the family's parameters
    (:data:`TOY_MAP`)."""
    path = out / "toys.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    for toy in TOYS:
        if toy not in cached:
            space = build_task(f"toy-{toy}").space
            rng, model = random.Random(SOURCE_SEED), SurrogateModel()
            records: list[TrialRecord] = []
            for number in range(HORIZON):
                config = model.propose(space, records, rng)
                value = evaluate_toy(toy, {k: float(v) for k, v in config.items()}).value
                records.append(TrialRecord(number=number, config=config, state="complete", value=value))
            cached[toy] = {"configs": [r.config for r in records], "values": [r.value for r in records]}
            path.write_text(json.dumps(cached))
    target = build_task(f"{family}-{FAMILIES[family][0]}").space
    names = TOY_MAP[family]
    out_sources = []
    for toy in TOYS:
        bounds = build_task(f"toy-{toy}").space.params
        configs = []
        for c in cached[toy]["configs"]:
            mapped: dict[str, Choice] = {}
            for x, name in zip(("x1", "x2"), names, strict=True):
                p, grid = bounds[x], target.params[name]
                assert isinstance(grid, CategoricalParam) and not isinstance(p, CategoricalParam)
                t = (float(c[x]) - p.low) / (p.high - p.low)
                mapped[name] = grid.choices[round(t * (len(grid.choices) - 1))]
            configs.append(mapped)
        out_sources.append(SourceData(f"toy-{toy}", tuple(configs), tuple(cached[toy]["values"])))
    return out_sources


def arm_sources(arm: str, family: str, dataset: str, made: dict[str, SourceData]) -> list[SourceData]:
    datasets = ALL[family]
    if arm == "unrelated":
        return [v for k, v in made.items() if k.startswith("toy-")]
    if arm == "loto":
        return [made[f"{family}-{d}"] for d in datasets if d != dataset]
    if arm in ("negated", "negated-none"):
        return [made[f"-{family}-{dataset}"]]
    if arm == "reflected":
        targets = FAMILIES[family]
        neighbour = targets[(targets.index(dataset) + 1) % len(targets)]
        return [made[f"-{family}-{neighbour}"]]
    return []


def run(out: Path, families: Sequence[str], arms: Sequence[str], seeds: int) -> None:
    path = out / "studies.jsonl"
    done = {(r["family"], r["dataset"], r["seed"], r["arm"]) for r in _rows(path)}
    began = time.perf_counter()
    for family in families:
        made = sources(out, family)
        if "unrelated" in arms:
            made |= {s.name: s for s in toy_sources(out, family)}
        for seed in range(seeds):
            for dataset in FAMILIES[family]:
                for arm in arms:
                    if (family, dataset, seed, arm) in done:
                        continue
                    transform: Transform | None = "none" if arm.endswith("-none") else DEFAULT
                    src = arm_sources(arm, family, dataset, made)
                    records = anyio.run(drive, family, dataset, seed, src, transform)
                    table = TabularBenchmark(family, dataset)
                    true = [table.true_error(r.config) for r in records]
                    errors = list(metrics.incumbent_scores([r.value for r in records], true))
                    row = {"family": family, "dataset": dataset, "seed": seed, "arm": arm, "true": errors}
                    with path.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(
                        f"{family}-{dataset} seed {seed} {arm}: {errors[-1]:.4g} ({time.perf_counter() - began:.0f} s)"
                    )


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def results(out: Path, seeds: int) -> list[str]:
    runs = {(r["family"], r["dataset"], r["seed"], r["arm"]): r["true"] for r in _rows(out / "studies.jsonl")}
    lines = [
        "# Learning from earlier studies on every family: each arm against `bo` (the same warp), paired by seed",
        "",
        "True error of the incumbent; better/worse/tied and the exact two-sided sign test (ties dropped); median",
        "over tables x seeds. `vs bo@7`: the arm at budget 10 against `bo` at budget 7 (a misleading source may",
        "cost its 3 openers and no more).",
        "",
        "| arm | family | budget | reference | better/worse/tied | p | median (arm) | median (reference) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        if arm in ("bo", "bo-none"):
            continue
        reference = "bo-none" if arm.endswith("-none") else "bo"
        for family in FAMILIES:
            checks = [(b, b, reference) for b in BUDGETS]
            if arm in MISLEADING:
                checks.insert(1, (10, 7, f"{reference}@7"))
            for budget, ref_budget, label in checks:
                cells = paired_cells(runs, family, seeds, arm, reference, budget, ref_budget)
                if cells is not None:
                    lines.append(f"| {arm} | {LABELS[family]} | {budget} | {label} | {cells} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer-families"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--arms", default=",".join(ARMS))
    args = parser.parse_args()
    families = [f for f in args.families.split(",") if f]
    arms = [a for a in args.arms.split(",") if a]
    bad = sorted(set(families) - set(FAMILIES)) + sorted(set(arms) - set(ARMS))
    if bad:
        parser.error(f"unknown {bad}; families: {', '.join(FAMILIES)}; arms: {', '.join(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(args.out, families, arms, args.seeds)
    text = "\n".join(results(args.out, args.seeds)) + "\n"
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
