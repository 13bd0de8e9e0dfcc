"""Every strategy as an Optuna sampler: ``study.optimize(objective)`` gets the search ``python -m agent`` runs.

    with StrategySampler(task_description="Tune an MLP on my data; the value is the validation error.",
                         budget=30) as sampler:          # llm-bo, the CLI's default, on the embedded model
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=30)

``strategy`` is any name ``--strategy`` accepts (:mod:`agent.strategies.registry`, installed ones included;
default ``llm-bo``, as the CLI). The sampler builds the strategy the CLI builds
(:func:`~agent.strategies.registry.make_strategy`) and asks it for each trial with the study's trials as
records, as the CLI's runner does: one implementation of each strategy serves both. ``LLMSampler`` is the same
class under its earlier name.

How it works. Optuna asks a sampler for the *relative* parameters of a trial once, before the objective's
first ``suggest_*``. :meth:`infer_relative_search_space` gives the intersection of the distributions of the
study's finished trials (Optuna's ``IntersectionSearchSpace``), less what a
:class:`~agent.space.SearchSpace` cannot represent (a ``step``, ``None`` among the choices) and one-value
parameters; from the second trial on, those parameters come from one proposal of the strategy. It is shown
the space (``SearchSpace.from_optuna``), the trials that hold those parameters (running ones as pending,
whose configurations it will not repeat) and the study's direction. Its first proposal does not see the
trials Optuna drew before the space was known (the first one): it opens the study as in the CLI, where
``llm-bo``'s model picks the starting configuration; from its second proposal on it sees them all.

A proposal without a configuration (``random``, ``tpe``, a model's fallback) is drawn by the strategy's own
Optuna sampler (:meth:`~agent.strategies.base.Strategy.sampler`), which also samples every parameter outside
the relative space (the first trial's, conditional ones, those with a step). When the model cannot be
reached, the round is proposed without it (:meth:`~agent.strategies.base.Strategy.fallback`), as the CLI
does by default. How each trial was proposed (the source, the model's raw answer, reasks, conversation,
usage) lands on it as user attributes (:func:`agent.study.write_proposal`), so optuna-dashboard, Optuna's
plots and ``python -m agent report`` show it.

The model meets the study as a task: ``task_description``, the space, ``prompts/task_optuna.j2``, a tool
``evaluate`` to call (Optuna, not the agent, runs the objective) and the study's direction, stated plainly.
Strategies that call a model (``llm``, ``llm-bo``, ``hybrid``) use ``provider``, or, when it is None, the one
``AGENT_PROVIDER``/``AGENT_MODEL`` name (the embedded model by default, behind the circuit breaker every study
gets: :func:`agent.session.open_model`), started on first use.

Earlier studies. ``learn_from`` takes what ``--learn-from`` takes (storage URLs, study or bench folders; one
as a string, or several): the sources are read, judged and mapped (:mod:`agent.sources`) into the first real
search space, when the strategy is first built, through the session's own assembly
(:func:`agent.session.build_strategy`); the decisions are kept as the study's attributes, so another
process's sampler on the same study reads them back. ``bo``, ``llm-bo`` and ``hybrid`` learn from them, the
others open with their best.

The door. A strategy's proposal enters the study's trial only once admitted (:mod:`agent.study.door`): one
that breaks the space is a warning (on the ``agent`` logger) and that trial is drawn by the strategy's own
Optuna sampler instead; the third in a row raises :class:`~agent.errors.BrokenStrategy` (Optuna fails that
trial). The study's trials are checked once, when first read: those holding a value outside today's space
(the objective changed it) are not shown to the strategy.

A library is quiet: Optuna's informational lines about the sampler's own work (the in-memory studies a
strategy's optimizer makes, on the sampler's thread) are not printed; the caller's logging settings are left
as they are.

Threads and loops. Optuna's samplers are synchronous and providers async: the sampler runs its own event
loop in one private daemon thread and submits each call to it, so a provider's connections stay on one
loop; it works from ``study.optimize`` and from code that already runs an event loop. Proposals are made one
at a time, as the CLI's runner makes them, so ``study.optimize(n_jobs=N)`` is safe. Call :meth:`close` (or
use the sampler as a context manager) to close the provider and stop the thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self, TypeVar

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tools.base import ConfigTool

from ._log import get_logger
from .conversation import AgentSettings
from .errors import InvalidSuggestion, ProviderUnavailable
from .memory import Round
from .providers.base import Provider
from .records import Direction, Proposal, Transform, TrialRecord
from .session import build_strategy, open_model
from .sources.reading import locate
from .space import Choice, FloatParam, SearchSpace
from .strategies.base import ProposeContext, Strategy
from .strategies.registry import DEFAULT_STRATEGY, get_strategy
from .study import StudyStore, kept_sources, study_meta, study_records, write_proposal
from .study.door import Strikes, admit
from .templates import Templates

__all__ = ["LLMSampler", "StrategySampler"]

_T = TypeVar("_T")
_log = get_logger(__name__)
_DESCRIPTION = "Find the best configuration for an objective function."
_TOOL = "Evaluate the objective with this configuration; returns its value."
# Strategy.sampler does not depend on the space; a strategy is built over this one only to get it, when
# no real space is known yet (the first trial).
_STAND_IN = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})


class StrategySampler(optuna.samplers.BaseSampler):
    """An Optuna sampler that proposes with one of the agent's strategies (see the module docstring)."""

    def __init__(
        self,
        strategy: str = DEFAULT_STRATEGY,
        *,
        task_description: str = _DESCRIPTION,
        provider: Provider | None = None,
        budget: int = 20,
        seed: int | None = None,
        settings: AgentSettings | None = None,
        templates: Templates | None = None,
        learn_from: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    ) -> None:
        self._spec = get_strategy(strategy, flag="StrategySampler")
        self.learn_from = _located(learn_from)  # a wrong one fails here, at once
        self._learned: str | None = None  # the space the sources were mapped into (the first real one)
        self.strategy = strategy
        self.task_description = task_description
        self.provider = provider
        self.budget = budget
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.settings = settings or AgentSettings()
        self.templates = templates or Templates()
        self._rng = random.Random(self.seed)
        self._intersection = IntersectionSearchSpace()
        self._strategies: dict[tuple[str, str], Strategy] = {}
        self._strikes = Strikes(strategy, advice="fix the strategy or give StrategySampler another")
        #: Finished trials checked against a space, by (space, trial number): None where they do not fit it.
        self._checked: dict[tuple[str, int], TrialRecord | None] = {}
        self._quiet = _OwnThreadQuiet()
        self._opened: set[tuple[str, str]] = set()  # strategies that made their first proposal
        self._blind: set[int] = set()  # trials drawn before any search space was known (the first)
        self._inner: optuna.samplers.BaseSampler | None = None
        self._lock = threading.RLock()  # one proposal at a time; the caches and the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- Optuna's sampler interface -----------------------------------------------------------------

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _single_objective(study)
        with self._lock:
            space = self._intersection.calculate(study)
        return {name: dist for name, dist in space.items() if _representable(dist) and not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _single_objective(study)
        known = {name: dist for name, dist in search_space.items() if _representable(dist)}
        if not known:
            with self._lock:
                self._blind.add(trial.number)
        if not search_space:
            return {}
        params: dict[str, Any] = dict(self._propose(study, trial, known) or {}) if known else {}
        # What the strategy left open, its own Optuna sampler draws (random, tpe, a fallback, a step).
        inner = self._inner_sampler(study)
        rest = {name: dist for name, dist in search_space.items() if name not in params}
        params.update(inner.sample_relative(study, trial, rest) if rest else {})
        for name, dist in rest.items():
            if name not in params:
                params[name] = inner.sample_independent(study, trial, name, dist)
        return params

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        _single_objective(study)
        return self._inner_sampler(study).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if self._inner is not None:
            self._inner.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        if self._inner is not None:
            self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        with self._lock:
            self._rng.seed(random.SystemRandom().randrange(2**31))
            if self._inner is not None:
                self._inner.reseed_rng()

    # ---- proposing ----------------------------------------------------------------------------------

    def _propose(
        self, study: Study, trial: FrozenTrial, dists: Mapping[str, BaseDistribution]
    ) -> dict[str, Choice] | None:
        """The strategy's configuration of the relative space, or None (its Optuna sampler draws it)."""
        space = SearchSpace.from_optuna(dists)
        with self._lock:
            strategy = self._strategy_for(study, space)
            key = _key(study, space)
            hidden = set() if key in self._opened else self._blind
            self._opened.add(key)
            records = [r for r in self._records(study, space, exclude=trial.number) if r.number not in hidden]
            ctx = ProposeContext(space=space, records=records, rng=self._rng, direction=_direction(study))
            started = time.perf_counter()
            try:
                proposal: Proposal = self._call(strategy.propose_batch(ctx, 1))[0]
            except ProviderUnavailable as exc:
                proposal = self._call(strategy.fallback(ctx, f"the model could not be reached: {exc}"))
            proposal = self._admitted(space, proposal)
            if proposal.config is not None:
                proposal.seconds = time.perf_counter() - started
            write_proposal(study, trial, proposal.info())
            strategy.trial_started(trial.number, proposal)
        return proposal.config

    def _admitted(self, space: SearchSpace, proposal: Proposal) -> Proposal:
        """``proposal`` through the study's door: a refused one is a warning, and its configuration is left to
        the strategy's Optuna sampler; the third refusal in a row fails the trial and stops the study."""
        if proposal.config is None:
            return proposal
        try:
            config = admit(space, proposal.config)
        except InvalidSuggestion as exc:
            _log.warning(self._strikes.refused(exc))  # the third in a row raises: Optuna fails the trial
            reason = f"the proposal of strategy {self.strategy!r} broke the search space: {exc}"
            return replace(proposal, config=None, source="fallback", reason=reason)
        self._strikes.admitted()
        return replace(proposal, config=config)

    def _records(self, study: Study, space: SearchSpace, exclude: int) -> list[TrialRecord]:
        """The study's trials as the strategy sees them: those holding a valid value of every parameter of
        ``space`` (finished, and running ones as pending), with only those parameters. A finished trial is
        checked once per space, when first read."""
        key = space.model_dump_json()
        out = []
        for r in study_records(study):
            if r.number == exclude:
                continue
            if not r.finished:
                checked = _fitted(r, space)
            elif (key, r.number) in self._checked:
                checked = self._checked[(key, r.number)]
            else:
                checked = self._checked[(key, r.number)] = _fitted(r, space)
            if checked is not None:
                out.append(checked)
        return out

    def _strategy_for(self, study: Study, space: SearchSpace) -> Strategy:
        key = _key(study, space)
        strategy = self._strategies.get(key)
        if strategy is None:
            strategy = self._strategies[key] = self._build(study, space)
        return strategy

    def _build(self, study: Study, space: SearchSpace) -> Strategy:
        """The strategy the CLI would build (:func:`agent.session.build_strategy`), for a task made of the
        study and ``space``; the sources are mapped into the first real space only."""
        task = _Objective(
            description=self.task_description,
            space=space,
            tool=ConfigTool(space, name="evaluate", description=_TOOL),
            direction=_direction(study),
        )
        key = space.model_dump_json()
        learns = self.learn_from or kept_sources(study_meta(study))
        sources: tuple[str, ...] | None = None
        if learns and space is not _STAND_IN and self._learned in (None, key):
            self._learned, sources = key, self.learn_from
        strategy, _ = self._call(
            build_strategy(
                self.strategy,
                task=task,
                budget=self.budget,
                seed=self.seed,
                store=StudyStore.attach(study, space),
                provider=self._provider(),
                settings=self.settings,
                templates=self.templates,
                sources=sources,
                say=_log.info,
            )
        )
        strategy.restore(_rounds(study_records(study)))
        return strategy

    def _inner_sampler(self, study: Study) -> optuna.samplers.BaseSampler:
        """The strategy's own Optuna sampler, made once (its seed moves on when the study has trials)."""
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    strategy = next(iter(self._strategies.values()), None) or self._build(study, _STAND_IN)
                    finished = sum(r.finished for r in study_records(study))
                    self._inner = strategy.sampler(self.seed, finished)
        return self._inner

    def _provider(self) -> Provider | None:
        if not self._spec.needs_model:
            return None
        if self.provider is None:
            self.provider = open_model()
        return self.provider

    # ---- the private event loop ---------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="StrategySampler", daemon=True)
                self._thread.start()
                self._quiet.thread = self._thread.ident
            loop = self._loop
        with self._quiet:  # only while the sampler's thread works: nothing is left on Optuna's loggers
            return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        """Close the provider on the sampler's loop and stop the loop's thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        if self.provider is not None:
            asyncio.run_coroutine_threadsafe(self.provider.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The earlier name of :class:`StrategySampler` (it then ran only the paper's loop, now ``strategy="llm"``).
LLMSampler = StrategySampler


@dataclass(frozen=True)
class _Objective:
    """The user's objective as the model sees it (a :class:`~agent.tasks.TaskBrief`); Optuna, not the agent,
    evaluates it."""

    description: str
    space: SearchSpace
    tool: ConfigTool
    direction: Direction
    name: str = "optuna"
    template: str = "task_optuna"
    transform: Transform | None = None


def _key(study: Study, space: SearchSpace) -> tuple[str, str]:
    return study.study_name, space.model_dump_json()


def _single_objective(study: Study) -> None:
    if len(study.directions) != 1:
        raise ValueError("StrategySampler supports single-objective studies only")


def _direction(study: Study) -> Direction:
    return "maximize" if study.direction == StudyDirection.MAXIMIZE else "minimize"


def _representable(dist: BaseDistribution) -> bool:
    """Can a :class:`SearchSpace` hold it (no step, no None among the choices)?"""
    if isinstance(dist, FloatDistribution):
        return dist.step is None
    if isinstance(dist, IntDistribution):
        return dist.step == 1
    return isinstance(dist, CategoricalDistribution) and None not in dist.choices


def _fitted(record: TrialRecord, space: SearchSpace) -> TrialRecord | None:
    """``record`` with only the parameters of ``space``, checked against it; None where it does not fit (a
    value outside today's range: the objective changed its space)."""
    if not set(space.params) <= set(record.config):
        return None
    try:
        config = admit(space, {name: record.config[name] for name in space.params})
    except InvalidSuggestion:
        return None
    return record.model_copy(update={"config": config})


def _located(learn_from: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> tuple[str, ...]:
    """The storage URLs of ``learn_from`` (one source, or several); errors name ``learn_from``."""
    sources = [learn_from] if isinstance(learn_from, str | os.PathLike) else list(learn_from)
    return tuple(locate(os.fspath(source), flag="learn_from") for source in sources)


class _OwnThreadQuiet(logging.Filter):
    """Leaves out Optuna's informational lines logged on one thread (the sampler's own) while it is entered: a
    strategy's optimizer makes in-memory studies there, and each would print "A new study created in memory".
    Entered by every call onto that thread (several threads of ``study.optimize(n_jobs=...)`` may wait on it)."""

    _LOGGERS = ("optuna.storages._in_memory", "optuna.study.study")

    def __init__(self) -> None:
        super().__init__()
        self.thread: int | None = None
        self._entered = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._entered += 1
            if self._entered == 1:
                for name in self._LOGGERS:
                    logging.getLogger(name).addFilter(self)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._entered -= 1
            if self._entered == 0:
                for name in self._LOGGERS:
                    logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread or record.levelno > logging.INFO


def _rounds(records: Sequence[TrialRecord]) -> list[Round]:
    """Conversations stored on the study's trials (a resumed study, or another process's sampler)."""
    return [Round(trial=r.number, parts=r.proposal.conversation) for r in records if r.proposal.conversation]
