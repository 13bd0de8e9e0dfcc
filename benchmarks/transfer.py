"""Learning from earlier studies, measured: the leave-one-task-out protocol of issue 20, against ``bo`` alone.

    python benchmarks/transfer.py --out runs/transfer                      # every arm, 10 seeds (hours)
    python benchmarks/transfer.py --out runs/transfer --arms loto --seeds 3 # a quick look

Sources (made once, each a 30-trial ``bo`` study in a folder of its own, so a target names exactly the ones it
learns from): every HPOBench table, every NAS-Bench-201 set, the 2D toy functions, and each HPOBench table
negated (its best configurations are the table's worst). Arms, each a study per target and seed, budget 30:

- ``bo``: the optimizer alone, no sources (the reference every arm is paired with, seed by seed);
- ``loto``: the default strategy (``llm-bo``) learning from one study of each OTHER task of the same space
  (the 7 other HPOBench tables; the 2 other NAS-Bench-201 sets); the spaces are identical, so no model call;
- ``loto-bo``: the same with ``bo`` (no model at all);
- ``renamed``: the default strategy on a task serving the same table under other parameter names and order
  (:func:`agent.tasks.variants.renamed`), the sources in the original names: only the model can map them;
- ``unrelated``: the default strategy on an HPOBench table learning from the toy functions' studies: the model
  should judge them irrelevant, and the data overrule it where it does not;
- ``misleading``: the default strategy learning from the same table negated alone;
- ``hybrid``: ``hybrid`` without sources (the model in every round), which must not fall behind ``bo`` at 30.

Each target's study uses the seed ``agent.bench.run_seed(task, s)`` of the ``bo`` study it is paired with (the
renamed task the original's), so the tables' noise is drawn alike. Scores are TRUE errors (the table's mean
over its seeds of the configuration a study picked) at budgets 10 and 30; pairs are compared with an exact
sign test. Studies live in ``OUT/transfer.db`` (resumable: finished studies are skipped); ``OUT/results.md``
has the tables and the model's decisions (how each source entered; for ``renamed``, how many parameters it
mapped right), ``OUT/true_errors.json.gz`` the numbers they are made of. A request the model was sent before
(a mapping question is the same for every seed of a target: the same prompt at temperature 0) is answered
from memory within a run (:class:`Remembered`). Uses whatever provider AGENT_PROVIDER names (the embedded
model by default).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import anyio  # noqa: E402
import optuna  # noqa: E402

from agent import metrics  # noqa: E402
from agent.bench import run_seed  # noqa: E402
from agent.providers.base import ChatMessage, Completion, Provider  # noqa: E402
from agent.session import ModelSettings, StudyConfig, open_model, run_study  # noqa: E402
from agent.study import opened_storage, read_records, stored_meta  # noqa: E402
from agent.tasks import Task, build_task  # noqa: E402
from agent.tasks.variants import HPOBENCH_RENAMED, negated, renamed  # noqa: E402

HPOBENCH = [
    "hpobench-australian",
    "hpobench-blood_transfusion",
    "hpobench-car",
    "hpobench-credit_g",
    "hpobench-kc1",
    "hpobench-phoneme",
    "hpobench-segment",
    "hpobench-vehicle",
]
TARGETS = [t for t in HPOBENCH if t != "hpobench-car"]  # car: every strategy finds its optimum at once
NB201 = ["nb201-cifar10", "nb201-cifar100", "nb201-imagenet"]
TOYS = ["toy-branin", "toy-rosenbrock", "toy-himmelblau", "toy-ackley"]
ARMS = ("bo", "loto", "loto-bo", "renamed", "unrelated", "misleading", "hybrid")
BUDGETS = (10, 30)
HORIZON = 30
SOURCE_SEED = 1000  # the sources' own seed, apart from the targets' 0..9


@dataclass(frozen=True)
class Study:
    arm: str
    target: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.target}/{self.arm}/seed{self.seed}"


def source_folder(out: Path, task: str) -> Path:
    return out / "sources" / task


def _task(name: str, seed: int) -> Task:
    if name.endswith("-negated"):
        return negated(build_task(name.removesuffix("-negated"), seed=seed))
    if name.endswith("-renamed"):
        return renamed(build_task(name.removesuffix("-renamed"), seed=seed), HPOBENCH_RENAMED)
    return build_task(name, seed=seed)


async def make_sources(out: Path) -> None:
    """One 30-trial ``bo`` study of each source task, in a folder of its own (skipped when done)."""
    for name in [*HPOBENCH, *NB201, *TOYS, *(f"{t}-negated" for t in TARGETS)]:
        folder = source_folder(out, name)
        if _finished(f"sqlite:///{folder / 'study.db'}", None) >= HORIZON:
            continue
        task = _task(name, SOURCE_SEED)
        config = StudyConfig(task=task, strategy="bo", budget=HORIZON, seed=SOURCE_SEED, save_dir=folder, checks=False)
        await run_study(config, say=_silent)


def _silent(line: str) -> None:
    return None


def plan(arms: Sequence[str], seeds: int) -> list[tuple[Study, str, str, list[str]]]:
    """(study, its task, strategy, sources) for every arm asked for."""
    out: list[tuple[Study, str, str, list[str]]] = []
    for s in range(seeds):
        for arm in arms:
            groups = (
                [(TARGETS, HPOBENCH), (NB201, NB201)] if arm in ("bo", "loto", "loto-bo") else [(TARGETS, HPOBENCH)]
            )
            for targets, family in groups:
                for target in targets:
                    others = [t for t in family if t != target]
                    if arm == "bo":
                        out.append((Study(arm, target, s), target, "bo", []))
                    elif arm in ("loto", "loto-bo"):
                        out.append((Study(arm, target, s), target, "llm-bo" if arm == "loto" else "bo", others))
                    elif arm == "renamed":
                        out.append((Study(arm, target, s), f"{target}-renamed", "llm-bo", others))
                    elif arm == "unrelated":
                        out.append((Study(arm, target, s), target, "llm-bo", TOYS))
                    elif arm == "misleading":
                        out.append((Study(arm, target, s), target, "llm-bo", [f"{target}-negated"]))
                    elif arm == "hybrid":
                        out.append((Study(arm, target, s), target, "hybrid", []))
    return out


def _finished(url: str, name: str | None) -> int:
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        return 0
    with opened_storage(url) as storage:
        names = [s.study_name for s in storage.get_all_studies()]
        name = name or (names[0] if names else None)
        if name not in names:
            return 0
        return sum(t.state.is_finished() for t in storage.get_all_trials(storage.get_study_id_from_name(name)))


async def run_arms(out: Path, arms: Sequence[str], seeds: int, provider: Provider) -> None:
    url = f"sqlite:///{(out / 'transfer.db').resolve()}"
    todo = [item for item in plan(arms, seeds) if _finished(url, item[0].name) < HORIZON]
    started = time.perf_counter()
    for i, (study, task_name, strategy, sources) in enumerate(todo, 1):
        target_seed = run_seed(study.target, study.seed)
        config = StudyConfig(
            task=_task(task_name, target_seed),
            strategy=strategy,
            budget=HORIZON,
            seed=target_seed,
            save_dir=out / "studies" / study.arm / study.target / f"seed{study.seed}",
            study_name=study.name,
            storage=url,
            learn_from=tuple(str(source_folder(out, s)) for s in sources),
            checks=False,
        )
        began = time.perf_counter()
        summary = await run_study(config, provider=provider, say=_silent)
        print(
            f"[{i}/{len(todo)}] {study.name}: best {summary.best.value if summary.best else None}, "
            f"{time.perf_counter() - began:.0f} s (all: {time.perf_counter() - started:.0f} s)",
            flush=True,
        )


class Remembered(Provider):
    """The model's answer to a request it was sent before, given again without asking: a mapping question is the
    same for every seed of a target (the same prompt, temperature 0, the same seed for a reask's sampling), so
    the model would answer it the same way; asking 10 times would cost hours and change nothing."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self._answers: dict[str, Completion] = {}

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.7,
        max_tokens: int = 256,
        seed: int | None = None,
    ) -> Completion:
        key = json.dumps([[m.role, m.content] for m in messages] + [json_schema, temperature, max_tokens, seed])
        if key not in self._answers:
            self._answers[key] = await self.inner.complete(
                messages, json_schema=json_schema, temperature=temperature, max_tokens=max_tokens, seed=seed
            )
        return self._answers[key]

    async def probe(self) -> None:
        await self.inner.probe()


@functools.cache
def true_errors(out: Path, study: Study) -> list[float] | None:
    """The true error of the study's incumbent after each trial; None when it has not run."""
    url = f"sqlite:///{(out / 'transfer.db').resolve()}"
    with opened_storage(url) as storage:
        try:
            trials = storage.get_all_trials(storage.get_study_id_from_name(study.name))
        except KeyError:
            return None
    done = [r for r in read_records(trials) if r.finished]
    if len(done) < HORIZON:
        return None
    table = build_task(study.target)
    assert table.true_error is not None
    names = {new: old for old, new in HPOBENCH_RENAMED.items()} if study.arm == "renamed" else {}
    values = [r.value for r in done]
    scores = [
        None if r.value is None else table.true_error({names.get(k, k): v for k, v in r.config.items()}) for r in done
    ]
    return list(metrics.incumbent_scores(values, scores))


def results(out: Path, arms: Sequence[str], seeds: int) -> list[str]:
    lines = [
        "# Learning from earlier studies: each arm against `bo` alone",
        "",
        "True error (the table's mean over its seeds of the configuration a study picked), paired by seed with",
        "`bo`'s study of the same target; better/worse/tied and the exact two-sided sign test (ties dropped);",
        "median over targets x seeds of the true error.",
        "",
        "| arm | targets | budget | better/worse/tied | p | median true error (arm) | median (bo) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        if arm == "bo":
            continue
        groups = (
            {"HPOBench (7)": TARGETS, "NB201 (3)": NB201} if arm in ("loto", "loto-bo") else {"HPOBench (7)": TARGETS}
        )
        for label, targets in groups.items():
            for budget in BUDGETS:
                x, y = [], []
                for target in targets:
                    for s in range(seeds):
                        a, b = true_errors(out, Study(arm, target, s)), true_errors(out, Study("bo", target, s))
                        if a is not None and b is not None:
                            x.append(a[budget - 1])
                            y.append(b[budget - 1])
                if not x:
                    continue
                lines.append(f"| {arm} | {label} | {budget} | {metrics.paired_cells(x, y, fmt='.4f')} |")
    return lines


def decisions(out: Path, arms: Sequence[str]) -> list[str]:
    """What the model decided about each source, from the stored decisions of the seed-0 studies (every seed
    of a target asks the same question): how each source entered and, for ``renamed``, how many of the new
    parameters it mapped to the right earlier one (the truth is :data:`HPOBENCH_RENAMED`)."""
    truth = {new: old for old, new in HPOBENCH_RENAMED.items()}
    lines = ["", "## The model's decisions (seed 0 of each target; every seed asks the same)", ""]
    url = f"sqlite:///{(out / 'transfer.db').resolve()}"
    with opened_storage(url) as storage:
        for arm in [a for a in arms if a in ("renamed", "unrelated")]:
            hows: dict[str, int] = {}
            right = wrong = unmapped = 0
            for target in TARGETS:
                try:
                    meta = stored_meta(storage, Study(arm, target, 0).name)
                except KeyError:
                    continue
                for d in meta.get("experience") or []:
                    hows[d["how"]] = hows.get(d["how"], 0) + 1
                    if arm == "renamed" and d.get("mapping") and d["how"] == "mapped":
                        for new, old in d["mapping"]["params"].items():
                            scaled = float(d["mapping"]["scale"].get(new, 1.0)) != 1.0
                            if old is None:
                                unmapped += 1
                            elif old == truth.get(new) and not scaled:
                                right += 1
                            else:
                                wrong += 1
            if hows:
                counts = ", ".join(f"{n} {how}" for how, n in sorted(hows.items(), key=lambda x: -x[1]))
                lines.append(f"- {arm}: {sum(hows.values())} sources: {counts}")
                if right + wrong + unmapped:
                    lines.append(
                        f"  - parameters of the mapped sources: {right} mapped right, {unmapped} left unmapped, "
                        f"{wrong} mapped wrong (of {right + wrong + unmapped})"
                    )
    return lines if len(lines) > 3 else []


def export(out: Path, arms: Sequence[str], seeds: int) -> Path:
    """Every study's incumbent true error after each trial, ``OUT/true_errors.json.gz`` (the numbers the tables
    are made of, small enough to keep beside them)."""
    runs = {study.name: true_errors(out, study) for study, *_ in plan(["bo", *arms], seeds)}
    studies = {name: errors for name, errors in runs.items() if errors is not None}
    path = out / "true_errors.json.gz"
    path.write_bytes(gzip.compress(json.dumps(studies, sort_keys=True).encode(), mtime=0))
    return path


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--provider", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    await make_sources(args.out)
    async with open_model(ModelSettings(provider=args.provider, model=args.model)) as provider:
        await run_arms(args.out, arms, args.seeds, Remembered(provider))  # only the arms asked for: runs may share OUT
    # The tables cover every arm with studies in OUT, not only this run's (an arm without any has no rows).
    text = "\n".join(results(args.out, ARMS, args.seeds) + decisions(args.out, ARMS)) + "\n"
    (args.out / "results.md").write_text(text)
    export(args.out, ARMS[1:], args.seeds)
    print(text)


if __name__ == "__main__":
    anyio.run(main)
