"""One study, assembled in one place: the CLI, the bench, the benchmarks and the Optuna sampler all go through
here, so a study is wired the same way wherever it runs.

:func:`run_study` opens the model (with its circuit breaker, probed by the setup checks), checks the setup,
opens the store (which refuses, before anything is written, a study made for another task or learning from
other sources: :mod:`agent.study.terms`), builds the strategy and the executor, runs
:func:`~agent.optimize.optimize` and then the task's after-study hook. The budget is given once
(:attr:`StudyConfig.budget`) and reaches the strategy at its construction and the runner as its stopping rule.

:func:`build_strategy` is how a strategy is assembled with what it learns from earlier studies: ``run_study``
calls it, and so does :class:`~agent.sampler.StrategySampler`, which lives inside a study Optuna builds.

:func:`open_model` is how every caller gets a model: the provider ``--provider``/``AGENT_PROVIDER`` names,
behind a :class:`~agent.providers.breaker.CircuitBreaker`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .conversation import AgentSettings
from .deadline import StudyClock
from .executors import make_executor
from .optimize import Reporter, StudySummary, optimize
from .preflight import check_setup
from .providers import get_provider
from .providers.base import Provider
from .providers.breaker import CircuitBreaker
from .sources.experience import Experience, gather
from .sources.reading import locate
from .strategies.base import Strategy, StrategySpec
from .strategies.registry import DEFAULT_STRATEGY, get_strategy, make_strategy
from .study import StudyStore
from .study.scheduler import PrunerName, Scheduler
from .study.terms import kept_time_budget, time_used
from .tasks import AfterStudy, ProgressLines, Task, TaskBrief, build_task
from .templates import Templates

__all__ = ["ExecutorSettings", "ModelSettings", "StudyConfig", "build_strategy", "open_model", "run_study"]


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which model: ``provider`` and ``model`` (None: ``AGENT_PROVIDER``/``AGENT_MODEL``, else the embedded
    model), and the most one call may take (None: ``AGENT_PROVIDER_TIMEOUT``, else the provider's default)."""

    provider: str | None = None
    model: str | None = None
    timeout_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutorSettings:
    """Where evaluations run (:mod:`agent.executors`)."""

    kind: Literal["local", "ray"] = "local"
    workers: int = 1
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Everything a study is made of. ``save_dir`` and ``study_name`` default to
    ``runs/<task>-<strategy>-seed<seed>`` and ``<task>-<strategy>-seed<seed>``."""

    task: Task
    #: A strategy's name in the registry, or a spec of the caller's own (a benchmark's variant of one).
    strategy: str | StrategySpec = DEFAULT_STRATEGY
    budget: int = 10
    seed: int = 0
    save_dir: Path | None = None
    study_name: str | None = None
    storage: str | None = None
    #: More attributes stored with a new study (the bench's seed).
    meta: Mapping[str, Any] = field(default_factory=dict)
    agent: AgentSettings = field(default_factory=AgentSettings)
    prompts_dir: str | None = None
    model: ModelSettings = field(default_factory=ModelSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    #: Configurations the model proposes per answer (at most ``executor.workers``).
    batch: int = 1
    #: ``--pruner``: which trials stop early (None: :data:`~agent.study.scheduler.DEFAULT_PRUNER` for a task
    #: whose tool reports steps, else none).
    pruner: PrunerName | None = None
    on_provider_error: Literal["continue", "stop"] = "continue"
    #: The values of the flags tasks add (their hooks read them).
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The setup checks before anything is created (the bench checks once, before its studies).
    checks: bool = True
    #: Earlier studies to learn from (``--learn-from``): storage URLs, study or bench folders, storage files.
    learn_from: tuple[str, ...] = ()
    #: The study's time budget in seconds (``--time-budget``); None: the one the study keeps, if any.
    time_budget_s: float | None = None

    @property
    def spec(self) -> StrategySpec:
        return self.strategy if isinstance(self.strategy, StrategySpec) else get_strategy(self.strategy)

    @property
    def scheduler(self) -> Scheduler:
        """Which trials stop early: ``pruner`` over the steps the task's tool reports."""
        tool = self.task.tool
        return Scheduler.choose(self.pruner, max_step=tool.max_step, min_step=tool.min_step)

    @property
    def name(self) -> str:
        return self.study_name or f"{self.task.name}-{self.spec.name}-seed{self.seed}"

    @property
    def folder(self) -> Path:
        return Path(self.save_dir or f"runs/{self.task.name}-{self.spec.name}-seed{self.seed}")


def open_model(settings: ModelSettings | None = None) -> Provider:
    """The provider ``settings`` name, behind a circuit breaker (made, not started: the embedded model loads
    at its first call). The caller closes it (``async with``)."""
    settings = settings or ModelSettings()
    return CircuitBreaker(get_provider(settings.provider, settings.model, call_timeout_s=settings.timeout_s))


async def run_study(
    config: StudyConfig,
    *,
    reporter: Reporter | None = None,
    provider: Provider | None = None,
    say: Callable[[str], None] = print,
    progress: ProgressLines | None = None,
) -> StudySummary:
    """Run (or resume) the study ``config`` describes; its summary.

    ``provider``: the model for a strategy that asks one, owned by the caller (several studies may share
    one, as the bench's do); when None and the strategy needs one, :func:`open_model` opens it for this
    study. ``say`` and ``progress`` are how the task's after-study hook talks to the user.
    """
    spec = config.spec
    task = config.task
    sources = tuple(locate(source) for source in config.learn_from)  # a wrong one stops here, before anything
    async with contextlib.AsyncExitStack() as stack:
        if spec.needs_model and provider is None:
            provider = await stack.enter_async_context(open_model(config.model))
        model = provider if spec.needs_model else None
        if config.checks:  # before the model loads, before any trial, before study.db exists
            await check_setup(task=task, save_dir=config.folder, storage=config.storage, provider=model)
        store = _open_store(config, sources)
        stack.callback(store.close)
        if model is not None:
            store.events.info("provider", provider=model.name, model=model.model)
        strategy, experience = await build_strategy(
            config.strategy,
            task=task,
            budget=config.budget,
            seed=config.seed,
            store=store,
            provider=model,
            settings=config.agent,
            templates=Templates(config.prompts_dir),
            sources=sources,
            describe=_description_of,
            say=say,
            progress=reporter.preparing if reporter is not None else None,
        )
        store.set_meta("budget", config.budget)  # the latest budget asked for
        if config.executor.gpus_per_trial > 0:  # the report counts GPU seconds
            store.set_meta("gpus_per_trial", config.executor.gpus_per_trial)
        meta = store.meta
        clock = StudyClock(kept_time_budget(meta), used_s=time_used(meta))
        ex = config.executor
        executor = make_executor(
            ex.kind,
            workers=ex.workers,
            address=ex.address,
            cpus_per_trial=ex.cpus_per_trial,
            gpus_per_trial=ex.gpus_per_trial,
        )
        stack.callback(executor.close)
        summary = await optimize(
            tool=task.tool,
            strategy=strategy,
            store=store,
            budget=config.budget,
            seed=config.seed,
            reporter=reporter,
            executor=executor,
            batch=min(config.batch, ex.workers),
            pruner=config.scheduler.build(),
            on_provider_error=config.on_provider_error,
            learned_from=experience.lines(),
            learned_usage=experience.usage,
            clock=clock,
        )
        if task.after_study is not None:
            await task.after_study(
                AfterStudy(
                    best=summary.best,
                    meta=store.meta,
                    set_meta=store.set_meta,
                    say=say,
                    progress=progress,
                    options=config.options,
                )
            )
        return summary
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack may swallow exceptions)


def _open_store(config: StudyConfig, sources: tuple[str, ...]) -> StudyStore:
    """The study's store: created, or checked against this run's task and sources and resumed."""
    task = config.task
    return StudyStore.open(
        save_dir=config.folder,
        study_name=config.name,
        space=task.space,
        storage=config.storage,
        meta={
            "task": task.name,
            "strategy": config.spec.name,
            "seed": config.seed,
            "description": task.description,
            "metric": task.metric,
            **config.meta,
        },
        direction=task.direction,
        sources=sources,
        scheduler=config.scheduler.to_dict(),
        time_budget_s=config.time_budget_s,
    )


async def build_strategy(
    strategy: str | StrategySpec,
    *,
    task: TaskBrief,
    budget: int,
    seed: int,
    store: StudyStore,
    provider: Provider | None,
    settings: AgentSettings,
    templates: Templates,
    sources: Sequence[str] | None = (),
    describe: Callable[[str], str] | None = None,
    say: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> tuple[Strategy, Experience]:
    """``strategy`` (a name in the registry, or a spec of the caller's own) for the study ``store`` holds, and
    what it learns from earlier studies.

    ``sources``: storage URLs (:func:`~agent.sources.reading.locate`) to learn from; empty: those the study
    keeps, if any; None: none at all (a sampler's strategy over a space the sources were not mapped into).
    The sources are read, judged and mapped once and the decisions kept with the study
    (:func:`~agent.sources.experience.gather`), then the strategy is built: from the registry
    (:func:`~agent.strategies.registry.make_strategy`), or a caller's spec as it is, given the experience.
    """
    experience = Experience((), ())
    if sources is not None:
        experience = await gather(
            sources,
            meta=store.meta,
            set_meta=store.set_meta,
            exclude=(store.url or "", store.name),
            description=task.description,
            space=task.space,
            provider=provider,
            settings=settings,
            templates=templates,
            describe=describe,
            events=store.events,
            say=say,
            progress=progress,
        )
    built = make_strategy(
        strategy,
        task=task,
        budget=budget,
        seed=seed,
        provider=provider,
        settings=settings,
        templates=templates,
        records=store.records,
        events=store.events,
        experience=experience.data,
    )
    return built, experience


def _description_of(task: str) -> str:
    """A built-in or registered task's description, for an earlier study that did not record its own."""
    return build_task(task).description
