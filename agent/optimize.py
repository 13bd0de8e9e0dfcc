"""Run a study: the strategy proposes, the task's tool evaluates, the store records. Every strategy alike."""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from evaluators.base import EvalResult, TrialFailed
from tools.base import EvaluationTool

from .errors import AgentError, InvalidSuggestion
from .records import TrialRecord
from .space import Choice
from .strategies.base import ProposeContext, Strategy
from .study import StudyStore

__all__ = ["NullReporter", "Reporter", "StudySummary", "optimize", "usage_totals"]


@dataclass(frozen=True)
class StudySummary:
    best: TrialRecord | None
    n_trials: int
    n_new: int
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    reasks: int = 0
    fallbacks: int = 0


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
) -> StudySummary:
    """Evaluate until ``budget`` trials have finished in the study (counting those of earlier runs)."""
    reporter = reporter or NullReporter()
    store.sync_files()
    strategy.restore(store.rounds())
    rng = random.Random(seed)
    before = store.finished_count()
    reporter.started(study=store.study.study_name, budget=budget, done=before)
    store.events.info("study_started", study=store.study.study_name, budget=budget, finished=before)
    while True:
        await anyio.lowlevel.checkpoint()  # a study of instant evaluations must still see cancellation (Ctrl-C)
        stale = store.stale_trials()
        if stale:
            number, config = store.adopt(stale[0])
            source = "resumed"
        else:
            if store.finished_count() + store.live_running_count() >= budget:
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
            proposal = await strategy.propose(ctx)
            number, config = store.start(proposal.config, proposal.source, proposal.attrs())
            strategy.trial_started(number, proposal)
            source = proposal.source
        reporter.trial_started(number, config, source)
        started = time.perf_counter()
        result = await _evaluate(tool, config, store)
        record = store.finish(number, result, time.perf_counter() - started)
        reporter.trial_finished(record, store.best())
    summary = StudySummary(
        best=store.best(),
        n_trials=store.finished_count(),
        n_new=store.finished_count() - before,
        **usage_totals(store),
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


async def _evaluate(tool: EvaluationTool, config: dict[str, Choice], store: StudyStore) -> EvalResult:
    """Failures are data: anything the evaluator raises becomes a failed trial, and the study goes on."""
    try:
        checked = tool.space.validate_config(config)
    except InvalidSuggestion as exc:  # a stored trial whose parameters no longer fit: never evaluate it
        return EvalResult.failed(str(exc))
    try:
        return await tool.evaluate(checked)
    except TrialFailed as exc:
        return EvalResult.failed(str(exc))
    except AgentError:  # misconfiguration (missing data, say): stop; the trial is re-run on resume
        raise
    except Exception as exc:
        store.events.error("evaluation_raised", error=repr(exc), traceback=traceback.format_exc())
        return EvalResult.failed(f"{type(exc).__name__}: {exc}")


def usage_totals(store: StudyStore) -> dict[str, Any]:
    """LLM calls, tokens, seconds, reasks and fallbacks over the whole study."""
    calls = prompt = completion = reasks = fallbacks = 0
    seconds = 0.0
    for t in store.study.get_trials(deepcopy=False):
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
