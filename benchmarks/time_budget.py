"""The default strategy under a time budget on HPOBench (or HPOLib, NAS-Bench-201), against ``bo`` at 30 trials
(issue 28).

    python benchmarks/time_budget.py                                   # every HPOBench table, seeds 0..9
    python benchmarks/time_budget.py --tables kc1,vehicle --seeds 0-4  # a part; re-run to add more
    python benchmarks/time_budget.py --strategy bo --results benchmarks/results/time-budget/control   # the control
    python benchmarks/time_budget.py --strategy llm-bo-ei --results R2 --versus R1  # plain EI, paired with R1's arm
    python benchmarks/time_budget.py --family nb201 --results R                       # another family's tables

The HPOBench tables (``hpobench-<dataset>``) return each evaluation's recorded ``train_time`` as its cost
(``EvalResult.cost_s``), and a study's clock (:class:`~agent.deadline.StudyClock`) counts those seconds in place
of the lookup's, while the proposals' real time still counts. Per table and seed:

1. ``bo`` runs 30 trials, no time budget. C = the recorded seconds its 30 trials cost (the study's compute).
2. The default (``llm-bo``) runs with ``--time-budget C`` and a trial budget large enough (500) that time alone
   ends it.

Both are scored by the TRUE error (the table's mean over its seeds) of the incumbent, the best trial by the
value the study saw, at the end. Pairs by (table, seed): better/worse/tied, exact two-sided sign test (ties
dropped); the median number of trials the default ran within C, and the median share of C its proposals
(the model's call, the GP's fits) took of the clock.

``--strategy llm-bo-ei`` runs the default choosing by expected improvement alone, blind to what configurations
cost (``BOStrategy(cost_aware=False)``: how the default chose before it weighed cost,
:mod:`agent.strategies.cost`). ``--versus R`` adds the arm against the arm of another results folder ``R``, pair
by pair (same references, same C).

The control (``--strategy bo``): ``bo`` itself with other random draws (``bo-redrawn``, its study seed moved by
one, the table's noise alike) in the arm's place. C is what the reference's own trials happened to cost, so a
run that is not the reference runs out of C on some seeds (fewer than 30 trials) and has more than it needs on
others: the control says what that alone does to the comparison.

Studies live in ``OUT/studies.db`` (resumable: a finished study is not run again, a stopped one goes on);
each finished pair is added to ``RESULTS/pairs.json`` (kept across runs, so seeds may be added later) and
``RESULTS/results.md`` is written from every pair there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
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
from agent.strategies.registry import DEFAULT_STRATEGY, get_strategy  # noqa: E402
from agent.study import opened_storage, stored_records  # noqa: E402
from agent.tasks import TASK_GROUPS, Task, build_task  # noqa: E402

REFERENCE = "bo"
TRIALS = 30  # the reference's trials; their recorded seconds are the default's time budget
MAX_TRIALS = 500  # the default's trial budget: large, so that time alone ends it
FAMILIES = ("hpobench", "hpolib", "nb201")  # the families whose tables record ``train_time``
#: The arm ``--strategy bo`` runs: ``bo`` with other random draws under the time budget its reference set.
CONTROL = "bo-redrawn"


#: The default choosing by expected improvement alone under a time budget: how it chose before it weighed cost.
PLAIN = default_with("llm-bo-ei", cost_aware=False)


def tables_of(family: str) -> list[str]:
    return sorted(n.removeprefix(f"{family}-") for n in TASK_GROUPS[family])


def hpobench_tables() -> list[str]:
    return tables_of("hpobench")


@dataclass(frozen=True)
class Pair:
    """One (table, seed): the reference's and the default's studies, as the results table reads them."""

    table: str
    seed: int
    strategy: str  # the time-budgeted arm (the default, unless a test swaps it)
    budget_s: float  # C: the recorded seconds of the reference's trials
    reference_true_error: float
    true_error: float
    #: The arm's score without its last trial where that one ran past C: the study as it stood within C.
    true_error_within: float
    #: The arm's score after its first ``trials`` trials (as many as the reference ran), time aside: what the
    #: strategy does at equal trials, to tell it from what the time budget does.
    true_error_at_trials: float
    trials: int  # the time-budgeted arm's finished trials
    compute_s: float  # their recorded seconds
    time_used_s: float  # its clock at the end: recorded seconds plus the real time of everything else
    proposal_s: float  # the real seconds its proposals took (the model's call, the GP's fits)
    stopped_by_time: bool  # its clock ran out before its trial budget
    family: str = "hpobench"

    @property
    def key(self) -> str:
        return f"{self.table}/seed{self.seed}"

    @property
    def task(self) -> str:
        return f"{self.family}-{self.table}"

    @property
    def proposal_share(self) -> float:
        return self.proposal_s / self.budget_s


def _silent(line: str) -> None:
    return None


def study_name(table: str, strategy: str, seed: int, family: str = "hpobench") -> str:
    return f"{family}-{table}/{strategy}/seed{seed}"


def _counted(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    return [r for r in records if r.finished and not r.probe]


def incumbent_true_error(task: Task, records: Sequence[TrialRecord]) -> float:
    """The true error of the best trial by observed value (the scorer of ``agent.bench``: the table's mean);
    ``inf`` without one (an arm whose only trial ran past C has nothing within it)."""
    values = [r.value if r.state == "complete" else None for r in records]
    assert task.true_error is not None, f"{task.name} has no true error"
    scores = [task.true_error(r.config) if r.state == "complete" else None for r in records]
    after_each = metrics.incumbent_scores(values, scores)
    return float(after_each[-1]) if len(after_each) else math.inf


async def run_pair(
    out: Path,
    table: str,
    seed: int,
    *,
    strategy: str = DEFAULT_STRATEGY,
    trials: int = TRIALS,
    max_trials: int = MAX_TRIALS,
    provider: Provider | None = None,
    family: str = "hpobench",
) -> Pair:
    """Run (or resume) the reference and the time-budgeted study of one table and seed; the pair they make."""
    url = f"sqlite:///{(out / 'studies.db').resolve()}"
    task_name = f"{family}-{table}"
    s = run_seed(task_name, seed)

    # The reference itself as the arm is the protocol's control: `bo` with other random draws (its study seed
    # moved by one, the table's noise alike), so the comparison shows what C, fixed by the reference's own
    # trials, does to any other run.
    arm = strategy if strategy != REFERENCE else CONTROL

    def config(name: str, budget: int, time_budget_s: float | None) -> StudyConfig:
        return StudyConfig(
            task=build_task(task_name, seed=s),
            strategy=REFERENCE if name == CONTROL else PLAIN if name == PLAIN.name else name,
            budget=budget,
            seed=s + 1 if name == CONTROL else s,
            save_dir=out / "studies" / table / name / f"seed{seed}",
            study_name=study_name(table, name, seed, family),
            storage=url,
            time_budget_s=time_budget_s,
            checks=False,
        )

    await run_study(config(REFERENCE, trials, None), say=_silent)
    with opened_storage(url) as storage:
        reference = _counted(stored_records(storage, study_name(table, REFERENCE, seed, family)))[:trials]
    budget_s = sum(r.compute_s or 0.0 for r in reference)
    summary = await run_study(config(arm, max_trials, budget_s), provider=provider, say=_silent)
    with opened_storage(url) as storage:
        records = _counted(stored_records(storage, study_name(table, arm, seed, family)))
    task = build_task(task_name, seed=s)
    return Pair(
        table=table,
        seed=seed,
        strategy=arm,
        budget_s=budget_s,
        reference_true_error=incumbent_true_error(task, reference),
        true_error=incumbent_true_error(task, records),
        true_error_within=incumbent_true_error(task, records[:-1] if summary.time_used_s > budget_s else records),
        true_error_at_trials=incumbent_true_error(task, records[:trials]),
        trials=len(records),
        compute_s=sum(r.compute_s or 0.0 for r in records),
        time_used_s=summary.time_used_s,
        proposal_s=sum(r.proposal.seconds or 0.0 for r in records),
        stopped_by_time=len(records) < max_trials and summary.time_used_s >= budget_s,
        family=family,
    )


# ---- what the pairs say -------------------------------------------------------------------------------


def load_pairs(path: Path) -> dict[str, Pair]:
    if not path.is_file():
        return {}
    return {key: Pair(**row) for key, row in json.loads(path.read_text()).items()}


def save_pairs(path: Path, pairs: Mapping[str, Pair]) -> None:
    rows = {key: asdict(pairs[key]) for key in sorted(pairs)}
    path.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")


def _outcomes(x: Sequence[float], y: Sequence[float]) -> str:
    better, worse, tied = metrics.paired_outcomes(x, y)
    return f"{better}/{worse}/{tied} | {metrics.sign_test(better, worse):.2g}"


def _row(label: str, pairs: Sequence[Pair]) -> str:
    x = [p.true_error for p in pairs]
    y = [p.reference_true_error for p in pairs]
    within = _outcomes([p.true_error_within for p in pairs], y)
    at_trials = _outcomes([p.true_error_at_trials for p in pairs], y)
    trials = np.median([p.trials for p in pairs])
    share = np.median([p.proposal_share for p in pairs])
    used = np.median([p.time_used_s / p.budget_s for p in pairs])
    by_time = sum(p.stopped_by_time for p in pairs)
    return (
        f"| {label} | {len(pairs)} | {_outcomes(x, y)} | {within} | {at_trials} | {np.median(x):.4f} | "
        f"{np.median(y):.4f} | {trials:g} | {share:.2%} | {used:.2f} | {by_time}/{len(pairs)} |"
    )


def versus(pairs: Sequence[Pair], others: Sequence[Pair]) -> list[str]:
    """The arm of ``pairs`` against the arm of ``others`` (another results folder), pair by pair where both ran."""
    theirs = {(p.family, p.key): p for p in others}
    both = [(p, theirs[(p.family, p.key)]) for p in pairs if (p.family, p.key) in theirs]
    if not both:
        return []
    mine, other = both[0][0].strategy, both[0][1].strategy
    final = _outcomes([a.true_error for a, _ in both], [b.true_error for _, b in both])
    within = _outcomes([a.true_error_within for a, _ in both], [b.true_error_within for _, b in both])
    at_trials = _outcomes([a.true_error_at_trials for a, _ in both], [b.true_error_at_trials for _, b in both])
    return [
        "",
        f"`{mine}` against `{other}` (the other results folder's arm), pair by pair, same references and C:",
        "",
        "| pairs | better/worse/tied | p | within C: b/w/t | p | at 30 trials: b/w/t | p | "
        f"median trials ({mine}) | median trials ({other}) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {len(both)} | {final} | {within} | {at_trials} | {np.median([a.trials for a, _ in both]):g} | "
        f"{np.median([b.trials for _, b in both]):g} |",
    ]


def results(pairs: Sequence[Pair], others: Sequence[Pair] = ()) -> list[str]:
    strategies = sorted({p.strategy for p in pairs})
    seeds = sorted({p.seed for p in pairs})
    families = sorted({p.family for p in pairs}) or ["hpobench"]
    lines = [
        f"# A time budget on {', '.join(families)}: the default against `bo` at 30 trials",
        "",
        f"Per {', '.join(families)} table and seed: `{REFERENCE}` runs {TRIALS} trials; C = the recorded",
        f"`train_time` seconds they cost. `{', '.join(strategies)}` then runs with `--time-budget C` (recorded",
        f"seconds count on its clock, its proposals' real time too) and a budget of {MAX_TRIALS} trials. Score: the",
        "true error (the table's mean over its seeds) of each study's incumbent at the end. Better/worse/tied: the",
        "time-budgeted arm against the reference, pair by pair (lower wins); p: exact two-sided sign test, ties",
        "dropped. Within C: the same with the arm's last trial left out where its recorded seconds ran past C. At",
        "30 trials: the arm's first 30 trials (all, where it ran fewer), time aside: the strategy against `bo` at",
        "equal trials. Trials: median trials the arm ran within C; proposal share: median of its proposals' real",
        "seconds over C; used: median clock at the end over C (over 1: the last trial started before C and its",
        "recorded seconds ran past it).",
        f"Seeds: {', '.join(map(str, seeds))}.",
        "",
        "| table | pairs | better/worse/tied | p | within C: b/w/t | p | at 30 trials: b/w/t | p | "
        "median true error (arm) | median true error (bo@30) | trials | proposal share | used | stopped by time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task in sorted({p.task for p in pairs}):
        lines.append(_row(task, [p for p in pairs if p.task == task]))
    if pairs:
        lines.append(_row("**all**", list(pairs)))
    return lines + versus(pairs, others)


def _seeds(text: str) -> list[int]:
    """``0-4`` or ``0,2,5``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/time-budget"), help="where the studies live")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/time-budget"))
    parser.add_argument("--family", default="hpobench", choices=FAMILIES, help="whose tables (default: HPOBench)")
    parser.add_argument("--tables", default="", help="comma-separated (default: every table of the family)")
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-4 or 0,3")
    parser.add_argument(
        "--strategy",
        default=DEFAULT_STRATEGY,
        help=f"the time-budgeted arm (a test's: random); {REFERENCE}: the control, {CONTROL} (other random draws); "
        f"{PLAIN.name}: the default blind to cost",
    )
    parser.add_argument("--versus", type=Path, default=None, help="another results folder: its arm, pair by pair")
    parser.add_argument("--trials", type=int, default=TRIALS, help="the reference's trials")
    parser.add_argument("--max-trials", type=int, default=MAX_TRIALS)
    parser.add_argument("--provider", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    known = tables_of(args.family)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()] or known
    if unknown := sorted(set(tables) - set(known)):
        parser.error(f"unknown tables {unknown}; choose from {', '.join(known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "pairs.json"
    pairs = load_pairs(path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    needs_model = (PLAIN if args.strategy == PLAIN.name else get_strategy(args.strategy)).needs_model
    async with open_model(ModelSettings(provider=args.provider, model=args.model)) as provider:
        for seed in _seeds(args.seeds):  # seed-major: an interrupted run leaves whole seeds over all tables
            for table in tables:
                if f"{table}/seed{seed}" in pairs:
                    continue
                began = time.perf_counter()
                pair = await run_pair(
                    args.out,
                    table,
                    seed,
                    strategy=args.strategy,
                    trials=args.trials,
                    max_trials=args.max_trials,
                    provider=provider if needs_model else None,
                    family=args.family,
                )
                pairs[pair.key] = pair
                save_pairs(path, pairs)
                print(
                    f"{pair.key}: C {pair.budget_s:.0f} s; {pair.strategy} {pair.trials} trials, true error "
                    f"{pair.true_error:.4f} vs bo@{args.trials} {pair.reference_true_error:.4f}; proposals "
                    f"{pair.proposal_s:.1f} s ({pair.proposal_share:.1%} of C); {time.perf_counter() - began:.0f} s",
                    flush=True,
                )
    others = list(load_pairs(args.versus / "pairs.json").values()) if args.versus is not None else []
    text = "\n".join(results(list(pairs.values()), others)) + "\n"
    (args.results / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    anyio.run(main)
