"""Run a study: the strategy proposes, the study's door admits, the task's tool evaluates, the store records.
Every strategy alike: :class:`StudyLoop`, run by :func:`optimize`."""

from __future__ import annotations

import contextlib
import random
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import anyio
import anyio.lowlevel
import optuna
from anyio.abc import TaskGroup
from optuna.pruners import NopPruner

from evaluators.base import EvalResult, Progress, SetupError, TrialFailed
from tools.base import EvaluationTool, TrialContext

from ._log import get_logger
from .deadline import DEADLINE, StudyClock
from .errors import AgentError, BrokenSetup, InvalidSuggestion, ProviderUnavailable, UserError
from .executors import Executor, LocalExecutor
from .memory import Round
from .records import UNREACHABLE, Proposal, ProposalInfo, TrialRecord, UsageTotals
from .setup_watch import SetupWatch, probe_config
from .space import Choice
from .strategies.base import ProposeContext, Strategy
from .study import StudySnapshot, StudyStore
from .study.door import Strikes
from .study.terms import TIME_USED

__all__ = ["UNREACHABLE", "Reporter", "StudyLoop", "StudySummary", "optimize"]

_log = get_logger(__name__)

_UNOWNED_POLL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class StudySummary(UsageTotals):
    """A study at the end of a run: its finished trials (earlier runs included) and this run's."""

    best: TrialRecord | None
    n_trials: int
    n_new: int
    #: What the study learned from, a line per source (``--learn-from``).
    learned_from: tuple[str, ...] = ()
    #: Trials that ran to their end, failed, or were stopped early (by the scheduler, at a step); each counts
    #: one toward the budget.
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    #: Trials stopped at a report because the time budget ran out (``--time-budget``; not in ``pruned``).
    stopped_by_deadline: int = 0
    #: Seconds the finished trials cost (recorded costs where they have them, else wall time), and the time the
    #: study has used of its clock (every run's, the model's calls included) and its time budget (None: none).
    compute_s: float = 0.0
    time_used_s: float = 0.0
    time_budget_s: float | None = None
    #: Failed trials of a broken start, kept in the study but not counted (in ``n_trials`` nor the others).
    setup_failures: int = 0
    #: Probes of the setup (:mod:`agent.setup_watch`): kept in the study, outside the budget and the counts.
    probes: int = 0
    #: The numbers of probes that completed: the setup works (a run whose trials all failed drew a failing region).
    probes_completed: tuple[int, ...] = ()
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
            if self.probes_completed:
                probe = ", ".join(f"#{n}" for n in self.probes_completed)
                text += (
                    f"; a probe of the setup ({probe}, the middle of the space) completed, so the setup works and "
                    "these trials drew a failing region: run it again with a larger --budget"
                )
            return text
        if self.n_trials and not self.complete:
            stopped = f", {self.stopped_by_deadline} stopped by the deadline" if self.stopped_by_deadline else ""
            return f"no trial of the study completed ({self.failed} failed, {self.pruned} pruned{stopped})"
        return None


class Reporter:
    """What the runner says while a study runs; this base says nothing. A display overrides what it shows."""

    def started(
        self, *, study: str, budget: int, done: int, setup_failures: int = 0, learned_from: Sequence[str] = ()
    ) -> None:
        """The study starts (or resumes with ``done`` trials finished; ``setup_failures``: failed trials of a
        broken start, kept but not counted; ``learned_from``: a line per earlier study it learns from)."""

    def preparing(self, text: str) -> None:
        """Something is being prepared before the study starts (``mapping S2 of 7 (NAME) ...``)."""

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
    learned_usage: UsageTotals | None = None,
    clock: StudyClock | None = None,
) -> StudySummary:
    """Evaluate until ``budget`` trials have finished in the study (counting those of earlier runs): one
    :class:`StudyLoop` run (its docstring says how)."""
    loop = StudyLoop(
        tool=tool,
        strategy=strategy,
        store=store,
        budget=budget,
        seed=seed,
        reporter=reporter,
        executor=executor,
        batch=batch,
        pruner=pruner,
        on_provider_error=on_provider_error,
        learned_from=learned_from,
        learned_usage=learned_usage,
        clock=clock,
    )
    return await loop.run()


class StudyLoop:
    """One run of a study: claim a trial, run it, record it, until the budget is spent; then summarize.

    Up to ``executor.workers`` evaluations run at once; each result is recorded as it comes. Every trial
    is claimed from the study's budget (:meth:`StudyStore.claim`), so several processes may run one study.
    ``batch``: configurations asked of the strategy per round (at most ``workers``); a round waits until that
    many workers are free, so every answer holds ``batch`` calls (fewer only for the last slots).
    ``pruner``: tools that report intermediate values (train_cifar, commands) report them to the trial, and
    the pruner may stop them. ``on_provider_error``: when the model cannot be reached (its provider's retries
    ran out), ``continue`` proposes that round without it (:meth:`Strategy.fallback`, recorded as a
    ``fallback`` with the reason) and asks the model again next round; ``stop`` ends the study (it resumes).

    Every configuration passes the study's door when it is claimed (:mod:`agent.study.door`): a proposal that
    breaks the space is no trial; its round is drawn by the study's sampler, with a warning, and a strategy
    refused 3 times in a row stops the run. The first trials of a run failing alike are judged by a probe
    (:mod:`agent.setup_watch`) before the run stops for a broken setup.

    The per-trial step is :meth:`run_trial` (evaluate with reports, then :meth:`record`), and whether a new
    trial may start is :meth:`wants_more`: the seams where a scheduler decides per trial whether it continues
    and a time budget stops new trials.

    ``clock``: the study's time (:class:`~agent.deadline.StudyClock`, with its time budget, if any): no trial
    starts once it is spent, and a running trial is stopped at its next report after its deadline (recorded
    pruned, ``stopped_by`` ``deadline``). The time used is stored with the study after every trial.
    """

    def __init__(
        self,
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
        learned_usage: UsageTotals | None = None,
        clock: StudyClock | None = None,
    ) -> None:
        self.tool = tool
        self.strategy = strategy
        self.store = store
        self.budget = budget
        self.seed = seed
        self.reporter = reporter or Reporter()
        self.executor = executor or LocalExecutor(workers=1)
        self.batch = max(1, min(batch, self.executor.workers))
        self.pruner = pruner
        self.on_provider_error = on_provider_error
        self.learned_from = tuple(learned_from)
        self.learned_usage = learned_usage or UsageTotals()
        self.clock = clock or StudyClock()
        self._rng = random.Random(seed)
        self._watch = SetupWatch()
        self._strikes = Strikes(strategy.name)
        self._finished = _Signal()
        self._in_flight: set[int] = set()
        self._probe: int | None = None  # the probe of a suspected broken setup, while it runs
        self._prompts: dict[str, str] | None = None
        self._before = 0
        self._best: TrialRecord | None = None
        self._new_failed = 0
        self._last_error: str | None = None

    # ---- the run ------------------------------------------------------------------------------------------

    async def run(self) -> StudySummary:
        """Run the study until its budget is spent (or it stops); its summary."""
        self._start()
        try:
            async with anyio.create_task_group() as tg:
                while await self._step(tg):
                    pass
        except BaseExceptionGroup as group:  # the study's own error, not a group of one (callers catch AgentError)
            raise _first(group) from None
        finally:
            with contextlib.suppress(Exception):  # also when the run stops (Ctrl-C); never hiding why it stopped
                self._keep_time()
        return self.summarize()

    def _start(self) -> None:
        store, strategy = self.store, self.strategy
        store.sync_files()
        snapshot = store.snapshot()
        # The study's sampler draws what a strategy leaves open; its seed moves on with every trial the study
        # holds (setup failures and probes included), so a resumed study does not replay earlier draws.
        store.study.sampler = strategy.sampler(self.seed, snapshot.created)
        if self.pruner is not None:
            store.study.pruner = self.pruner
        strategy.restore(
            [Round(trial=r.number, parts=r.proposal.conversation) for r in snapshot.records if r.proposal.conversation]
        )
        self._prompts = strategy.prompts()  # kept with the study, as sent, at the run's first model round
        self._before, self._best = snapshot.finished, snapshot.best
        self.reporter.started(
            study=store.name,
            budget=self.budget,
            done=self._before,
            setup_failures=snapshot.setup_failures,
            learned_from=self.learned_from,
        )
        store.events.info("study_started", study=store.name, budget=self.budget, finished=self._before)

    def wants_more(self, snapshot: StudySnapshot) -> bool:
        """May a new trial of the budget start? Not once the trials are all claimed or the time is spent."""
        return snapshot.used < self.budget and not self.clock.spent()

    async def _step(self, tg: TaskGroup) -> bool:
        """Start what can start now, or wait for a trial to finish; False once the run is over."""
        await anyio.lowlevel.checkpoint()  # a study of instant evaluations must still see cancellation (Ctrl-C)
        if len(self._in_flight) >= self.executor.workers or self._probe is not None:
            await self._finished.wait()  # while a probe runs, nothing new starts: it decides whether to go on
            return True
        snapshot = self.store.snapshot()
        if snapshot.stale:
            adopted = self.store.adopt(snapshot.stale[0])
            if adopted is not None:
                self._launch(tg, *adopted, "resumed")
            return True
        if self._watch.suspect is not None:
            self._start_probe(tg)
            return True
        if not self.wants_more(snapshot):
            if self._in_flight:
                await self._finished.wait()
                return True
            if snapshot.unowned:  # a trial a killed run created but never got to name its owner: adopt it soon
                await anyio.sleep(_UNOWNED_POLL_S)
                return True
            return False
        k = min(self.batch, self.budget - snapshot.used)
        if self.executor.workers - len(self._in_flight) < k:  # a batch is proposed whole: wait for k free workers
            await self._finished.wait()
            return True
        claimed = 0
        for proposal in await self._propose(snapshot, k):
            started = self._claim(proposal)
            if started is None:  # other workers took the last places while we were proposing
                break
            claimed += 1
            self._launch(tg, *started)
        return bool(claimed or self._in_flight)

    async def _propose(self, snapshot: StudySnapshot, k: int) -> list[Proposal]:
        """``k`` proposals of the strategy (made without the model when it cannot be reached), each timed."""
        self.reporter.proposing(snapshot.used)
        ctx = ProposeContext(
            space=self.store.space,
            records=snapshot.records,
            rng=self._rng,
            direction=self.store.direction,
            time_left=self.clock.left_share(),
        )
        started_at = time.perf_counter()
        try:
            proposals = await self.strategy.propose_batch(ctx, k)
        except ProviderUnavailable as exc:
            if self.on_provider_error == "stop":
                raise
            reason = f"{UNREACHABLE}: {exc}"
            self.store.events.warning("provider_unavailable", error=str(exc), trials=k)
            proposals = [await self.strategy.fallback(ctx, reason) for _ in range(k)]
        seconds_each = (time.perf_counter() - started_at) / len(proposals)
        for proposal in proposals:
            if proposal.config is not None:  # a configuration the study's sampler draws is not timed here
                proposal.seconds = seconds_each
        return proposals

    def _claim(self, proposal: Proposal) -> tuple[int, dict[str, Choice], str] | None:
        """Claim a trial for ``proposal`` through the study's door: its number, configuration and who proposed
        it, or None when the budget is full. A refused proposal's round is drawn by the study's sampler instead
        (a warning; the 3rd refusal in a row raises :class:`BrokenStrategy`)."""
        first = True
        while True:
            try:
                started = self.store.claim(proposal.config, proposal.info(), self.budget)
            except InvalidSuggestion as exc:
                warning = self._strikes.refused(exc)
                _log.warning(warning)
                self.store.events.warning("proposal_refused", strategy=self.strategy.name, error=str(exc))
                reason = f"the proposal of strategy {self.strategy.name!r} broke the search space: {exc}"
                proposal = replace(proposal, config=None, source="fallback", reason=reason, seconds=None)
                first = False
                continue
            if first:
                self._strikes.admitted()
            break
        if started is None:
            return None
        if self._prompts is not None and proposal.parts:
            self.store.record_prompts(self._prompts, started[0])
            self._prompts = None
        self.strategy.trial_started(started[0], proposal)
        return (*started, proposal.source)

    def _start_probe(self, tg: TaskGroup) -> None:
        """Claim and launch the probe of a suspected broken setup (outside the budget)."""
        suspect = self._watch.suspect
        assert suspect is not None
        listed = ", ".join(f"#{n}" for n in suspect.numbers)
        info = ProposalInfo(
            source="probe",
            reason=f"trials {listed} all failed the same way: is the setup broken, or a region of the space?",
        )
        config = probe_config(self.store.space, self._watch.failed_configs())
        started = self.store.claim(config, info, budget=None)
        assert started is not None  # a trial outside the budget is always claimed
        self._probe = started[0]
        self.store.events.warning("setup_probe", trials=list(suspect.numbers), probe=started[0], error=suspect.reason)
        self._launch(tg, *started, "probe")

    def _launch(self, tg: TaskGroup, number: int, config: dict[str, Choice], source: str) -> None:
        self._in_flight.add(number)
        self.reporter.trial_started(number, config, source)
        tg.start_soon(self._run_and_signal, number, config)

    async def _run_and_signal(self, number: int, config: dict[str, Choice]) -> None:
        try:
            await self.run_trial(number, config)
        finally:
            self._in_flight.discard(number)
            self._finished.fire()

    # ---- one trial ----------------------------------------------------------------------------------------

    async def run_trial(self, number: int, config: dict[str, Choice]) -> TrialRecord:
        """One claimed trial: evaluate it (reporting its steps to the pruner and the deadline), then record it."""
        started = time.perf_counter()
        deadline = self.clock.deadline()  # taken when the trial starts; it travels with the trial
        checks = (deadline,) if deadline is not None else ()  # asked by the reporter after the pruner
        trial = TrialContext(
            number=number,
            directory=self.store.trial_directory(number) if self.tool.needs_directory else None,
            report=(
                self.store.reporter(number, self.pruner or NopPruner(), self.tool.max_step, checks)
                if self.pruner is not None or checks
                else None
            ),
            progress=lambda p: self.reporter.progress(number, p),
        )
        result = await self.evaluate(config, trial)
        seconds = time.perf_counter() - started
        self.clock.counted(seconds, result.cost_s)
        return self.record(number, result, seconds)

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext) -> EvalResult:
        """The evaluation's result. Failures are data: anything the evaluator raises becomes a failed trial, and
        the study goes on. The configuration is trusted: it passed the study's door when it was claimed.

        Except what is not the configuration's fault (:class:`~evaluators.base.SetupError`, an
        :class:`~agent.errors.AgentError` such as missing data): that would fail every trial the same way, so
        the study stops at once, recording nothing; the trial is re-run when the study resumes.
        """
        try:
            return await self.executor.evaluate(self.tool, config, trial)
        except TrialFailed as exc:
            return EvalResult.failed(str(exc))
        except SetupError as exc:
            raise UserError(str(exc)) from exc
        except AgentError:
            raise
        except Exception as exc:
            self.store.events.error("evaluation_raised", error=repr(exc), traceback=traceback.format_exc())
            return EvalResult.failed(f"{type(exc).__name__}: {exc}")

    def record(self, number: int, result: EvalResult, seconds: float) -> TrialRecord:
        """Store the trial's result and the time used, tell the reporter, and let the setup watch judge it."""
        record = self.store.finish(number, result, seconds)
        self._keep_time()
        self._best = self.store.best_of([r for r in (self._best, record) if r is not None])
        self.reporter.trial_finished(record, self._best)
        if record.probe:
            self._judge_probe(record)
            return record
        if record.state == "fail":
            self._new_failed, self._last_error = self._new_failed + 1, record.error
        self._watch.seen(record)
        return record

    def _judge_probe(self, record: TrialRecord) -> None:
        if record.number != self._probe:
            return  # a probe of an earlier run, adopted: it judges nothing of this one
        self._probe = None
        broken = self._watch.probed(record)
        if broken is None:
            self.store.events.info("setup_probe_passed", probe=record.number, state=record.state)
            return
        self.store.mark_setup_failures(list(broken.numbers), broken.reason)
        raise BrokenSetup(broken.message())

    def _keep_time(self) -> None:
        """Store the time the study has used, so that a resumed study goes on with the time left."""
        self.store.set_meta(TIME_USED, round(self.clock.used_s(), 3))

    # ---- the end ------------------------------------------------------------------------------------------

    def summarize(self) -> StudySummary:
        """The study's summary (every trial of the budget, earlier runs' included), also logged as an event
        and given to the reporter."""
        snapshot = self.store.snapshot()
        counted = [r for r in snapshot.records if not r.probe]
        states = [r.state for r in counted]
        by_deadline = sum(r.state == "pruned" and r.stopped_by == DEADLINE for r in counted)
        summary = StudySummary(
            best=snapshot.best,
            n_trials=snapshot.finished,
            n_new=snapshot.finished - self._before,
            learned_from=self.learned_from,
            complete=states.count("complete"),
            failed=states.count("fail"),
            pruned=states.count("pruned") - by_deadline,
            stopped_by_deadline=by_deadline,
            compute_s=round(sum(r.compute_s or 0.0 for r in counted if r.finished), 3),
            time_used_s=round(self.clock.used_s(), 3),
            time_budget_s=self.clock.budget_s,
            setup_failures=snapshot.setup_failures,
            probes=snapshot.probes,
            probes_completed=tuple(r.number for r in snapshot.records if r.probe and r.state == "complete"),
            new_failed=self._new_failed,
            last_error=self._last_error,
            save_dir=self.store.save_dir,
            storage=self.store.url,
            **vars(UsageTotals.of(snapshot.records) + self.learned_usage),
        )
        self.store.events.info(
            "study_finished",
            best_value=summary.best.value if summary.best else None,
            best_config=summary.best.config if summary.best else None,
            n_trials=summary.n_trials,
            complete=summary.complete,
            failed=summary.failed,
            pruned=summary.pruned,
            stopped_by_deadline=summary.stopped_by_deadline,
            compute_s=summary.compute_s,
            time_used_s=summary.time_used_s,
            probes=summary.probes,
            llm_calls=summary.llm_calls,
            tokens=summary.prompt_tokens + summary.completion_tokens,
            fallbacks=summary.fallbacks,
            unreachable=summary.unreachable,
        )
        self.reporter.finished(summary)
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
