"""``python -m agent bench``: many studies (task x strategy x seed) in one storage, and what they measured.

Every study is named ``{task}/{strategy}/seed{seed}`` in ONE Optuna storage (``sqlite:///OUT/bench.db`` by
default) and keeps its files in ``OUT/studies/{task}/{strategy}/seed{seed}``. A study runs to the largest
budget; smaller budgets read the prefix of its best-so-far curve. Re-running resumes: finished studies are
skipped without being opened. Studies of samplers (random, tpe) run ``jobs`` at a time, each in a worker
thread with its own event loop (default 1: a study is Optuna and SQLAlchemy Python under the GIL, and SQLite
serializes writes, so on 2 cores 2 or 3 threads ran no faster than 1); LLM studies share one provider and run
one after another, after them.

Random search done fairly: besides random's own studies, ``random_samples`` single random configurations
per task are evaluated (not stored) and resampled into the expected best-so-far curve of random search.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
import numpy as np

from . import metrics
from .conversation import AgentSettings
from .display import BenchDisplay
from .errors import UserError
from .memory import HistoryMode
from .providers.base import Provider
from .records import TrialRecord, UsageTotals
from .session import ModelSettings, StudyConfig, open_model, run_study
from .sources.experience import Decision, Experience, load_decisions
from .sources.reading import canonical_url, locate
from .strategies.registry import get_strategy
from .study import kept_sources, opened_storage, stored_meta, stored_records
from .tasks import Task, build_task

__all__ = [
    "BenchConfig",
    "BenchResult",
    "Kind",
    "RandomReference",
    "StudyCost",
    "StudyResult",
    "best_configs",
    "collect",
    "run_bench",
    "run_seed",
    "study_cost",
    "study_name",
]

Kind = Literal["observed", "true"]
_SAMPLE_SEED = 20_231_207  # the random-samples' stream, apart from every study seed


@dataclass(frozen=True)
class BenchConfig:
    tasks: tuple[str, ...]
    strategies: tuple[str, ...]
    budgets: tuple[int, ...]
    seeds: int
    out: Path
    storage: str | None = None
    jobs: int = 1
    provider: str | None = None
    model: str | None = None
    history: HistoryMode = "chat"
    max_retries: int = 3
    random_samples: int = 1000
    bootstrap: int = 2000
    quiet: bool = False
    #: Earlier studies every study learns from (``--learn-from``).
    learn_from: tuple[str, ...] = ()
    #: Every study's time budget in seconds (``--time-budget``); None: trials are counted only.
    time_budget_s: float | None = None

    @property
    def horizon(self) -> int:
        return max(self.budgets)

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.out.resolve() / 'bench.db'}"

    def specs(self) -> list[tuple[str, str, int]]:
        return [(t, s, seed) for t in self.tasks for s in self.strategies for seed in range(self.seeds)]


def study_name(task: str, strategy: str, seed: int) -> str:
    return f"{task}/{strategy}/seed{seed}"


def run_seed(task: str, seed: int) -> int:
    """The seed a study of ``task`` really uses for its sampler, its benchmark's noise and its model.

    Every strategy of one (task, seed) shares it, so comparisons stay paired (TPE's random startup draws
    random search's configurations). It differs between tasks: with the bare seed, random search would draw
    the same configurations on every HPOBench task (their spaces are identical) and the tasks would not be
    independent replicates.
    """
    return (zlib.crc32(task.encode()) + seed) % (2**31 - 1)


# ---- running ------------------------------------------------------------------------------------------


async def run_bench(
    config: BenchConfig,
    *,
    provider: Provider | None = None,
    provider_for: Callable[[Task, int], Provider] | None = None,
) -> BenchResult:
    """Run (or resume) every study of ``config``, then collect the results. ``provider`` serves the LLM
    studies; when None, one is opened with ``get_provider(config.provider, config.model)`` if needed.
    ``provider_for(task, seed)`` instead gives each LLM study a provider of its own (stand-in models that
    know the task, :class:`~agent.providers.scripted.ConfigProvider`)."""
    needs_model = {name: get_strategy(name, flag="--strategies").needs_model for name in config.strategies}
    given = tuple(locate(source) for source in config.learn_from)  # a wrong one stops the bench before a study
    started = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    for name in config.tasks:  # fail fast on a bad task; loads each table once, before any thread does
        build_task(name)
    with opened_storage(config.storage_url):  # creates the schema once: worker threads opening it together would race
        pass
    config = dataclasses.replace(config, learn_from=_bench_sources(config, given))
    done = _finished_studies(config)
    todo = [spec for spec in config.specs() if study_name(*spec) not in done]
    plain = [spec for spec in todo if not needs_model[spec[1]]]
    llm = [spec for spec in todo if needs_model[spec[1]]]
    async with contextlib.AsyncExitStack() as stack:
        if llm and provider is None and provider_for is None:  # opened and probed first: a refused key stops it at once
            from .preflight import probe_provider

            model = ModelSettings(provider=config.provider, model=config.model)
            provider = await stack.enter_async_context(open_model(model))
            await probe_provider(provider)
        progress = stack.enter_context(BenchDisplay(len(todo), jobs=config.jobs, quiet=config.quiet))
        await _run_plain(plain, config, progress)
        for spec in llm:
            await _run_study(spec, config, provider, progress, provider_for)
    run = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.perf_counter() - started, 2),
        "studies_run": len(todo),
        "studies_skipped": len(done & {study_name(*s) for s in config.specs()}),
        "jobs": config.jobs,
    }
    _append_run(config.out / "bench_runs.jsonl", run)
    return await collect(config)


def _bench_sources(config: BenchConfig, given: tuple[str, ...]) -> tuple[str, ...]:
    """The sources every study of the bench learns from, as a study keeps its own: those its studies stored
    (a resumed bench without ``--learn-from`` keeps them), else ``given``. Other sources than those stored, or
    sources for a bench whose studies learned from none, are refused: its seeds would learn from different
    studies."""
    kept: dict[tuple[str, ...], tuple[str, ...]] = {}  # canonical URLs -> as stored
    with opened_storage(config.storage_url) as storage:
        names = {s.study_name for s in storage.get_all_studies()}
        for spec in config.specs():
            if study_name(*spec) in names:
                stored = kept_sources(stored_meta(storage, study_name(*spec)))
                kept[tuple(canonical_url(u) for u in stored)] = stored
    if not kept:
        return given
    ((canonical, stored), *others) = kept.items()
    where = f"the bench in {config.out}"
    if others:
        raise UserError(f"{where} holds studies that learned from different sources; use a new --out")
    if given and tuple(canonical_url(u) for u in given) != canonical:
        if stored:
            raise UserError(
                f"{where} learns from {', '.join(stored)}; run it again without --learn-from (it keeps its "
                "sources), or use a new --out to learn from others"
            )
        raise UserError(f"{where} has studies that learn from no earlier study; to learn from others use a new --out")
    return stored


def _silent(line: str) -> None:
    return None


def _append_run(path: Path, run: Mapping[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(run) + "\n")


def _finished_studies(config: BenchConfig) -> set[str]:
    """Names of studies that reached the largest budget and have no trial left running."""
    done = set()
    with opened_storage(config.storage_url) as storage:
        for s in storage.get_all_studies():
            records = [r for r in stored_records(storage, s.study_name) if not r.probe]
            finished = sum(r.finished for r in records)
            if finished >= config.horizon and not any(not r.finished for r in records):
                done.add(s.study_name)
    return done


async def _run_plain(specs: list[tuple[str, str, int]], config: BenchConfig, progress: BenchDisplay) -> None:
    """Sampler studies: in this thread when ``jobs`` is 1, else ``jobs`` worker threads (Optuna's calls
    block; each thread runs its study on its own event loop)."""
    if config.jobs <= 1:
        for spec in specs:
            await _run_study(spec, config, None, progress)
        return
    limiter = anyio.CapacityLimiter(config.jobs)

    def blocking(spec: tuple[str, str, int]) -> None:
        anyio.run(_run_study, spec, config, None, progress)

    async def in_thread(spec: tuple[str, str, int]) -> None:
        await anyio.to_thread.run_sync(blocking, spec, limiter=limiter)

    async with anyio.create_task_group() as tg:
        for spec in specs:
            tg.start_soon(in_thread, spec)


async def _run_study(
    spec: tuple[str, str, int],
    config: BenchConfig,
    provider: Provider | None,
    progress: BenchDisplay,
    provider_for: Callable[[Task, int], Provider] | None = None,
) -> None:
    task_name, strategy_name, bench_seed = spec
    seed = run_seed(task_name, bench_seed)
    started = time.perf_counter()
    task = build_task(task_name, seed=seed)
    if provider_for is not None:
        provider = provider_for(task, seed)
    study = StudyConfig(
        task=task,
        strategy=strategy_name,
        budget=config.horizon,
        seed=seed,
        save_dir=config.out / "studies" / task_name / strategy_name / f"seed{bench_seed}",
        study_name=study_name(*spec),
        storage=config.storage_url,
        meta={"bench_seed": bench_seed},
        agent=AgentSettings(history=config.history, max_retries=config.max_retries),
        learn_from=config.learn_from,
        time_budget_s=config.time_budget_s,
        checks=False,  # the bench checked its model before its first study; its folder it made itself
    )
    # What each study learned from is stored with it and shown in the report; the bench's own lines stay short.
    summary = await run_study(study, reporter=progress.study(study_name(*spec)), provider=provider, say=_silent)
    progress.done(study_name(*spec), summary.best.value if summary.best else None, time.perf_counter() - started)


# ---- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StudyCost(UsageTotals):
    repeated: int = 0


@dataclass(frozen=True)
class StudyResult:
    """One study's finished trials in order: observed value (None: failed), true error, configuration."""

    task: str
    strategy: str
    seed: int
    values: tuple[float | None, ...]
    true_errors: tuple[float | None, ...]
    configs: tuple[dict[str, Any], ...]
    cost: StudyCost
    #: Seconds the strategy took to propose each trial (None: drawn by the study's sampler, not timed).
    propose_seconds: tuple[float | None, ...] = ()
    #: The model's share of the round, as a hybrid strategy decided it for each trial (None: not decided).
    shares: tuple[float | None, ...] = ()
    #: Seconds of every model call, in order.
    call_seconds: tuple[float, ...] = ()
    #: Who chose each trial's configuration (the record's source).
    sources: tuple[str, ...] = ()
    #: What the study learned from (``--learn-from``): one line per source, how it entered or why not.
    learned_from: tuple[str, ...] = ()

    def curve(self, kind: Kind) -> metrics.FloatArray:
        """Best observed error so far, or the true error of the configuration picked so far."""
        if kind == "observed":
            return metrics.best_so_far(self.values)
        return metrics.incumbent_scores(self.values, self.true_errors)


@dataclass(frozen=True)
class RandomReference:
    """Single random evaluations of a task and the bootstrap curves of random search drawn from them."""

    observed: metrics.FloatArray
    true: metrics.FloatArray
    curves: metrics.RandomSearchCurves

    @property
    def single(self) -> float:
        """The median true error of one random configuration: normalized regret's reference."""
        return float(np.nanmedian(self.true))

    def at(self, budget: int, kind: Kind) -> float:
        """Random search's expected error at ``budget``: the bootstrap median (compared with medians)."""
        curve = self.curves.observed_median if kind == "observed" else self.curves.true_median
        return float(curve[budget - 1])


@dataclass(frozen=True)
class BenchResult:
    config: BenchConfig
    studies: dict[tuple[str, str, int], StudyResult]
    references: dict[str, RandomReference]
    optima: dict[str, float | None]
    #: Tasks whose evaluations are noisy (tabular), so that a study's true error differs from what it saw.
    noisy: dict[str, bool]
    runs: list[dict[str, Any]] = field(default_factory=list)

    def learned_from(self) -> dict[tuple[str, str], dict[str, int]]:
        """(task, strategy) -> each line of what its studies learned from (``--learn-from``) and in how many of
        its seeds; empty for a bench that learned from nothing."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        for (task, strategy, _), r in self.studies.items():
            for line in r.learned_from:
                lines = out.setdefault((task, strategy), {})
                lines[line] = lines.get(line, 0) + 1
        return out

    def curves(self, task: str, strategy: str, kind: Kind) -> metrics.FloatArray:
        """Seeds x horizon; a missing study or an unreached evaluation is NaN. Under a time budget a study that
        ran out of time keeps what it had then (its last value carries on to the horizon)."""
        out = np.full((self.config.seeds, self.config.horizon), np.nan)
        for seed in range(self.config.seeds):
            study = self.studies.get((task, strategy, seed))
            if study is not None:
                c = study.curve(kind)[: self.config.horizon]
                out[seed, : c.size] = c
                if self.config.time_budget_s is not None and c.size:
                    out[seed, c.size :] = c[-1]
        return out

    def finals(self, task: str, strategy: str, budget: int, kind: Kind) -> metrics.FloatArray:
        """One error per seed at ``budget``."""
        return self.curves(task, strategy, kind)[:, budget - 1]

    def median(self, task: str, strategy: str, budget: int, kind: Kind) -> float:
        return float(metrics.quantiles(self.finals(task, strategy, budget, kind), 0.5))

    def paired(self, a: str, b: str, budget: int, tasks: Sequence[str]) -> tuple[int, int, int]:
        """(better, worse, tied) of strategy ``a`` against ``b`` on the true error, seed by seed over ``tasks``."""
        x = np.concatenate([self.finals(t, a, budget, "true") for t in tasks])
        y = np.concatenate([self.finals(t, b, budget, "true") for t in tasks])
        return metrics.paired_outcomes(x, y)

    def propose_seconds(self, strategy: str, budget: int) -> list[float]:
        """The timed proposals of ``strategy``'s studies, over their first ``budget`` trials."""
        return [
            x
            for (_, s, _), r in self.studies.items()
            if s == strategy
            for x in r.propose_seconds[:budget]
            if x is not None
        ]


async def collect(config: BenchConfig) -> BenchResult:
    """Read every study of ``config`` from the storage and draw the random-search reference per task."""
    tasks = {name: build_task(name, seed=_SAMPLE_SEED) for name in config.tasks}
    studies = {}
    with opened_storage(config.storage_url) as storage:
        names = {s.study_name for s in storage.get_all_studies()}
        for spec in config.specs():
            if study_name(*spec) in names:
                records = stored_records(storage, study_name(*spec))
                learned = load_decisions(stored_meta(storage, study_name(*spec)).get("experience"))
                studies[spec] = _study_result(spec, records, tasks[spec[0]], learned)
    references = {name: await _reference(task, config) for name, task in tasks.items()}
    runs = []
    with contextlib.suppress(FileNotFoundError):
        lines = (config.out / "bench_runs.jsonl").read_text().splitlines()
        runs = [json.loads(line) for line in lines if line.strip()]
    optima = {n: t.optimum for n, t in tasks.items()}
    noisy = {n: t.true_error is not None for n, t in tasks.items()}
    return BenchResult(config, studies, references, optima, noisy, runs)


def _study_result(
    spec: tuple[str, str, int], records: list[TrialRecord], task: Task, learned: Sequence[Decision] = ()
) -> StudyResult:
    """``learned``: how the study's sources entered it (their mapping's model calls count in its cost)."""
    done = [r for r in records if r.finished and not r.probe]  # a probe of the setup is outside the budget
    experience = Experience((), tuple(learned))
    values = tuple(r.value for r in done)
    configs = tuple(r.config for r in done)
    return StudyResult(
        *spec,
        values=values,
        true_errors=tuple(_true_error(task, c, v) for c, v in zip(configs, values, strict=True)),
        configs=configs,
        cost=study_cost(done, task, learned=experience.usage),
        propose_seconds=tuple(r.proposal.seconds for r in done),
        shares=tuple(_share(r) for r in done),
        call_seconds=tuple(u.latency_s for r in done for u in r.proposal.usage),
        sources=tuple(r.source for r in done),
        learned_from=tuple(experience.lines()),
    )


def _share(record: TrialRecord) -> float | None:
    share = record.proposal.decision.get("share")
    return float(share) if isinstance(share, int | float) else None


def _true_error(task: Task, config: Mapping[str, Any], value: float | None) -> float | None:
    if value is None or task.true_error is None:
        return value  # toy functions are noise-free: the observed value is the true one
    return task.true_error(config)


def study_cost(records: Sequence[TrialRecord], task: Task | None, *, learned: UsageTotals | None = None) -> StudyCost:
    """LLM calls, tokens, seconds, reasks, fallbacks and repeated configurations of a study's trials;
    ``learned``: what mapping its earlier studies cost, counted with them."""
    keys = [task.space.key(r.config) for r in records] if task is not None else []
    usage = UsageTotals.of(records) + (learned or UsageTotals())
    return StudyCost(**vars(usage), repeated=metrics.repeated_count(keys))


async def _reference(task: Task, config: BenchConfig) -> RandomReference:
    """``random_samples`` uniform configurations, each evaluated once (instant for toy and tabular tasks)."""
    rng = random.Random(f"{_SAMPLE_SEED}/{task.name}")
    observed = np.empty(config.random_samples)
    true = np.empty(config.random_samples)
    for i in range(config.random_samples):
        cfg = task.space.sample(rng)
        result = await task.tool.evaluate(cfg)
        value = result.value if result.state == "complete" and result.value is not None else math.nan
        observed[i] = value
        true[i] = task.true_error(cfg) if task.true_error is not None and not math.isnan(value) else value
    boot_rng = np.random.default_rng(zlib.crc32(task.name.encode()))
    curves = metrics.bootstrap_random_search(
        observed, true, horizon=config.horizon, reps=config.bootstrap, rng=boot_rng
    )
    return RandomReference(observed, true, curves)


async def best_configs(
    task: Task, fraction: float = 0.01, samples: int = 20_000, seed: int = 0
) -> list[dict[str, Any]]:
    """The best ``fraction`` of ``samples`` random configurations of ``task`` by true error (a tabular task's
    mean over its seeds; a toy function's value): what a strong stand-in model answers in the bench. Bench
    knowledge of the task's table, never given to a strategy."""
    rng = random.Random(f"best/{task.name}/{seed}")
    scored = []
    for _ in range(samples):
        config = task.space.sample(rng)
        if task.true_error is not None:
            score = task.true_error(config)
        else:
            result = await task.tool.evaluate(config)
            score = result.value if result.value is not None else math.inf
        scored.append((score, task.space.key(config), config))
    scored.sort(key=lambda item: (item[0], item[1]))
    unique = list({key: (score, config) for score, key, config in reversed(scored)}.values())
    unique.sort(key=lambda item: item[0])
    return [config for _, config in unique[: max(1, int(len(unique) * fraction))]]
