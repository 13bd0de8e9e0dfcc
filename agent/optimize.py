"""Run a study: the strategy proposes, the task's tool evaluates, the store records. Every strategy alike."""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from optuna.trial import FrozenTrial

from evaluators.base import EvalResult, TrialFailed
from tools.base import EvaluationTool

from .batch import propose_batch
from .errors import AgentError, InvalidSuggestion
from .executors import Executor, LocalExecutor, Report
from .records import TrialRecord
from .space import Choice
from .strategies.base import ProposeContext, Strategy
from .study import StudyStore

__all__ = ["NullReporter", "Reporter", "StudySummary", "optimize", "usage_totals"]


@dataclass(frozen=True, kw_only=True)
class UsageTotals:
    """LLM calls, tokens, seconds, reasks and fallbacks of a set of trials (see :func:`usage_totals`)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    reasks: int = 0
    fallbacks: int = 0


@dataclass(frozen=True, kw_only=True)
class StudySummary(UsageTotals):
    best: TrialRecord | None
    n_trials: int
    n_new: int


class Reporter(Protocol):
    def started(self, *, study: str, budget: int, done: int) -> None: ...
    def proposing(self, number: int) -> None: ...
    def trial_started(self, number: int, config: dict[str, Choice], source: str) -> None: ...
    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None: ...
    def finished(self, summary: StudySummary) -> None: ...


class NullReporter:
    def started(self, *, study: str, budget: int, done: int) -> None: ...
    def proposing(self, number: int) -> None: ...
    def trial_started(self, number: int, config: dict[str, Choice], source: str) -> None: ...
    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None: ...
    def finished(self, summary: StudySummary) -> None: ...


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
    prune: bool = False,
) -> StudySummary:
    """Evaluate until ``budget`` trials have finished in the study (counting those of earlier runs).

    Up to ``executor.workers`` evaluations run at once; each result is recorded as it comes. Every trial
    is claimed from the study's budget (:meth:`StudyStore.claim`), so several processes may run this on one
    study. ``batch``: configurations asked of the strategy per round (at most ``workers``); a round waits
    until that many workers are free, so every answer holds ``batch`` calls (fewer only for the last slots).
    ``prune``: tools that report per step (train_cifar) report to the trial, and the study's pruner may stop
    them.
    """
    reporter = reporter or NullReporter()
    executor = executor or LocalExecutor(workers=1)
    batch = max(1, min(batch, executor.workers))
    store.sync_files()
    strategy.restore(store.rounds())
    rng = random.Random(seed)
    before = store.finished_count()
    reporter.started(study=store.study.study_name, budget=budget, done=before)
    store.events.info("study_started", study=store.study.study_name, budget=budget, finished=before)
    finished = _Signal()
    in_flight: set[int] = set()

    async def run_trial(number: int, config: dict[str, Choice]) -> None:
        try:
            started = time.perf_counter()
            report = store.reporter(number) if prune else None
            result = await _evaluate(tool, config, store, executor, report)
            record = store.finish(number, result, time.perf_counter() - started)
            reporter.trial_finished(record, store.best())
        finally:
            in_flight.discard(number)
            finished.fire()

    def launch(tg: TaskGroup, number: int, config: dict[str, Choice], source: str) -> None:
        in_flight.add(number)
        reporter.trial_started(number, config, source)
        tg.start_soon(run_trial, number, config)

    async def _loop(tg: TaskGroup) -> None:
        while True:
            await anyio.lowlevel.checkpoint()  # a study of instant evaluations must still see cancellation (Ctrl-C)
            if len(in_flight) >= executor.workers:
                await finished.wait()
                continue
            stale = store.stale_trials()
            if stale:
                adopted = store.adopt(stale[0])
                if adopted is not None:
                    launch(tg, *adopted, "resumed")
                continue
            used = store.used_count()
            if used >= budget:
                if in_flight:
                    await finished.wait()
                    continue
                break
            records = store.records()
            reporter.proposing(len(records))
            ctx = ProposeContext(
                space=store.space,
                records=records,
                budget=budget,
                remaining=budget - store.finished_count(),
                rng=rng,
            )
            k = min(batch, budget - used)
            if executor.workers - len(in_flight) < k:  # a batch is proposed whole: wait for k free workers
                await finished.wait()
                continue
            started_at = time.perf_counter()
            proposals = await propose_batch(strategy, ctx, k)
            seconds_each = (time.perf_counter() - started_at) / len(proposals)
            for proposal in proposals:
                proposal.seconds = seconds_each
            claimed = 0
            for proposal in proposals:
                started = store.claim(proposal.config, proposal.source, proposal.attrs(), budget)
                if started is None:  # other workers took the last slots while we were proposing
                    break
                claimed += 1
                strategy.trial_started(started[0], proposal)
                launch(tg, *started, proposal.source)
            if not claimed and not in_flight:
                break

    try:
        async with anyio.create_task_group() as tg:
            await _loop(tg)
    except BaseExceptionGroup as group:  # the study's own error, not a group of one (callers catch AgentError)
        raise _first(group) from None

    summary = StudySummary(
        best=store.best(),
        n_trials=store.finished_count(),
        n_new=store.finished_count() - before,
        **usage_totals(store.study.get_trials(deepcopy=False)),
    )
    store.events.info(
        "study_finished",
        best_value=summary.best.value if summary.best else None,
        best_config=summary.best.config if summary.best else None,
        n_trials=summary.n_trials,
        llm_calls=summary.llm_calls,
        tokens=summary.prompt_tokens + summary.completion_tokens,
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
    report: Report | None,
) -> EvalResult:
    """Failures are data: anything the evaluator raises becomes a failed trial, and the study goes on."""
    try:
        checked = tool.space.validate_config(config)
    except InvalidSuggestion as exc:  # a stored trial whose parameters no longer fit: never evaluate it
        return EvalResult.failed(str(exc))
    try:
        return await executor.evaluate(tool, checked, report)
    except TrialFailed as exc:
        return EvalResult.failed(str(exc))
    except AgentError:  # misconfiguration (missing data, say): stop; the trial is re-run on resume
        raise
    except Exception as exc:
        store.events.error("evaluation_raised", error=repr(exc), traceback=traceback.format_exc())
        return EvalResult.failed(f"{type(exc).__name__}: {exc}")


def usage_totals(trials: Iterable[FrozenTrial]) -> dict[str, Any]:
    """LLM calls, tokens, seconds, reasks and fallbacks over ``trials`` (from their stored attributes)."""
    calls = prompt = completion = reasks = fallbacks = 0
    seconds = 0.0
    for t in trials:
        for u in t.user_attrs.get("usage") or []:
            calls += 1
            prompt += int(u.get("prompt_tokens", 0))
            completion += int(u.get("completion_tokens", 0))
            seconds += float(u.get("latency_s", 0.0))
        reasks += int(t.user_attrs.get("reasks", 0) or 0)
        fallbacks += t.user_attrs.get("source") == "fallback"
    return {
        "llm_calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "llm_seconds": round(seconds, 3),
        "reasks": reasks,
        "fallbacks": fallbacks,
    }
