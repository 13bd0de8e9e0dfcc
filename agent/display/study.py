"""The terminal display of a running study (rich).

On a terminal: each finished trial is one line (configuration, result, best so far), and below them a live
area redraws in place the running trials (epoch k/N, loss, validation error, images/s, time left) and the
study (trial k/N, best so far, elapsed, time left); before the study starts, what takes seconds (the model
mapping an earlier study: ``mapping S2 of 7 (NAME), 12s``). Not on a terminal (CI logs, ``nohup``, a pipe): plain
lines at a steady pace instead, one per finished trial, and for a trial that reports progress a line at
each epoch's end and at most one every ``plain_interval_s`` in between. ``quiet``: only the summary.

Evaluations report progress from the thread they run in, so every method takes the one lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from evaluators.base import Progress

from ..deadline import DEADLINE
from ..optimize import Reporter, StudySummary
from ..records import TrialRecord, compact_config
from ..space import Choice
from ..study import default_storage_url
from ..tasks import DurationHint
from ._format import duration, is_unit_end, plural, progress_text, study_time_left
from ._live import LiveArea

__all__ = ["RichReporter"]

#: Sources not worth a tag on a trial's line.
_PLAIN_SOURCES = ("llm", "sampler", "surrogate")


@dataclass
class _Running:
    number: int
    config: dict[str, Choice]
    source: str
    started: float
    progress: Progress | None = None
    announced: bool = False  # its configuration was printed (plain lines)
    last_line: float | None = None  # when its last plain progress line was printed (monotonic), if ever


@dataclass
class _State:
    budget: int = 0
    done: int = 0  # finished trials, earlier runs included
    started: float = field(default_factory=time.monotonic)
    durations: list[float] = field(default_factory=list)  # this run's finished trials
    best: TrialRecord | None = None
    running: dict[int, _Running] = field(default_factory=dict)
    proposing: tuple[int, float] | None = None
    hinted: bool = False
    #: What is being prepared before the study starts, and since when (monotonic).
    preparing: tuple[str, float] | None = None


class RichReporter(LiveArea, Reporter):
    """A study's display; use it as a context manager so that the live area is closed whatever happens.

    ``live``: redraw in place (default: when the console is a terminal); ``workers``: evaluations at once
    (for the time left); ``hint``: the duration estimate after the first epoch (CIFAR on CPU).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        quiet: bool = False,
        live: bool | None = None,
        workers: int = 1,
        plain_interval_s: float = 30.0,
        hint: DurationHint | None = None,
    ) -> None:
        self.console = console or Console(highlight=False)
        self.quiet = quiet
        self.live = (self.console.is_terminal if live is None else live) and not quiet
        self.workers = workers
        self.plain_interval_s = plain_interval_s
        self.hint = hint
        self._state = _State()
        super().__init__()

    @property
    def budget(self) -> int:
        return self._state.budget

    # ---- what the runner says -----------------------------------------------------------------------

    def preparing(self, text: str) -> None:
        """Before the study starts, something that takes seconds (``mapping S2 of 7 (NAME)``): redrawn with its
        elapsed time on a terminal until the next one or the start, one line each otherwise."""
        if self.quiet:
            return
        with self._lock:
            self._state.preparing = (text, time.monotonic())
            if self.live and self._live is None:
                self._start_live()
        if not self.live:
            self.console.print(f"{escape(text)} ...", soft_wrap=True)

    def started(
        self, *, study: str, budget: int, done: int, setup_failures: int = 0, learned_from: Sequence[str] = ()
    ) -> None:
        with self._lock:
            self._state = _State(budget=budget, done=done, started=time.monotonic())
        if self.quiet:
            return
        kept = (
            f" ({plural(setup_failures, 'setup failure')} of a broken start kept in it, not counted)"
            if setup_failures
            else ""
        )
        name = f"study [cyan]{escape(study)}[/]"
        if done >= budget:
            self.close()  # the preparation's live area, if any
            self.console.print(
                f"{name}: {plural(done, 'trial')} done, budget {budget}: nothing to run{kept}", soft_wrap=True
            )
            return
        verb = "resuming" if done else "starting"
        self.console.print(f"[bold]{verb}[/] {name}: {done}/{budget} trials done{kept}", soft_wrap=True)
        for line in learned_from:
            self.console.print(f"  learning from {escape(line)}", soft_wrap=True)
        if self.live:
            with self._lock:
                if self._live is None:
                    self._start_live()

    def _start_live(self) -> None:
        self._live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._live.start()

    def proposing(self, number: int) -> None:
        with self._lock:
            self._state.proposing = (number, time.monotonic())

    def trial_started(self, number: int, config: dict[str, Choice], source: str) -> None:
        with self._lock:
            state = self._state
            state.proposing = None
            state.running[number] = _Running(number, dict(config), source, time.monotonic())

    def progress(self, number: int, progress: Progress) -> None:
        if self.quiet:
            return
        lines: list[str] = []
        with self._lock:
            trial = self._state.running.get(number)
            if trial is None:
                return
            trial.progress = progress
            hint = self._hint(progress)
            if hint is not None:
                lines.append(hint)
            if not self.live:
                now = time.monotonic()
                due = trial.last_line is None or now - trial.last_line >= self.plain_interval_s
                if is_unit_end(progress) or due:
                    trial.last_line = now
                    if not trial.announced:
                        trial.announced = True
                        lines.insert(0, self._trial_head(trial))  # before the estimate a first epoch brings
                    lines.append(f"  trial #{number} {escape(progress_text(progress))}")
        for line in lines:
            self.console.print(line, soft_wrap=True)

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        with self._lock:
            state = self._state
            trial = state.running.pop(record.number, None)
            state.done += not record.probe  # a probe of the setup is outside the budget
            state.best = best
            if trial is not None:
                state.durations.append(time.monotonic() - trial.started)
            head = self._trial_head(trial) if trial is not None and not trial.announced else f"trial #{record.number}"
            status = "" if self.live else f"  [dim]\\[{self._study_text(best=False)}][/]"
            live = self._live
        if self.quiet:
            return
        if live is not None:
            live.refresh()  # the finished trial leaves the live area before its line prints above it
        more: list[str] = []  # a reason's further lines, indented under the trial's line
        if record.state == "complete":
            outcome = f"-> [green]{record.value:.6g}[/]"
        elif record.state == "pruned":
            outcome = f"-> [yellow]{stopped_early(record)}[/]"
        else:
            first, *more = (record.error or "").strip().splitlines() or [""]
            outcome = f"-> [red]failed[/] ({escape(first.strip())})"
        best_text = f"  best {best.value:.6g} (#{best.number})" if best and best.value is not None else ""
        self.console.print(f"{head} {outcome}[dim]{best_text}[/]{status}", soft_wrap=True)
        for line in more:
            if line.strip():
                self.console.print(f"    {escape(line.rstrip())}", soft_wrap=True, highlight=False)

    def finished(self, summary: StudySummary) -> None:
        self.close()
        with self._lock:
            elapsed = time.monotonic() - self._state.started
        table = _Rows()
        counts = [f"{summary.complete} complete", f"{summary.failed} failed"]
        counts += [f"{summary.pruned} stopped early"] if summary.pruned else []
        counts += [f"{summary.stopped_by_deadline} stopped by the deadline"] if summary.stopped_by_deadline else []
        table.add_row(
            "trials",
            f"{summary.n_trials}: {', '.join(counts)} ({summary.n_new} in this run, {duration(elapsed)})",
        )
        if summary.compute_s > 0 and summary.n_trials:
            each = summary.compute_s / summary.n_trials
            table.add_row("compute", f"{duration(summary.compute_s)} in all, {each:.3g} s per trial")
        if summary.time_budget_s is not None:
            table.add_row("time budget", f"{duration(summary.time_used_s)} used of {duration(summary.time_budget_s)}")
        if summary.setup_failures:
            table.add_row(
                "setup failures", f"{summary.setup_failures} (of a broken start: kept in the study, not counted)"
            )
        if summary.probes:
            table.add_row(
                "probes", f"{summary.probes} (of the setup, after trials that failed alike: kept, not counted)"
            )
        if summary.best is not None and summary.best.value is not None:
            table.add_row("best value", f"[bold green]{summary.best.value:.6g}[/] (trial #{summary.best.number})")
            table.add_row("best configuration", escape(json.dumps(compact_config(summary.best.config))))
        else:
            table.add_row("best value", "[red]no trial completed[/]")
        if summary.llm_calls:
            tokens = summary.prompt_tokens + summary.completion_tokens
            table.add_row(
                "LLM usage",
                f"{plural(summary.llm_calls, 'call')}, {plural(tokens, 'token')} "
                f"({summary.prompt_tokens} prompt, {summary.completion_tokens} completion), "
                f"{summary.llm_seconds:.1f} s, {plural(summary.reasks, 'reask')}",
            )
        for i, line in enumerate(summary.learned_from):
            table.add_row("learned from" if i == 0 else "", escape(line))
        if summary.fallbacks:
            invalid = summary.fallbacks - summary.unreachable
            why = [f"{summary.unreachable} with the model unreachable"] if summary.unreachable else []
            why += [f"{invalid} after invalid answers"] if invalid else []
            table.add_row("rounds without the model", f"{summary.fallbacks} ({', '.join(why)})")
        where = _where(summary)
        if where is not None:
            table.add_row("saved in", escape(where))
        table.print(self.console)

    # ---- pieces -------------------------------------------------------------------------------------

    def _trial_head(self, trial: _Running) -> str:
        tag = f" [yellow]({trial.source})[/]" if trial.source not in _PLAIN_SOURCES else ""
        return f"trial #{trial.number}{tag}: {escape(json.dumps(compact_config(trial.config)))}"

    def _hint(self, progress: Progress) -> str | None:
        """The duration estimate, once per run, at the first epoch's end."""
        hint, state = self.hint, self._state
        if hint is None or state.hinted or not is_unit_end(progress) or progress.done != 1 or not progress.total:
            return None
        state.hinted = True
        left = state.budget - state.done
        per_epoch = progress.elapsed_s
        total = per_epoch * progress.total * left / max(self.workers, 1)
        text = (
            f"[bold]estimate[/]: {left} trial{'s' if left != 1 else ''} x {progress.total:g} epochs x "
            f"{per_epoch:.0f} s per epoch {hint.where}"
            + (f" / {self.workers} workers" if self.workers > 1 else "")
            + f" = about {duration(total)}"
        )
        if total > hint.threshold_s:
            text += f"; to shorten it: {hint.shorten}"
        return text

    def _time_left(self) -> float | None:
        state, now = self._state, time.monotonic()
        running = [
            (now - t.started, t.progress.eta_s if t.progress is not None else None) for t in state.running.values()
        ]
        return study_time_left(
            remaining=state.budget - state.done, durations=state.durations, running=running, workers=self.workers
        )

    def _study_text(self, *, best: bool = True) -> str:
        """``trial 3/20, best 0.12 (#1), 4m12s elapsed, ~20m left``: where the study is."""
        state = self._state
        at = min(state.done + len(state.running), state.budget)
        parts = [f"trial {at}/{state.budget}"]
        if best and state.best is not None and state.best.value is not None:
            parts.append(f"best {state.best.value:.6g} (#{state.best.number})")
        parts.append(f"{duration(time.monotonic() - state.started)} elapsed")
        left = self._time_left()
        if left is not None and left >= 1:
            parts.append(f"~{duration(left)} left")
        return ", ".join(parts)

    def _render(self) -> RenderableType:
        with self._lock:
            state, now = self._state, time.monotonic()
            if state.preparing is not None:
                text, since = state.preparing
                return Text(f"{text}, {duration(now - since)}")
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True)
            grid.add_column(no_wrap=True)
            grid.add_column(no_wrap=True, overflow="ellipsis")
            for trial in sorted(state.running.values(), key=lambda t: t.number):
                label = Text(f"trial #{trial.number}")
                p = trial.progress
                if p is not None and p.total:
                    bar: RenderableType = ProgressBar(total=p.total, completed=p.done, width=20)
                    grid.add_row(label, bar, Text(progress_text(p)))
                elif p is not None:  # steps of a program, with no known total
                    grid.add_row(label, Text(""), Text(progress_text(p)))
                else:
                    grid.add_row(label, Text(""), Text(f"running, {duration(now - trial.started)}"))
            if state.proposing is not None:
                number, since = state.proposing
                grid.add_row(
                    Text(f"trial #{number}"), Text(""), Text(f"choosing a configuration, {duration(now - since)}")
                )
            return Group(grid, Text(f"study: {self._study_text()}", style="bold"))


class _Rows:
    """The summary's (label, value) rows: a table on a terminal; in a pipe or a file, one unpadded, unwrapped
    line each (``label  value``), so what is saved or grepped holds whole values and no trailing spaces."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add_row(self, label: str, value: str) -> None:
        self.rows.append((label, value))

    def print(self, console: Console) -> None:
        if console.is_terminal:
            table = Table(show_header=False, box=None, padding=(0, 1))
            for row in self.rows:
                table.add_row(*row)
            console.print(table)
            return
        width = max((len(label) for label, _ in self.rows), default=0)
        for label, value in self.rows:
            console.print(f"{label:{width}}  {value}".rstrip(), soft_wrap=True)


def _where(summary: StudySummary) -> str | None:
    """``runs/x (study.db, trials/, events.jsonl)``: the study's folder and what it holds; the storage's URL
    when the study is elsewhere."""
    if summary.save_dir is None:
        return None
    folder = str(summary.save_dir)
    if summary.storage is None or summary.storage == default_storage_url(summary.save_dir):
        return f"{folder} (study.db, trials/, events.jsonl)"
    return f"{folder} (trials/, events.jsonl); the study is in {summary.storage}"


def stopped_early(record: TrialRecord) -> str:
    """``stopped early at step 9`` (``stopped by the deadline at step 9``: the time budget ran out): the step
    (rung) a stopped trial reached, as far as it is known."""
    step = record.step if record.step is not None else record.metrics.get("step", record.metrics.get("epochs_run"))
    what = "stopped by the deadline" if record.stopped_by == DEADLINE else "stopped early"
    return what if step is None else f"{what} at step {step}"
