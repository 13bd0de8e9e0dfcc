"""Run a study: the strategy proposes, the task's tool evaluates, the store records. Every strategy alike."""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import anyio.lowlevel
import optuna
from anyio.abc import TaskGroup

from evaluators.base import EvalResult, Progress, SetupError, TrialFailed
from tools.base import EvaluationTool, TrialContext

from .errors import AgentError, BrokenSetup, InvalidSuggestion, ProviderUnavailable, UserError
from .executors import Executor, LocalExecutor
from .memory import Round
from .records import UNREACHABLE, TrialRecord, UsageTotals
from .setup_watch import SetupWatch
from .space import Choice
from .strategies.base import ProposeContext, Strategy
from .study import StudyStore

__all__ = ["UNREACHABLE", "Reporter", "StudySummary", "optimize"]

_UNOWNED_POLL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class StudySummary(UsageTotals):
    """A study at the end of a run: its finished trials (earlier runs included) and this run's."""

    best: TrialRecord | None
    n_trials: int
    n_new: int
    #: What the study learned from, a line per source (``--learn-from``).
    learned_from: tuple[str, ...] = ()
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    #: Failed trials of a broken start, kept in the study but not counted (in ``n_trials`` nor the others).
    setup_failures: int = 0
    #: This run's trials that failed, and the reason of the last of them.
    new_failed: int = 0
    last_error: str | None = None
    #: Where the study is: its folder (trial files, events log) and its storage URL.
    save_dir: Path | None = None
    storage: str | None = None

    def no_result(self) -> str | None:
        """Why this run gave no result, or None: every trial it finished failed, or no trial of the study has
        completed."""
        if self.n_new and self.new_failed == self.n_new:
            every = "the only trial" if self.n_new == 1 else f"all {self.n_new} trials"
            text = f"no trial completed: {every} of this run failed"
            if self.last_error:
                text += f"; the last one's reason: {self.last_error.strip().splitlines()[0]}"
            return text
        if self.n_trials and not self.complete:
            return f"no trial of the study completed ({self.failed} failed, {self.pruned} pruned)"
        return None


class Reporter:
    """What the runner says while a study runs; this base says nothing. A display overrides what it shows."""

    def started(
        self, *, study: str, budget: int, done: int, setup_failures: int = 0, learned_from: Sequence[str] = ()
    ) -> None:
        """The study starts (or resumes with ``done`` trials finished; ``setup_failures``: failed trials of a
        broken start, kept but not counted; ``learned_from``: a line per earlier study it learns from)."""

    def proposing(self, number: int) -> None:
        """The strategy is choosing the configuration of trial ``number``."""

    def trial_started(self, number: int, config: dict[str, Choice], source: str) -> None:
        """Trial ``number`` is being evaluated."""

    def progress(self, number: int, progress: Progress) -> None:
        """Trial ``number``'s evaluation reports where it is (training epochs). May come from the thread the
        evaluation runs in, never from another process."""

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        """A trial finished; ``best`` is the study's best so far."""

    def finished(self, summary: StudySummary) -> None:
        """The study is over."""


async def optimize(
    *,
    tool: EvaluationTool,
    strategy: Strategy,
    store: StudyStore,
    budget: int,
    seed: int = 0,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
    batch: int = 1,
    pruner: optuna.pruners.BasePruner | None = None,
    on_provider_error: Literal["continue", "stop"] = "continue",
    learned_from: Sequence[str] = (),
) -> StudySummary:
    """Evaluate until ``budget`` trials have finished in the study (counting those of earlier runs).

    Up to ``executor.workers`` evaluations run at once; each result is recorded as it comes. Every trial
    is claimed from the study's budget (:meth:`StudyStore.claim`), so several processes may run this on one
    study. ``batch``: configurations asked of the strategy per round (at most ``workers``); a round waits
    until that many workers are free, so every answer holds ``batch`` calls (fewer only for the last slots).
    ``pruner``: tools that report intermediate values (train_cifar, commands) report them to the trial, and
    the pruner may stop them. ``on_provider_error``: when the model cannot be reached (its provider's retries
    ran out), ``continue`` proposes that round without it (:meth:`Strategy.fallback`, recorded as a
    ``fallback`` with the reason) and asks the model again next round; ``stop`` ends the study (it resumes).
    """
    reporter = reporter or Reporter()
    executor = executor or LocalExecutor(workers=1)
    batch = max(1, min(batch, executor.workers))
    store.sync_files()
    snapshot = store.snapshot()
    # The study's sampler draws what a strategy leaves open; its seed moves on with each resume, so a
    # resumed study does not replay the draws of its first run.
    store.study.sampler = strategy.sampler(seed, snapshot.used)
    if pruner is not None:
        store.study.pruner = pruner
    strategy.restore(
        [Round(trial=r.number, parts=r.proposal.conversation) for r in snapshot.records if r.proposal.conversation]
    )
    prompts = strategy.prompts()  # kept with the study, as sent, at the run's first model round (the report)
    rng = random.Random(seed)
    before = snapshot.finished
    best = snapshot.best
    watch = SetupWatch()
    new_failed, last_error = 0, None
    reporter.started(
        study=store.name,
        budget=budget,
        done=before,
        setup_failures=snapshot.setup_failures,
        learned_from=learned_from,
    )
    store.events.info("study_started", study=store.name, budget=budget, finished=before)
    finished = _Signal()
    in_flight: set[int] = set()

    async def run_trial(number: int, config: dict[str, Choice]) -> None:
        nonlocal best, new_failed, last_error
        try:
            started = time.perf_counter()
            trial = TrialContext(
                number=number,
                directory=store.trial_directory(number) if tool.needs_directory else None,
                report=store.reporter(number) if pruner is not None else None,
                progress=lambda p: reporter.progress(number, p),
            )
            result, evaluated = await _evaluate(tool, config, store, executor, trial)
            record = store.finish(number, result, time.perf_counter() - started)
            best = store.best_of([r for r in (best, record) if r is not None])
            reporter.trial_finished(record, best)
            if record.state == "fail":
                new_failed, last_error = new_failed + 1, record.error
            broken = watch.seen(record, evaluated=evaluated)
            if broken is not None:
                store.mark_setup_failures(list(broken.numbers), broken.reason)
                raise BrokenSetup(broken.message())
        finally:
            in_flight.discard(number)
            finished.fire()

    def launch(tg: TaskGroup, number: int, config: dict[str, Choice], source: str) -> None:
        in_flight.add(number)
        reporter.trial_started(number, config, source)
        tg.start_soon(run_trial, number, config)

    async def _loop(tg: TaskGroup) -> None:
        nonlocal prompts
        while True:
            await anyio.lowlevel.checkpoint()  # a study of instant evaluations must still see cancellation (Ctrl-C)
            if len(in_flight) >= executor.workers:
                await finished.wait()
                continue
            snapshot = store.snapshot()
            if snapshot.stale:
                adopted = store.adopt(snapshot.stale[0])
                if adopted is not None:
                    launch(tg, *adopted, "resumed")
                continue
            if snapshot.used >= budget:
                if in_flight:
                    await finished.wait()
                    continue
                if snapshot.unowned:  # a trial a killed run created but never got to name its owner: adopt it soon
                    await anyio.sleep(_UNOWNED_POLL_S)
                    continue
                break
            k = min(batch, budget - snapshot.used)
            if executor.workers - len(in_flight) < k:  # a batch is proposed whole: wait for k free workers
                await finished.wait()
                continue
            reporter.proposing(snapshot.used)
            ctx = ProposeContext(space=store.space, records=snapshot.records, rng=rng, direction=store.direction)
            started_at = time.perf_counter()
            try:
                proposals = await strategy.propose_batch(ctx, k)
            except ProviderUnavailable as exc:
                if on_provider_error == "stop":
                    raise
                reason = f"{UNREACHABLE}: {exc}"
                store.events.warning("provider_unavailable", error=str(exc), trials=k)
                proposals = [await strategy.fallback(ctx, reason) for _ in range(k)]
            seconds_each = (time.perf_counter() - started_at) / len(proposals)
            claimed = 0
            for proposal in proposals:
                if proposal.config is not None:  # a configuration the study's sampler draws is not timed here
                    proposal.seconds = seconds_each
                started = store.claim(proposal.config, proposal.info(), budget)
                if started is None:  # other workers took the last places while we were proposing
                    break
                claimed += 1
                if prompts is not None and proposal.parts:
                    store.record_prompts(prompts, started[0])
                    prompts = None
                strategy.trial_started(started[0], proposal)
                launch(tg, *started, proposal.source)
            if not claimed and not in_flight:
                break

    try:
        async with anyio.create_task_group() as tg:
            await _loop(tg)
    except BaseExceptionGroup as group:  # the study's own error, not a group of one (callers catch AgentError)
        raise _first(group) from None

    snapshot = store.snapshot()
    states = [r.state for r in snapshot.records]
    summary = StudySummary(
        best=snapshot.best,
        n_trials=snapshot.finished,
        n_new=snapshot.finished - before,
        learned_from=tuple(learned_from),
        complete=states.count("complete"),
        failed=states.count("fail"),
        pruned=states.count("pruned"),
        setup_failures=snapshot.setup_failures,
        new_failed=new_failed,
        last_error=last_error,
        save_dir=store.save_dir,
        storage=store.url,
        **vars(UsageTotals.of(snapshot.records)),
    )
    store.events.info(
        "study_finished",
        best_value=summary.best.value if summary.best else None,
        best_config=summary.best.config if summary.best else None,
        n_trials=summary.n_trials,
        complete=summary.complete,
        failed=summary.failed,
        pruned=summary.pruned,
        llm_calls=summary.llm_calls,
        tokens=summary.prompt_tokens + summary.completion_tokens,
        fallbacks=summary.fallbacks,
        unreachable=summary.unreachable,
    )
    reporter.finished(summary)
    return summary


def _first(group: BaseExceptionGroup) -> BaseException:
    """The exception that ended the study (cancellations of the other tasks are its echo)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        if not isinstance(exc, anyio.get_cancelled_exc_class()):
            return exc
    return group.exceptions[0]


class _Signal:
    """Wakes whoever waits for "some trial finished"; a fire with nobody waiting is kept for the next wait."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def fire(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


async def _evaluate(
    tool: EvaluationTool,
    config: dict[str, Choice],
    store: StudyStore,
    executor: Executor,
    trial: TrialContext,
) -> tuple[EvalResult, bool]:
    """The evaluation's result, and whether the configuration was evaluated (False: refused before, as outside
    the space). Failures are data: anything the evaluator raises becomes a failed trial, and the study goes on.

    What enters the study is checked here, once, against the task's space: a strategy's proposal (a model's
    answer was checked where its text became data, against the space the model was shown; here its
    projection onto the task's grids is, and a strategy of an installed package is code we did not write)
    and a trial read back from storage (adopted from a dead run; the space may have changed since).

    Except what is not the configuration's fault (:class:`~evaluators.base.SetupError`, an
    :class:`~agent.errors.AgentError` such as missing data): that would fail every trial the same way, so
    the study stops at once, recording nothing; the trial is re-run when the study resumes.
    """
    try:
        config = tool.space.validate_config(config)
    except InvalidSuggestion as exc:  # never evaluate a configuration outside the space
        return EvalResult.failed(str(exc)), False
    try:
        return await executor.evaluate(tool, config, trial), True
    except TrialFailed as exc:
        return EvalResult.failed(str(exc)), True
    except SetupError as exc:
        raise UserError(str(exc)) from exc
    except AgentError:
        raise
    except Exception as exc:
        store.events.error("evaluation_raised", error=repr(exc), traceback=traceback.format_exc())
        return EvalResult.failed(f"{type(exc).__name__}: {exc}"), True
